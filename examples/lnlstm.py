"""A custom model: a layer-normalised LSTM written as a Python loop over time.

Layer normalisation on the gates and the cell (as in Ba et al., 2016) has no
fused cuDNN/oneDNN kernel, so models like this one run step by step in
Python; rnnbench measures what that costs next to ``nn.LSTM``.

``varlen="padded"`` reads the padding as data; ``"packed"`` and ``"exact"``
stop each sequence at its end (its state is kept, its outputs past the end are
zero), which equals running it alone. One direction only: a bidirectional
case raises ``NotImplementedError``, and its row says ``unsupported``.

    python -m bench run --spec examples/lnlstm.toml
"""

from __future__ import annotations

import torch
from torch import nn


class LayerNormLSTMCell(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.ih = nn.Linear(input_size, 4 * hidden_size, bias=False)
        self.hh = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        self.ln_ih = nn.LayerNorm(4 * hidden_size)
        self.ln_hh = nn.LayerNorm(4 * hidden_size)
        self.ln_c = nn.LayerNorm(hidden_size)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gates = self.ln_ih(self.ih(x)) + self.ln_hh(self.hh(h))
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(self.ln_c(c))
        return h, c


class LayerNormLSTM(nn.Module):
    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, num_layers: int, exact: bool) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        sizes = [embedding_dim] + [hidden_size] * (num_layers - 1)
        self.cells = nn.ModuleList(LayerNormLSTMCell(n, hidden_size) for n in sizes)
        self.hidden_size = hidden_size
        self.exact = exact

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embedding(tokens).transpose(0, 1)  # (L, B, E)
        steps, batch = x.shape[:2]
        valid = (torch.arange(steps).unsqueeze(1) < lengths.cpu().unsqueeze(0)).to(x.device)  # (L, B)
        finals = []
        for cell in self.cells:
            h = x.new_zeros(batch, self.hidden_size)
            c = x.new_zeros(batch, self.hidden_size)
            outputs = []
            for t in range(steps):
                h_new, c_new = cell(x[t], h, c)
                if self.exact:  # past a sequence's end: keep its state, output zeros
                    keep = valid[t].unsqueeze(1)
                    h, c = torch.where(keep, h_new, h), torch.where(keep, c_new, c)
                    outputs.append(h_new * keep)
                else:
                    h, c = h_new, c_new
                    outputs.append(h)
            x = torch.stack(outputs)
            finals.append(h)
        return x, torch.stack(finals)  # outputs (L, B, H), final states (layers, B, H)


def build(vocab_size=100, embedding_dim=256, hidden_size=512, num_layers=1, bidirectional=False, varlen="padded"):
    if bidirectional:
        raise NotImplementedError("LayerNormLSTM runs one direction only")
    return LayerNormLSTM(vocab_size, embedding_dim, hidden_size, num_layers, exact=varlen != "padded")
