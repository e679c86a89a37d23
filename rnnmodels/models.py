"""The lecture's LSTM and GRU models, made correct.

Both models embed a padded token batch ``(B, L)``, run a (possibly stacked,
possibly bidirectional) ``nn.LSTM`` / ``nn.GRU`` over it in time-major layout and
return the padded outputs plus the final states. The lecture's defects are fixed:

* one return type in both modes: ``(outputs, h_n)`` for GRU and
  ``(outputs, (h_n, c_n))`` for LSTM, with ``outputs`` a tensor ``(L, B, dirs*H)``
  and each state ``(layers*dirs, B, H)``;
* packed mode takes lengths in any order, on any device, and answers in the
  caller's batch order (``enforce_sorted=False``);
* initial states are created on the input's device and dtype directly.

``varlen`` says how padding is treated:

* ``"packed"`` (the lecture's ``use_pack=True``): exact; every sequence's results
  equal running it alone. Padded output positions are zero.
* ``"padded"``: the RNN reads the padding as if it were data. Outputs at valid
  positions are still exact for a one-layer unidirectional model, but the reverse
  direction of a bidirectional model starts in the padding, and upper layers of a
  stack read the lower layer's padded outputs, so valid positions change too;
  ``h_n`` is taken after the padding. Fast, and wrong for those models.
* ``"exact"``: padded input, results equal to ``"packed"`` (outputs at valid
  positions, zeros at padded ones, final states at each sequence's end), at
  close to padded speed; see ``rnnmodels.layers.run_exact``.

``impl`` says what runs the recurrence: ``"module"`` (the ``nn.LSTM``/``nn.GRU``
kernels) or ``"cells"`` (a Python loop over ``nn.LSTMCell``/``nn.GRUCell`` with
the same weights, the naive baseline). With cells, ``"packed"`` and ``"exact"``
both mean "stop each sequence at its end" (there is no packed format to use).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnmodels.layers import run_cells, run_exact, split_weight_buffers

Varlen = Literal["padded", "packed", "exact"]
VARLEN_MODES: tuple[str, ...] = ("padded", "packed", "exact")
Impl = Literal["module", "cells"]
IMPLS: tuple[str, ...] = ("module", "cells")


class RecurrentModel(nn.Module):
    """Embedding + ``nn.LSTM``/``nn.GRU``; the shared part of both models.

    Subclasses set ``rnn_class`` and ``has_cell_state``.
    """

    rnn_class: type[nn.RNNBase]
    has_cell_state: bool

    def __init__(
        self,
        x_dim: int,
        embedding_dim: int,
        h_dim: int,
        n_layers: int,
        n_dirs: int,
        use_pack: bool = False,
        *,
        varlen: Varlen | None = None,
        impl: Impl = "module",
    ) -> None:
        super().__init__()
        if n_dirs not in (1, 2):
            raise ValueError(f"`n_dirs` must be 1 or 2, got {n_dirs!r}")
        if varlen is None:
            varlen = "packed" if use_pack else "padded"
        elif use_pack and varlen != "packed":
            raise ValueError(f"`use_pack=True` conflicts with `varlen={varlen!r}`")
        if varlen not in VARLEN_MODES:
            raise ValueError(f"`varlen` must be one of {VARLEN_MODES}, got {varlen!r}")
        if impl not in IMPLS:
            raise ValueError(f"`impl` must be one of {IMPLS}, got {impl!r}")
        self.x_dim = x_dim
        self.embedding_dim = embedding_dim
        self.h_dim = h_dim
        self.n_layers = n_layers
        self.n_dirs = n_dirs
        self.varlen: Varlen = varlen
        self.impl: Impl = impl
        self.embedding = nn.Embedding(x_dim, embedding_dim)
        self.rnn = self.rnn_class(
            input_size=embedding_dim,
            hidden_size=h_dim,
            num_layers=n_layers,
            bidirectional=n_dirs > 1,
        )

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        # .to()/.cuda()/.half() end here; nn.LSTM/nn.GRU re-flatten all their layers into
        # one buffer as they move, so the exact path's per-direction layout is made after.
        module = super()._apply(fn, recurse)
        if self.varlen == "exact" and self.impl == "module":
            split_weight_buffers(self.rnn)
        return module

    @property
    def use_pack(self) -> bool:
        """The lecture's spelling of ``varlen == "packed"``."""
        return self.varlen == "packed"

    def _initial_state(self, x_embed: torch.Tensor) -> torch.Tensor:
        # new_zeros: same device and dtype as the input, no host round trip.
        batch_size = x_embed.size(1)
        return x_embed.new_zeros(self.n_layers * self.n_dirs, batch_size, self.h_dim)

    def forward(
        self,
        x: torch.Tensor,
        valid_len: torch.Tensor,
        device: torch.device | str | None = None,
    ):
        """Run the model on tokens ``x`` ``(B, L)`` with valid lengths ``(B,)``.

        ``device`` is accepted for the lecture's call form; the parameters decide
        the device, and a different ``device`` is an error rather than a silent copy.
        """
        param_device = self.embedding.weight.device
        if device is not None:
            want = torch.device(device)
            if want.type != param_device.type or want.index not in (None, param_device.index):
                raise ValueError(f"`device` {device} differs from the model's device {param_device}")
        x = x.to(param_device)
        seq_len = x.size(1)
        x_embed = self.embedding(x).transpose(0, 1)  # (L, B, E)
        hx = self._initial_state(x_embed)
        if self.has_cell_state:
            hx = (hx, self._initial_state(x_embed))
        if self.impl == "cells":
            out, state = run_cells(self.rnn, x_embed, valid_len, hx, exact=self.varlen != "padded")
        elif self.varlen == "exact":
            out, state = run_exact(self.rnn, x_embed, valid_len, hx)
        elif self.varlen == "packed":
            # pack_padded_sequence wants lengths on the CPU; sorting is done (and
            # undone, states included) by the packed sequence's indices.
            packed = pack_padded_sequence(x_embed, valid_len.cpu(), enforce_sorted=False)
            out_packed, state = self.rnn(packed, hx)
            out, _ = pad_packed_sequence(out_packed, total_length=seq_len)  # (L, B, D*H)
        else:
            out, state = self.rnn(x_embed, hx)  # (L, B, D*H)
        return out, state

    def initial_stream_state(self, batch_size: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Zero states for ``batch_size`` streams, on the parameters' device and dtype."""
        weight = self.embedding.weight
        h = weight.new_zeros(self.n_layers * self.n_dirs, batch_size, self.h_dim)
        return (h, torch.zeros_like(h)) if self.has_cell_state else h

    def stream_step(self, x: torch.Tensor, state: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None):
        """Feed the next chunk ``x`` ``(B, K)`` of ``B`` streams, starting from ``state``
        (None: zeros); returns ``(outputs (K, B, H), state)`` as ``forward`` does.

        Streaming reads tokens as they come, so it is one-directional: a bidirectional model's
        reverse direction needs the end of the sequence first (ValueError). Chunks fed one after
        the other, each from the state the one before returned, give the outputs and final state
        of ``forward`` over the whole sequence (with every length full).
        """
        if self.n_dirs != 1:
            raise ValueError("a bidirectional model cannot stream: its reverse direction starts at the end")
        x_embed = self.embedding(x).transpose(0, 1)  # (K, B, E)
        if state is None:
            state = self.initial_stream_state(x.size(0))
        if self.impl == "cells":
            full = torch.full((x.size(0),), x.size(1), dtype=torch.long)
            return run_cells(self.rnn, x_embed, full, state, exact=False)
        return self.rnn(x_embed, state)


class LSTMModel(RecurrentModel):
    """The lecture's LSTM model; returns ``(outputs, (h_n, c_n))``."""

    rnn_class = nn.LSTM
    has_cell_state = True


class GRUModel(RecurrentModel):
    """The lecture's GRU model; returns ``(outputs, h_n)``."""

    rnn_class = nn.GRU
    has_cell_state = False


MODEL_CLASSES: dict[str, type[RecurrentModel]] = {"lstm": LSTMModel, "gru": GRUModel}
