"""Inputs for the models: the lecture's batch and seeded synthetic batches.

A batch is ``(tokens, lengths)``: ``tokens`` is ``(B, L)`` int64 with token ids in
``[1, vocab_size)`` at valid positions and ``PAD_ID`` after them; ``lengths`` is
``(B,)`` int64, in no particular order.
"""

from __future__ import annotations

import torch

PAD_ID = 0

# The lecture's ten sequences, in the lecture's (unsorted) order.
LECTURE_SEQUENCES: tuple[tuple[int, ...], ...] = (
    (85, 14, 80, 34, 99, 20, 31, 65, 53, 86, 3, 58, 30, 4, 11, 6, 50, 71, 74, 13),
    (62, 76, 79, 66, 32),
    (93, 77, 16, 67, 46, 74, 24, 70),
    (19, 83, 88, 22, 57, 40, 75, 82, 4, 46),
    (70, 28, 30, 24, 76, 84, 92, 76, 77, 51, 7, 20, 82, 94, 57),
    (58, 13, 40, 61, 88, 18, 92, 89, 8, 14, 61, 67, 49, 59, 45, 12, 47, 5),
    (22, 5, 21, 84, 39, 6, 9, 84, 36, 59, 32, 30, 69, 70, 82, 56, 1),
    (94, 21, 79, 24, 3, 86),
    (80, 80, 33, 63, 34, 63),
    (87, 32, 79, 65, 2, 96, 43, 80, 85, 20, 41, 52, 95, 50, 35, 96, 24, 80),
)


def lecture_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """The lecture's batch: tokens ``(10, 20)`` and lengths ``(10,)``, unsorted."""
    max_len = max(len(s) for s in LECTURE_SEQUENCES)
    tokens = torch.full((len(LECTURE_SEQUENCES), max_len), PAD_ID, dtype=torch.long)
    for i, seq in enumerate(LECTURE_SEQUENCES):
        tokens[i, : len(seq)] = torch.tensor(seq)
    lengths = torch.tensor([len(s) for s in LECTURE_SEQUENCES], dtype=torch.long)
    return tokens, lengths


def parse_lengths(spec: str, seq_len: int) -> tuple[int, int]:
    """Turn a length distribution name into its inclusive ``(min, max)`` range.

    ``full``: every sequence has length ``seq_len``. ``uniform``: uniform in
    ``[max(1, seq_len // 4), seq_len]``. ``uniform:N``: uniform in ``[N, seq_len]``.
    Raises ``ValueError`` naming the bad value.
    """
    name, _, arg = spec.partition(":")
    if name == "full" and not arg:
        return seq_len, seq_len
    if name == "uniform":
        if not arg:
            return max(1, seq_len // 4), seq_len
        if not arg.isdigit() or int(arg) < 1:
            raise ValueError(f"lengths {spec!r}: the minimum after 'uniform:' must be a positive integer")
        if int(arg) > seq_len:
            raise ValueError(f"lengths {spec!r}: minimum {arg} exceeds the sequence length {seq_len}")
        return int(arg), seq_len
    raise ValueError(f"lengths {spec!r} is not one of 'full', 'uniform', 'uniform:MIN'")


def expected_padding_fraction(spec: str, seq_len: int) -> float:
    """The expected share of padded positions for a length distribution."""
    low, high = parse_lengths(spec, seq_len)
    return 1.0 - (low + high) / 2 / seq_len


def synthetic_batch(
    batch_size: int,
    seq_len: int,
    vocab_size: int,
    lengths: str = "full",
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random batch: tokens ``(B, L)`` and lengths ``(B,)`` on the CPU.

    The same arguments give the same batch on every machine (a private CPU
    generator, independent of the global RNG). The longest sequence is not forced
    to length ``L``: the padded length is a sweep axis of its own.
    """
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size}, {seq_len}")
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2 (one id is padding), got {vocab_size}")
    low, high = parse_lengths(lengths, seq_len)
    gen = torch.Generator().manual_seed(seed)
    lens = torch.randint(low, high + 1, (batch_size,), generator=gen, dtype=torch.long)
    tokens = torch.randint(1, vocab_size, (batch_size, seq_len), generator=gen, dtype=torch.long)
    positions = torch.arange(seq_len).unsqueeze(0)  # (1, L)
    tokens[positions >= lens.unsqueeze(1)] = PAD_ID
    return tokens, lens


def padding_fraction(lengths: torch.Tensor, seq_len: int) -> float:
    """Share of the ``B x L`` positions that are padding."""
    return 1.0 - float(lengths.sum()) / (lengths.numel() * seq_len)
