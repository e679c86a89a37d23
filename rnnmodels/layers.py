"""Ways to run an ``nn.LSTM``/``nn.GRU``'s own weights over a padded batch.

``run_exact`` is the exact padded mode: padded input, results equal to packing.
Per layer, the forward direction runs on the padded batch (padding comes after
the valid steps, so valid outputs are exact) and the backward direction runs as
a unidirectional pass over each sequence's valid part reversed in place
(padding stays at the end), then is reversed back. Final states are taken at
each sequence's last valid step:

* GRU: the state is the output, so ``h_n`` is gathered from the outputs at
  ``length - 1``; one fused kernel call per layer and direction.
* LSTM: ``c_n`` is not an output, and one padded cuDNN/oneDNN call only returns
  the states after the padding. So the LSTM runs each direction in time chunks
  that end at the batch's distinct lengths, with the batch sorted by length and
  shrunk as sequences end (the states carried between chunks), and keeps each
  sequence's states at its end. That is one kernel call per distinct length;
  the chunks also skip the padding's FLOPs. Recomputing ``c`` from the outputs
  instead would cost as much as a second forward pass, and inverting
  ``h = o * tanh(c)`` is not exact once ``tanh`` saturates.

``run_cells`` is the naive baseline (fastrnns calls it ``py``): a Python loop
over ``nn.LSTMCell``/``nn.GRUCell`` that share the module's parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
WEIGHT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def direction_params(rnn: nn.RNNBase, layer: int, direction: int) -> list[torch.Tensor]:
    """The weights of one layer and direction, in the order torch.lstm/gru want."""
    suffix = "_reverse" if direction else ""
    names = WEIGHT_NAMES if rnn.bias else WEIGHT_NAMES[:2]
    return [getattr(rnn, f"{name}_l{layer}{suffix}") for name in names]


def reverse_valid(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's valid steps in place (padding stays); its own inverse."""
    return t.gather(0, index.unsqueeze(-1).expand_as(t))


def _split(rnn: nn.RNNBase, hx: State) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(rnn, nn.LSTM):
        h0, c0 = hx  # type: ignore[misc]
        return h0, c0
    return hx, None  # type: ignore[return-value]


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small CPU tensor on ``device`` without waiting for the GPU.

    A plain ``.to("cuda")`` of pageable memory blocks the host until the
    stream has caught up, which in a timed forward stalls the queue; a copy
    from pinned memory does not (torch keeps the pinned block until the copy is done).
    """
    if device.type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


@dataclass(frozen=True)
class LengthPlan:
    """What every layer and direction of one exact call needs to know of the lengths.

    Made once per call, on the CPU, with one copy to the device.
    """

    lengths: torch.Tensor  # (B,) on the CPU
    # The LSTM's time chunks, one per distinct length: (start, end, active, still), where the
    # batch sorted longest first has rows 0..active-1 running until `end` and rows 0..still-1
    # running past it. Plain ints, counted without bisect (which torch.compile cannot trace).
    chunks: tuple[tuple[int, int, int, int], ...]
    order: torch.Tensor  # (B,) on the device: the batch sorted by length, longest first
    inverse: torch.Tensor  # (B,) on the device: back to the caller's order
    last: torch.Tensor  # (B,) on the device: each sequence's last valid step

    @classmethod
    def of(cls, lengths: torch.Tensor, device: torch.device) -> LengthPlan:
        lengths = lengths.cpu().long()  # one dtype for the stacked copy below
        sorted_len, order = lengths.sort(descending=True, stable=True)
        order_dev, inverse_dev, last_dev = to_device(torch.stack([order, order.argsort(), lengths - 1]), device)
        ascending = sorted_len.flip(0).tolist()
        chunks = []
        start, running, i = 0, len(ascending), 0
        while i < len(ascending):
            end, ended = ascending[i], 0
            while i < len(ascending) and ascending[i] == end:
                i, ended = i + 1, ended + 1
            chunks.append((start, end, running, running - ended))
            start, running = end, running - ended
        return cls(lengths, tuple(chunks), order_dev, inverse_dev, last_dev)


def _gru_direction(
    rnn: nn.GRU, inp: torch.Tensor, h0: torch.Tensor, params: list[torch.Tensor], plan: LengthPlan
) -> tuple[torch.Tensor, torch.Tensor]:
    """One padded call; the state at each sequence's end is its output there."""
    out, _ = torch.gru(inp, h0.unsqueeze(0), params, rnn.bias, 1, 0.0, rnn.training, False, False)
    h_n = out[plan.last, torch.arange(out.size(1), device=inp.device)]
    return out, h_n


def _lstm_direction(
    rnn: nn.LSTM,
    inp: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    params: list[torch.Tensor],
    plan: LengthPlan,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Chunks that end at the distinct lengths, the batch sorted and shrinking."""
    seq_len, batch = inp.shape[:2]
    inp = inp.index_select(1, plan.order)
    h, c = h0.index_select(0, plan.order), c0.index_select(0, plan.order)
    outs: list[torch.Tensor] = []
    ended_h: list[torch.Tensor] = []
    ended_c: list[torch.Tensor] = []
    for start, end, active, still in plan.chunks:
        out, h_k, c_k = torch.lstm(
            inp[start:end, :active].contiguous(),
            (h[:active].unsqueeze(0), c[:active].unsqueeze(0)),
            params,
            rnn.bias,
            1,
            0.0,
            rnn.training,
            False,
            False,
        )
        outs.append(F.pad(out, (0, 0, 0, batch - active)))
        h, c = h_k[0], c_k[0]
        ended_h.append(h[still:active])  # the sequences of length `end`
        ended_c.append(c[still:active])
    out = torch.cat(outs, 0)
    longest = plan.chunks[-1][1]
    if longest < seq_len:  # every sequence is shorter than the padded length
        out = F.pad(out, (0, 0, 0, 0, 0, seq_len - longest))
    # Shorter sequences end first, and they are the last rows of the sorted batch.
    h_n = torch.cat(ended_h[::-1], 0).index_select(0, plan.inverse)
    c_n = torch.cat(ended_c[::-1], 0).index_select(0, plan.inverse)
    return out.index_select(1, plan.inverse), h_n, c_n


# One direction of one layer: (layer, direction, input, h0, c0) -> (output, h_n, c_n or None).
DirectionRunner = Callable[
    [int, int, torch.Tensor, torch.Tensor, "torch.Tensor | None"],
    tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None"],
]


def _run_layers(rnn: nn.RNNBase, x: torch.Tensor, hx: State, run: DirectionRunner) -> tuple[torch.Tensor, State]:
    """Stack the layers and directions the way nn.LSTM/nn.GRU do, each run by ``run``."""
    dirs = 2 if rnn.bidirectional else 1
    h0, c0 = _split(rnn, hx)
    layer_in = x
    h_n: list[torch.Tensor] = []
    c_n: list[torch.Tensor] = []
    for layer in range(rnn.num_layers):
        outs = []
        for direction in range(dirs):
            k = layer * dirs + direction
            out, h, c = run(layer, direction, layer_in, h0[k], None if c0 is None else c0[k])
            outs.append(out)
            h_n.append(h)
            if c is not None:
                c_n.append(c)
        layer_in = torch.cat(outs, -1) if dirs > 1 else outs[0]
    h_stack = torch.stack(h_n, 0)
    return layer_in, ((h_stack, torch.stack(c_n, 0)) if c0 is not None else h_stack)


def run_exact(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor, hx: State) -> tuple[torch.Tensor, State]:
    """Exact results from a padded batch ``x`` ``(L, B, I)``; padding outputs are zero.

    ``lengths`` ``(B,)`` lives on the CPU (the chunk plan is made there). On
    cuDNN, call ``split_weight_buffers(rnn)`` once first (``RecurrentModel``
    does it when it moves): each call here uses one layer and direction's weights.
    """
    seq_len = x.size(0)
    plan = LengthPlan.of(lengths, x.device)
    steps = torch.arange(seq_len, device=x.device).unsqueeze(1)
    last = plan.last.unsqueeze(0)
    valid = steps <= last  # (L, B)
    reverse_index = torch.where(valid, last - steps, steps)
    keep = valid.unsqueeze(-1).to(x.dtype)

    def run(layer: int, direction: int, inp: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor | None):
        params = direction_params(rnn, layer, direction)
        if direction:
            inp = reverse_valid(inp, reverse_index)
        if c0 is not None:
            out, h, c = _lstm_direction(rnn, inp, h0, c0, params, plan)  # type: ignore[arg-type]
        else:
            out, h = _gru_direction(rnn, inp, h0, params, plan)  # type: ignore[arg-type]
            out, c = out * keep, None  # the padded call leaves garbage after each sequence's end
        return (reverse_valid(out, reverse_index) if direction else out), h, c

    return _run_layers(rnn, x, hx, run)


def split_weight_buffers(rnn: nn.RNNBase) -> None:
    """Give each layer and direction's weights a flat cuDNN buffer of their own.

    ``run_exact`` calls cuDNN one layer and direction at a time. cuDNN uses the
    weights in place only when they start at the beginning of one flat buffer
    laid out its way; otherwise every call allocates, zeroes and fills a copy
    (kept for backward too) and warns "RNN module weights are not part of
    single contiguous chunk of memory". ``nn.LSTM`` flattens all its layers into
    one buffer, where only layer 0's forward direction starts at the beginning;
    this lays each group out on its own, with cuDNN's own flattening call, so the
    parameters stay the same objects (as views into the new buffers). Only the
    module's own whole-stack call would then copy, and ``run_exact`` never makes it.
    A no-op where cuDNN is not available or the weights are not on CUDA.
    """
    first = next(rnn.parameters())
    if first.device.type != "cuda" or not torch.backends.cudnn.is_available():
        return
    from torch.backends.cudnn import rnn as cudnn_rnn

    mode = cudnn_rnn.get_cudnn_mode(rnn.mode)
    dirs = 2 if rnn.bidirectional else 1
    with torch.no_grad():
        for layer in range(rnn.num_layers):
            input_size = rnn.input_size if layer == 0 else rnn.hidden_size * dirs
            for direction in range(dirs):
                params = direction_params(rnn, layer, direction)
                torch._cudnn_rnn_flatten_weight(
                    params, len(params), input_size, mode, rnn.hidden_size, rnn.proj_size, 1, False, False
                )


def make_cell(rnn: nn.RNNBase, layer: int, direction: int) -> nn.RNNCellBase:
    """An ``nn.LSTMCell``/``nn.GRUCell`` whose parameters are the module's own.

    Built on the meta device (no memory, no init cost), then its parameters are
    replaced by the module's: gradients reach the module's weights.
    """
    cell_class = nn.LSTMCell if isinstance(rnn, nn.LSTM) else nn.GRUCell
    input_size = rnn.input_size if layer == 0 else rnn.hidden_size * (2 if rnn.bidirectional else 1)
    cell = cell_class(input_size, rnn.hidden_size, bias=rnn.bias, device="meta")
    names = WEIGHT_NAMES if rnn.bias else WEIGHT_NAMES[:2]
    for name, param in zip(names, direction_params(rnn, layer, direction), strict=True):
        setattr(cell, name, param)
    return cell


def run_cells(
    rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor, hx: State, exact: bool
) -> tuple[torch.Tensor, State]:
    """A Python loop over cells. ``exact``: steps past a sequence's end leave its
    state alone and output zeros (equal to packing); else the padding is read as
    data, like the padded module."""
    seq_len = x.size(0)
    valid = to_device(torch.arange(seq_len).unsqueeze(1) < lengths.cpu().unsqueeze(0), x.device)  # (L, B)

    def run(layer: int, direction: int, inp: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None):
        cell = make_cell(rnn, layer, direction)
        step_out: list[torch.Tensor] = [h] * seq_len
        for t in reversed(range(seq_len)) if direction else range(seq_len):
            h_new, c_new = cell(inp[t], (h, c)) if c is not None else (cell(inp[t], h), None)
            if exact:
                m = valid[t].unsqueeze(1)
                h = torch.where(m, h_new, h)
                c = torch.where(m, c_new, c) if c is not None else None
                step_out[t] = h_new * m
            else:
                h, c = h_new, c_new
                step_out[t] = h_new
        return torch.stack(step_out, 0), h, c

    return _run_layers(rnn, x, hx, run)
