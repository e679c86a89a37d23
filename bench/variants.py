"""Measure the variants of one case side by side (``bench run --side-by-side``).

Cases that differ only in ``varlen`` and ``impl`` (padded / packed / exact,
module / compiled / cells) answer "which variant is faster", and on a shared
machine the answer drifts by tens of percent between one case's time slot and
the next. Here a group of such cases is built and warmed up together, then
sampled in rounds of one short block per case, the order reversed every round
(A B C, C B A, ...), so drift hits every variant alike and the ratios of their
medians are measured side by side.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.spec import Case
from bench.stats import summarize
from bench.timer import Measurement, TimerConfig, time_phases
from bench.workload import Workload

VARIANT_AXES = ("varlen", "impl")
BLOCK_S = 0.1  # one turn of a case: long enough for several samples of a fast case
MIN_ROUNDS = 6  # spread every variant's samples over the group's whole time window


def variant_groups(cases: Sequence[Case]) -> list[list[Case]]:
    """Cases grouped by every axis but varlen and impl, in first-seen order."""
    groups: dict[tuple, list[Case]] = {}
    for case in cases:
        key = tuple(v for k, v in case.axes().items() if k not in VARIANT_AXES)
        groups.setdefault(key, []).append(case)
    return list(groups.values())


@dataclass
class Member:
    """One case of a group while it is being measured."""

    work: Workload
    samples: list[list[float]]
    warmups: int = 0
    error: BaseException | None = None

    def block(self, seconds: float, cuda: bool, limit: int | None = None) -> None:
        """At least one run, more until ``seconds`` pass or ``limit`` samples are held."""
        timed = time_phases(cuda)
        start = time.perf_counter()
        runs = 0
        while runs < 1 or (time.perf_counter() - start < seconds and (limit is None or len(self.samples) < limit)):
            self.work.before_sample()
            self.samples.append(timed(self.work.phases))
            runs += 1

    def rel_ci(self) -> float:
        return summarize(np.sum(self.samples, axis=1)).rel_ci_half_width if len(self.samples) >= 6 else np.inf


def measure_together(
    works: Sequence[Workload], config: TimerConfig
) -> tuple[list[tuple[Workload, Measurement | BaseException]], int]:
    """Warm every workload up, then alternate blocks until each is precise enough
    or the group's budget (``budget_s`` per case) is spent.

    Returns each workload with its measurement (or the exception that stopped
    it), and the number of rounds.
    """
    cuda = any(w.case.device == "cuda" for w in works)
    members = [Member(w, []) for w in works]
    for m in members:
        try:
            with m.work.context():
                start = time.perf_counter()
                while m.warmups < config.warmup_runs or time.perf_counter() - start < config.warmup_s:
                    m.block(0.0, cuda)
                    m.warmups += 1
                m.samples.clear()
        except Exception as e:
            m.error = e
    live = [m for m in members if m.error is None]
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    start = time.perf_counter()
    rounds = 0
    try:
        while live:
            order = live if rounds % 2 == 0 else live[::-1]
            for m in order:
                if len(m.samples) >= config.max_samples:
                    continue  # a fast variant stops here; the slower ones still get their samples
                try:
                    with m.work.context():
                        m.block(BLOCK_S, cuda, limit=config.max_samples)
                except Exception as e:
                    m.error = e
            live = [m for m in live if m.error is None]
            rounds += 1
            enough = rounds >= MIN_ROUNDS and all(len(m.samples) >= config.min_samples for m in live)
            precise = all(m.rel_ci() <= config.target_rel_ci for m in live)
            if enough and (precise or time.perf_counter() - start >= config.budget_s * len(members)):
                break
            if all(len(m.samples) >= config.max_samples for m in live):
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    took = time.perf_counter() - start
    results: list[tuple[Workload, Measurement | BaseException]] = []
    for m in members:
        if m.error is not None:
            results.append((m.work, m.error))
            continue
        phases = {name: [s[i] for s in m.samples] for i, (name, _) in enumerate(m.work.phases)}
        results.append((m.work, Measurement(phases, m.warmups, took, m.rel_ci() <= config.target_rel_ci)))
    return results, rounds
