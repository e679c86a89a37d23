"""Split a sweep into N shards that take about the same time.

The split is deterministic: cases are sorted by estimated cost (useful FLOPs of
one step, training counted three times, plus a fixed per-case overhead for
building and warming up) and handed out greedily to the least loaded shard,
ties broken by case_id. The same spec gives the same shards on every machine.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bench.core.cases import Case
from bench.core.errors import UsageError
from rnnmodels.data import expected_padding_fraction
from rnnmodels.flops import forward_flops, training_flops

PER_CASE_OVERHEAD_FLOP = 2e9  # ~ build + warm-up + sampling floor, in FLOP-equivalents


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` with 1 <= K <= N -> (K, N); anything else is a UsageError."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise UsageError(f"--shard: {text!r} is not K/N (e.g. 1/4 for the first of four shards)")
    k, n = int(match[1]), int(match[2])
    if n < 1 or not 1 <= k <= n:
        raise UsageError(f"--shard: {text!r} is out of range (K from 1 to N, N >= 1)")
    return k, n


def estimated_cost(case: Case) -> float:
    tokens = case.batch_size * case.seq_len * (1 - expected_padding_fraction(case.lengths, case.seq_len))
    # A user's model is costed as an LSTM of its sizes: an estimate for balancing, not a count.
    model = "lstm" if case.user_model else case.model
    flop = forward_flops(model, round(tokens), case.embedding_dim, case.hidden_size, case.num_layers, case.num_dirs)
    return (training_flops(flop) if case.mode == "training" else flop) + PER_CASE_OVERHEAD_FLOP


def shard_cases(cases: Sequence[Case], k: int, n: int) -> list[Case]:
    """Shard ``k`` (1-based) of ``n``, in the sweep's own order."""
    load = [0.0] * n
    owner: dict[str, int] = {}
    for case in sorted(cases, key=lambda c: (-estimated_cost(c), c.case_id)):
        target = min(range(n), key=lambda i: (load[i], i))
        load[target] += estimated_cost(case)
        owner[case.case_id] = target
    return [c for c in cases if owner[c.case_id] == k - 1]
