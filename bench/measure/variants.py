"""Measure the variants of one case side by side (``bench run --side-by-side``).

Cases that differ only in ``varlen`` and ``impl`` (padded / packed / exact,
module / compiled / cells) answer "which variant is faster", and on a shared
machine the answer drifts by tens of percent between one case's time slot and
the next. Here a group of such cases is built and warmed up together, then
sampled in turns of one short block per case (a ``TimeBudget`` run of the
measuring loop), the order reversed every round (A B C, C B A, ...), so drift
hits every variant alike and the ratios of their medians are measured side by
side.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.core.cases import Case
from bench.core.timer import Measurement, PrecisionTarget, Sample, TimeBudget, TimerConfig, gc_paused, run_loop, warm_up
from bench.measure.clocks import clock_for
from bench.measure.failures import failure, from_launcher
from bench.measure.workload import Workload
from bench.records.outcomes import Failed

VARIANT_AXES = ("varlen", "impl")
BLOCK_S = 0.1  # one turn of a case: long enough for several samples of a fast case
MIN_TURNS = 6  # spread every variant's samples over the group's whole time window


def variant_groups(cases: Sequence[Case]) -> list[list[Case]]:
    """Cases grouped by every axis but varlen and impl, in first-seen order."""
    groups: dict[tuple, list[Case]] = {}
    for case in cases:
        key = tuple(v for k, v in case.axes().items() if k not in VARIANT_AXES)
        groups.setdefault(key, []).append(case)
    return list(groups.values())


# Impls whose work runs on a thread pool of their own, not torch's.
OWN_THREAD_POOLS = ("onnxruntime",)


def mixes_thread_pools(works: Sequence[Workload]) -> bool:
    return len({w.case.impl in OWN_THREAD_POOLS for w in works}) > 1


def settle(work: Workload) -> None:
    """One untimed step before a variant's turn, in groups that mix thread pools: the variant
    before it may have run on the other pool (ONNX Runtime's or torch's), whose threads are still
    awake. On a 2-vCPU AMD EPYC VM, without it, ONNX Runtime's GRU steps beside the module's
    (b8 L128) had a 90th percentile 2.9x their median (alone: 1.09x; with it: 1.2x to 1.3x)."""
    for _, step in work.phases:
        work.before_sample()
        step()


@dataclass
class Member:
    """One case of a group while it is being measured."""

    work: Workload
    samples: list[Sample] = field(default_factory=list)
    warmups: int = 0
    failed: Failed | None = None  # the failure's text only: an exception would keep its frames alive


def measure_together(
    works: Sequence[Workload], config: TimerConfig
) -> tuple[list[tuple[Workload, Measurement | Failed]], int]:
    """Warm every workload up, then alternate blocks until each is precise enough
    or the group's budget (``budget_s`` per case) is spent.

    Returns each workload with its measurement (or the failure that stopped
    it), and the number of turns.
    """
    clock = clock_for("cuda" if any(w.case.device == "cuda" for w in works) else "cpu")
    target = PrecisionTarget(config)
    # A block: BLOCK_S of runs (shorter when a round's budget is short, so that the group still
    # turns MIN_TURNS times within it), at least one, never past max_samples in all.
    block = TimeBudget(min(BLOCK_S, config.budget_s / MIN_TURNS), max_runs=config.max_samples)
    members = [Member(w) for w in works]
    for m in members:
        try:
            with m.work.context():
                m.warmups = warm_up(m.work.phases, config, clock, m.work.before_sample)
        except Exception as e:
            if from_launcher(e):
                raise
            m.failed = failure(e)
    live = [m for m in members if m.failed is None]
    mixed = mixes_thread_pools([m.work for m in live])
    turns = 0
    with gc_paused():
        start = time.perf_counter()
        while live:
            for m in live if turns % 2 == 0 else live[::-1]:
                if len(m.samples) >= config.max_samples:
                    continue  # a fast variant stops here; the slower ones still get their samples
                try:
                    with m.work.context():
                        if mixed:
                            settle(m.work)
                        run_loop(m.work.phases, clock, block, m.work.before_sample, into=m.samples)
                except Exception as e:
                    if from_launcher(e):
                        raise  # a time limit: the job's, not this variant's (bench.measure.failures)
                    m.failed = failure(e)
            live = [m for m in live if m.failed is None]
            turns += 1
            # In rounds each round needs fewer turns: the rounds spread the samples over the sweep.
            enough = turns >= min(MIN_TURNS, config.min_samples) and all(
                len(m.samples) >= config.min_samples for m in live
            )
            # Streams spend their budget: a tail percentile wants calls, not a precise median.
            precise = all(target.reached(m.samples) and not m.work.case.streaming for m in live)
            if enough and (precise or time.perf_counter() - start >= config.budget_s * len(members)):
                break
            if all(len(m.samples) >= config.max_samples for m in live):
                break
        took = time.perf_counter() - start
    results: list[tuple[Workload, Measurement | Failed]] = []
    for m in members:
        if m.failed is not None:
            results.append((m.work, m.failed))
        else:
            measured = Measurement.of(m.work.phases, m.samples, m.warmups, took, target.reached(m.samples))
            results.append((m.work, measured))
    return results, turns
