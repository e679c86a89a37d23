"""The lecture's models as the course wrote them, behind rnnbench's model contract.

``LSTMModel`` and ``GRUModel`` are the course's code, unchanged: ``forward``
wants a ``device``, zeros made on the CPU and copied, lengths sorted longest
first (``pack_padded_sequence`` refuses others), and in packed mode it returns
``pad_packed_sequence``'s ``(outputs, lengths)`` tuple where padded mode returns
the outputs tensor. ``Lecture`` does what the lecture's notebook did around
them: sort the batch by length, pass the device, take ``outputs[0]`` in packed
mode. The outputs stay in sorted order, as the notebook had them.

    python -m bench run --model examples.lecture:build,lstm --batch-size 8,32 --seq-len 32
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class LSTMModel(nn.Module):
    def __init__(self, x_dim, embedding_dim, h_dim, n_layers, n_dirs, use_pack=False):
        super(LSTMModel, self).__init__()
        self.x_dim = x_dim
        self.embedding_dim = embedding_dim
        self.h_dim = h_dim
        self.n_layers = n_layers
        self.n_dirs = n_dirs
        self.use_pack = use_pack
        self.embedding = nn.Embedding(x_dim, embedding_dim)
        self.rnn = nn.LSTM(
            input_size=self.embedding_dim,
            hidden_size=self.h_dim,
            num_layers=self.n_layers,
            bidirectional=True if n_dirs > 1 else False,
        )

    def forward(self, x, valid_len, device):
        h0 = torch.zeros(self.n_layers * self.n_dirs, x.size(0), self.h_dim).to(device)
        c0 = torch.zeros(self.n_layers * self.n_dirs, x.size(0), self.h_dim).to(device)
        # Embedding
        x_embed = self.embedding(x)

        # Packing padded seq
        if self.use_pack:
            x_embed = pack_padded_sequence(x_embed.transpose(0, 1), valid_len)
        else:
            x_embed = x_embed.transpose(0, 1)
        rnn_out, (hn, cn) = self.rnn(x_embed, (h0, c0))

        # Padding Packed seq
        if self.use_pack:
            rnn_out = pad_packed_sequence(rnn_out)
        return rnn_out, (hn, cn)


class GRUModel(nn.Module):
    def __init__(self, x_dim, embedding_dim, h_dim, n_layers, n_dirs, use_pack=False):
        super(GRUModel, self).__init__()
        self.x_dim = x_dim
        self.embedding_dim = embedding_dim
        self.h_dim = h_dim
        self.n_layers = n_layers
        self.n_dirs = n_dirs
        self.use_pack = use_pack
        self.embedding = nn.Embedding(x_dim, embedding_dim)
        self.rnn = nn.GRU(
            input_size=embedding_dim,
            hidden_size=h_dim,
            num_layers=n_layers,
            bidirectional=True if n_dirs > 1 else False,
        )

    def forward(self, x, valid_len, device):
        h0 = torch.zeros(self.n_layers * self.n_dirs, x.size(0), self.h_dim).to(device)
        x_embed = self.embedding(x)
        if self.use_pack:
            x_embed = pack_padded_sequence(x_embed.transpose(0, 1), valid_len)
        else:
            x_embed = x_embed.transpose(0, 1)
        gru_out, hn = self.rnn(x_embed, h0)
        if self.use_pack:
            gru_out = pad_packed_sequence(gru_out)
        return gru_out, hn


class Lecture(nn.Module):
    """The notebook's calling code: sort by length, pass the device, unwrap packed outputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths, order = lengths.sort(descending=True)
        outputs, _ = self.model(tokens[order.to(tokens.device)], lengths, tokens.device)
        return outputs[0] if self.model.use_pack else outputs  # (L, B, dirs*H), sorted order


def _build(model_class, vocab_size, embedding_dim, hidden_size, num_layers, bidirectional, varlen):
    if varlen == "exact":
        raise NotImplementedError("the lecture's models have no exact padded mode (padded or packed only)")
    model = model_class(vocab_size, embedding_dim, hidden_size, num_layers, 2 if bidirectional else 1)
    model.use_pack = varlen == "packed"
    return Lecture(model)


def build(vocab_size=100, embedding_dim=256, hidden_size=512, num_layers=1, bidirectional=False, varlen="padded"):
    """The lecture's LSTM model."""
    return _build(LSTMModel, vocab_size, embedding_dim, hidden_size, num_layers, bidirectional, varlen)


def build_gru(vocab_size=100, embedding_dim=256, hidden_size=512, num_layers=1, bidirectional=False, varlen="padded"):
    """The lecture's GRU model."""
    return _build(GRUModel, vocab_size, embedding_dim, hidden_size, num_layers, bidirectional, varlen)
