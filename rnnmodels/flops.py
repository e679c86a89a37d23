"""Useful floating-point operations of an LSTM/GRU stack.

Per time step and direction, a layer with input size ``I`` and hidden size ``H``
does ``G`` gate matrix products of ``(I + H) x H`` per sequence, i.e.
``2·G·H·(I+H)`` FLOPs: LSTM has G=4 gates (``8·H·(I+H)``), GRU G=3
(``6·H·(I+H)``). Element-wise gate math is left out, as in DeepBench. Only valid
tokens count: work done on padding is not useful.
"""

from __future__ import annotations

FLOPS_PER_TOKEN_FACTOR: dict[str, int] = {"lstm": 8, "gru": 6}


def layer_input_sizes(embedding_dim: int, hidden_size: int, num_layers: int, num_dirs: int) -> list[int]:
    """Input size of each layer: the embedding for the first, ``dirs·H`` above."""
    return [embedding_dim] + [num_dirs * hidden_size] * (num_layers - 1)


def forward_flops(
    model: str,
    valid_tokens: int,
    embedding_dim: int,
    hidden_size: int,
    num_layers: int,
    num_dirs: int,
) -> int:
    """FLOPs of one forward pass of the stack over ``valid_tokens`` tokens."""
    factor = FLOPS_PER_TOKEN_FACTOR[model]
    per_token = sum(
        factor * hidden_size * (inp + hidden_size) * num_dirs
        for inp in layer_input_sizes(embedding_dim, hidden_size, num_layers, num_dirs)
    )
    return per_token * valid_tokens


def training_flops(forward: int) -> int:
    """Forward + backward; backward counts twice the forward (gradients of inputs and of weights)."""
    return 3 * forward
