"""The schedule of ``bench validate``: the suite's timer side by side with torch.utils.benchmark.

For a few cases, both measure the same built workload in the same process,
interleaved in rounds (suite block, torch block, suite block, ...) so that the
drift of a shared, noisy machine hits both alike, as asv's ``continuous`` does
for commits. The report gives both pooled medians, their ratio, the wall time each
spent, and the suite's own per-sample overhead (a timed no-op). Agreement within
a few percent says the harness adds no bias.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.utils import benchmark

from bench.core.cases import Case
from bench.core.stats import MIN_CI_SAMPLES, summarize
from bench.core.timer import FixedCount, TimeBudget, TimerConfig, measure
from bench.measure.clocks import clock_for
from bench.measure.workload import build

ROUNDS = 10
ROUND_S = 0.2  # each harness samples this long per round; short rounds track drift closely
ROUND_WARMUP = TimerConfig()  # each round warms up like a sweep case ...
ROUND_STOP = TimeBudget(ROUND_S, min_runs=MIN_CI_SAMPLES)  # ... then samples for ROUND_S
OVERHEAD_RUNS = 200
AGREEMENT = 0.05  # |ratio - 1| beyond this is reported as disagreement


def validation_cases(device: str, threads: int) -> list[Case]:
    base = dict(
        device=device,
        dtype="float32",
        mode="inference",
        num_layers=1,
        lengths="uniform",
        embedding_dim=256,
        hidden_size=512,
        vocab_size=100,
        backend="default",
        threads=threads,
        impl="module",
        tf32="off",
        chunk=1,
    )
    return [
        Case(model="lstm", batch_size=1, seq_len=16, bidirectional=False, varlen="padded", **base),
        Case(model="lstm", batch_size=32, seq_len=64, bidirectional=True, varlen="packed", **base),
        Case(model="gru", batch_size=32, seq_len=64, bidirectional=False, varlen="padded", **base),
        Case(model="gru", batch_size=8, seq_len=128, bidirectional=True, varlen="packed", **base),
    ]


def timer_overhead_us(cuda: bool) -> float:
    """Median time of a timed no-op: what the harness itself adds per sample."""
    m = measure(
        [("noop", lambda: None)], TimerConfig(), clock_for("cuda" if cuda else "cpu"), stop=FixedCount(OVERHEAD_RUNS)
    )
    return summarize(m.total_ms).median_ms * 1e3


def compare_case(case: Case) -> tuple[float, float, float, float, float]:
    """(suite median ms, torch median ms, paired ratio, suite seconds, torch seconds).

    The ratio is the median over rounds of suite/torch, each round's two blocks
    measured back to back: pairing cancels the drift between rounds.
    """
    work = build(case)
    ours_ms: list[float] = []
    ref_ms: list[float] = []
    ratios: list[float] = []
    ours_s = ref_s = 0.0
    with work.context():
        clock = clock_for(case.device)
        # torch's Timer sets its own thread count (default 1): give it the case's. On CUDA
        # it synchronizes once per block of runs, letting runs overlap the next one's
        # launches, while the suite waits for each run: it is made to wait per run too,
        # so that the two time the same thing and a difference is the harness's.
        stmt = "step(); torch.cuda.synchronize()" if case.device == "cuda" else "step()"
        timer = benchmark.Timer(
            stmt=stmt, globals={"step": work.step.forward, "torch": torch}, num_threads=case.threads
        )
        # ABBA order: each harness goes first in half the rounds, so neither
        # always inherits the other's cache and frequency state.
        for i in range(ROUNDS):
            block: dict[str, list[float]] = {}
            for harness in ("suite", "torch") if i % 2 == 0 else ("torch", "suite"):
                t0 = time.perf_counter()
                if harness == "suite":
                    m = measure(work.phases, ROUND_WARMUP, clock, work.before_sample, stop=ROUND_STOP)
                    block[harness] = m.total_ms.tolist()
                    ours_s += time.perf_counter() - t0
                else:
                    ref = timer.blocked_autorange(min_run_time=ROUND_S)
                    block[harness] = [t * 1e3 for t in ref.times]
                    ref_s += time.perf_counter() - t0
            ours_ms += block["suite"]
            ref_ms += block["torch"]
            ratios.append(float(np.median(block["suite"]) / np.median(block["torch"])))
    ratio = float(np.median(ratios))
    return summarize(ours_ms).median_ms, summarize(ref_ms).median_ms, ratio, ours_s, ref_s
