"""Inputs for the models: the lecture's batch and seeded synthetic batches.

A batch is ``(tokens, lengths)``: ``tokens`` is ``(B, L)`` int64 with token ids in
``[1, vocab_size)`` at valid positions and ``PAD_ID`` after them; ``lengths`` is
``(B,)`` int64, in no particular order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class Lengths:
    """A length distribution: where a batch's valid lengths come from.

    ``low``/``high`` bound the lengths (inclusive). ``values`` holds an
    empirical distribution (``file:PATH``); ``stratified`` draws a batch by
    strata of the distribution (one draw in each ``1/B`` quantile band, then
    shuffled), so that a batch's padding fraction is close to its expectation
    instead of wherever ``B`` independent draws put it.
    """

    spec: str
    low: int
    high: int
    values: tuple[int, ...] = ()
    stratified: bool = False

    def expected_padding(self, seq_len: int) -> float:
        mean = sum(self.values) / len(self.values) if self.values else (self.low + self.high) / 2
        return 1.0 - mean / seq_len

    def sample(self, batch_size: int, gen: torch.Generator) -> torch.Tensor:
        if not self.stratified:  # full, uniform: independent draws (the inputs of every earlier run)
            return torch.randint(self.low, self.high + 1, (batch_size,), generator=gen, dtype=torch.long)
        bands = torch.arange(batch_size, dtype=torch.float64) + torch.rand(
            batch_size, generator=gen, dtype=torch.float64
        )
        bands = bands / batch_size  # one point in each 1/B band of [0, 1)
        if self.values:
            ordered = torch.tensor(sorted(self.values), dtype=torch.long)
            lens = ordered[(bands * len(ordered)).long().clamp(max=len(ordered) - 1)]
        else:
            span = self.high - self.low + 1
            lens = self.low + (bands * span).long().clamp(max=span - 1)
        return lens[torch.randperm(batch_size, generator=gen)]


# Characters a file path may not hold: the path becomes part of case ids, which spell
# ":" and "/" as "@" and "~".
FORBIDDEN_IN_PATH = ("@", "~")


def _pad_lengths(spec: str, arg: str, seq_len: int) -> Lengths:
    try:
        fraction = float(arg)
    except ValueError:
        raise ValueError(f"lengths {spec!r}: the padding fraction after 'pad:' must be a number") from None
    if not 0 <= fraction < 1:
        raise ValueError(f"lengths {spec!r}: the padding fraction must be at least 0 and below 1")
    mean = (1 - fraction) * seq_len  # the mean length that leaves that much padding
    if 2 * mean - seq_len >= 1:  # uniform up to seq_len, from where the mean says
        low, high = round(2 * mean - seq_len), seq_len
    else:  # uniform from 1, up to where the mean says
        low, high = 1, max(1, min(seq_len, round(2 * mean - 1)))
    return Lengths(spec, low, high, stratified=True)


def _file_lengths(spec: str, path: str, seq_len: int) -> Lengths:
    if not path or any(c in path for c in FORBIDDEN_IN_PATH):
        raise ValueError(
            f"lengths {spec!r}: the path may not be empty or hold '@' or '~' (it becomes part of case ids)"
        )
    try:
        lines = Path(path).read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(
            f"lengths {spec!r}: cannot read {path} ({e.__class__.__name__}: {getattr(e, 'strerror', None) or e})"
        ) from None
    values = []
    for number, word in enumerate(lines, 1):
        if not word.isdigit() or int(word) < 1:
            raise ValueError(f"lengths {spec!r}: entry {number} ({word!r}) is not a positive integer")
        if int(word) > seq_len:
            raise ValueError(f"lengths {spec!r}: entry {number} ({word}) exceeds the sequence length {seq_len}")
        values.append(int(word))
    if not values:
        raise ValueError(f"lengths {spec!r}: {path} holds no lengths (one per line)")
    return Lengths(spec, min(values), max(values), tuple(values), stratified=True)


def parse_lengths(spec: str, seq_len: int) -> Lengths:
    """A length distribution by name; ``ValueError`` naming the bad value.

    ``full``: every sequence has length ``seq_len``. ``uniform``: uniform in
    ``[max(1, seq_len // 4), seq_len]``. ``uniform:N``: uniform in ``[N, seq_len]``.
    ``pad:F``: uniform lengths whose expected padding fraction is ``F``.
    ``file:PATH``: lengths drawn from the ones in a text file (whitespace-separated,
    e.g. one per line, exported from a dataset), none above ``seq_len``.
    """
    name, _, arg = spec.partition(":")
    if name == "full" and not arg:
        return Lengths(spec, seq_len, seq_len)
    if name == "uniform":
        if not arg:
            return Lengths(spec, max(1, seq_len // 4), seq_len)
        if not arg.isdigit() or int(arg) < 1:
            raise ValueError(f"lengths {spec!r}: the minimum after 'uniform:' must be a positive integer")
        if int(arg) > seq_len:
            raise ValueError(f"lengths {spec!r}: minimum {arg} exceeds the sequence length {seq_len}")
        return Lengths(spec, int(arg), seq_len)
    if name == "pad":
        return _pad_lengths(spec, arg, seq_len)
    if name == "file":
        return _file_lengths(spec, arg, seq_len)
    raise ValueError(f"lengths {spec!r} is not one of 'full', 'uniform', 'uniform:MIN', 'pad:FRACTION', 'file:PATH'")


def expected_padding_fraction(spec: str, seq_len: int) -> float:
    """The expected share of padded positions for a length distribution."""
    return parse_lengths(spec, seq_len).expected_padding(seq_len)


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
    distribution = parse_lengths(lengths, seq_len)
    gen = torch.Generator().manual_seed(seed)
    lens = distribution.sample(batch_size, gen)
    tokens = torch.randint(1, vocab_size, (batch_size, seq_len), generator=gen, dtype=torch.long)
    positions = torch.arange(seq_len).unsqueeze(0)  # (1, L)
    tokens[positions >= lens.unsqueeze(1)] = PAD_ID
    return tokens, lens


def padding_fraction(lengths: torch.Tensor, seq_len: int) -> float:
    """Share of the ``B x L`` positions that are padding."""
    return 1.0 - float(lengths.sum()) / (lengths.numel() * seq_len)
