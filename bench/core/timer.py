"""The one measuring loop, and the schedules built on it.

Everything rnnbench measures goes through ``run_loop``: it runs a step again
and again, each run timed by a *clock* (how one run is timed: the CPU's
``perf_counter`` here, CUDA events in ``bench.measure.clocks``), until a *stop rule*
(when to stop: a precision target, a fixed count, a time budget) says enough.
The same design as ``torch.utils.benchmark.Timer``'s measurement loop with its
time and stop hooks: a new metric is a new clock, a new schedule a new use of
the loop, never a new loop.

Schedules over the loop:

* ``measure``: warm-up, then samples until the 95% CI of the median is within
  ``target_rel_ci`` (``bench run``, one case at a time);
* ``bench.measure.variants``: warm-up per case, then alternating blocks of a time budget
  (``--side-by-side``);
* ``bench.execution.worker``: blocks on demand, for two trees side by side (``--against``);
* ``bench validate`` and the pytest-benchmark CI suite.

GC is paused while sampling (``gc_paused``), never during warm-up. Nothing here
imports torch: the report layer reads ``TimerConfig`` through the spec.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

import numpy as np

from bench.core.errors import UsageError
from bench.core.stats import MIN_CI_SAMPLES, summarize

Phase = tuple[str, Callable[[], None]]
# How one run of the phases is timed: one value per phase (ms, or a count for other metrics).
Clock = Callable[[Sequence[Phase]], list[float]]
Sample = list[float]  # one run: a value per phase


MIN_ROUND_SAMPLES = 3  # per round, with two rounds or more: the CI is taken across rounds


@dataclass(frozen=True)
class TimerConfig:
    """How long and how precisely to sample each case."""

    target_rel_ci: float = 0.02  # stop once the CI half-width is within 2% of the median
    min_samples: int = 10  # at least this many per round, whatever the budget says
    max_samples: int = 2000  # no case needs more to pin its median
    budget_s: float = 2.0  # sampling time per case before giving up on the target
    warmup_runs: int = 2  # at least this many warm-up runs ...
    warmup_s: float = 0.2  # ... and at least this long
    check_every: int = 5  # recompute the CI every N samples
    # Rounds (bench.execution.rounds): each case is measured in this many fresh processes, interleaved over
    # the sweep, and its CI is taken across them; budget_s is split over the rounds. Cases that
    # miss the target get more rounds from the time the others saved, up to max_rounds.
    rounds: int = 3
    max_rounds: int = 12

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str) -> TimerConfig:
        if not isinstance(raw, Mapping):
            raise UsageError(f"{where}: must be a table")
        known = {f.name: f.type for f in fields(cls)}
        values = {}
        for key, value in raw.items():
            if key not in known:
                raise UsageError(f"{where}: unknown key {key!r} (allowed: {', '.join(known)})")
            want_int = known[key] == "int"
            if isinstance(value, bool) or not isinstance(value, int if want_int else (int, float)):
                kind = "an integer" if want_int else "a number"
                raise UsageError(f"{where}.{key}: {value!r} is not {kind}")
            # `not >` also refuses NaN; a zero warm-up time is fine, nothing else may be zero.
            if not math.isfinite(value) or not (value > 0 or (key == "warmup_s" and value == 0)):
                raise UsageError(f"{where}.{key}: {value!r} must be a finite positive number")
            values[key] = value
        config = cls(**values)
        # One round's CI comes from its own samples; with rounds the CI comes from the round
        # medians, and a round needs only enough samples for a median.
        least = MIN_CI_SAMPLES if config.rounds == 1 else MIN_ROUND_SAMPLES
        if config.min_samples < least:
            raise UsageError(
                f"{where}.min_samples: {config.min_samples} is too few for a 95% CI with {config.rounds} round(s) "
                f"(need >= {least})"
            )
        if config.max_samples < config.min_samples:
            raise UsageError(f"{where}.max_samples: {config.max_samples} is below min_samples")
        if config.max_rounds < config.rounds:
            raise UsageError(f"{where}.max_rounds: {config.max_rounds} is below rounds ({config.rounds})")
        return config

    def with_rounds(self, rounds: int) -> TimerConfig:
        """This config with ``rounds`` rounds (``--rounds``): one round needs a CI's worth of samples."""
        if rounds < 1:
            raise UsageError(f"--rounds: {rounds} must be 1 or more")
        least = self.min_samples if rounds > 1 else max(self.min_samples, MIN_CI_SAMPLES)
        return replace(self, rounds=rounds, max_rounds=max(self.max_rounds, rounds), min_samples=least)

    def for_one_round(self) -> TimerConfig:
        """The config of one round: the case's budget split over its rounds."""
        return replace(self, budget_s=self.budget_s / self.rounds)


# --- stop rules: when the loop has enough ------------------------------------------------------


class StopRule(Protocol):
    def done(self, samples: Sequence[Sample], elapsed_s: float) -> bool:
        """True once ``samples`` (taken in ``elapsed_s`` seconds) are enough."""
        ...


@dataclass(frozen=True)
class FixedCount:
    """Exactly ``runs`` runs."""

    runs: int

    def done(self, samples: Sequence[Sample], elapsed_s: float) -> bool:
        return len(samples) >= self.runs


@dataclass(frozen=True)
class AtLeast:
    """At least ``runs`` runs and at least ``seconds`` (a warm-up)."""

    runs: int
    seconds: float

    def done(self, samples: Sequence[Sample], elapsed_s: float) -> bool:
        return len(samples) >= self.runs and elapsed_s >= self.seconds


@dataclass(frozen=True)
class TimeBudget:
    """Runs for ``seconds`` (a block), at least ``min_runs``, at most ``max_runs`` in all."""

    seconds: float
    min_runs: int = 1
    max_runs: int | None = None

    def done(self, samples: Sequence[Sample], elapsed_s: float) -> bool:
        if self.max_runs is not None and len(samples) >= self.max_runs:
            return True
        return len(samples) >= self.min_runs and elapsed_s >= self.seconds


@dataclass(frozen=True)
class PrecisionTarget:
    """Until the median's 95% CI is within ``config.target_rel_ci``, or the budget is spent."""

    config: TimerConfig

    def done(self, samples: Sequence[Sample], elapsed_s: float) -> bool:
        c, n = self.config, len(samples)
        if n >= c.max_samples:
            return True
        if n < c.min_samples:
            return False
        if (n % c.check_every == 0 or n == c.min_samples) and self.reached(samples):
            return True
        return elapsed_s >= c.budget_s

    def reached(self, samples: Sequence[Sample]) -> bool:
        return rel_ci(samples) <= self.config.target_rel_ci


def rel_ci(samples: Sequence[Sample]) -> float:
    """The CI half-width of the median run (phases summed), relative to it; inf below 6 runs."""
    if len(samples) < MIN_CI_SAMPLES:
        return math.inf
    return summarize(np.sum(samples, axis=1)).rel_ci_half_width


# --- the loop ---------------------------------------------------------------------------------


def run_loop(
    phases: Sequence[Phase],
    clock: Clock,
    stop: StopRule,
    before_run: Callable[[], None] | None = None,
    into: list[Sample] | None = None,
) -> list[Sample]:
    """Run the phases (at least once) until ``stop`` is done; one sample per run.

    ``before_run`` runs untimed before every run (clearing gradients).
    ``into`` continues a list of samples (a case's blocks): the stop rule sees
    the whole list, the elapsed time counts from this call.
    """
    samples = [] if into is None else into
    start = time.perf_counter()
    while True:
        if before_run is not None:
            before_run()
        samples.append(clock(phases))
        if stop.done(samples, time.perf_counter() - start):
            return samples


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage collection while sampling: a collection in a sample is noise."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def freeze_imports() -> None:
    """Move everything alive now (the imported modules: torch alone is ~10⁶ objects) out of the
    collector's sight, so that ``gc_paused``'s collection before each case scans only what
    cases made: 95 ms less per case on a 2-vCPU VM. Called once per measuring process, before
    any case is built, so no case is ever frozen."""
    gc.collect()
    gc.freeze()


def cpu_clock(phases: Sequence[Phase]) -> list[float]:
    """Wall time of each phase in ms, by ``perf_counter``."""
    out = []
    for _, fn in phases:
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


@dataclass
class Measurement:
    """Raw samples per phase (ms) plus how the sampling ended.

    ``reached_target`` is None when the schedule set no precision target (fixed
    counts, blocks): nothing was checked, so nothing is claimed. ``rounds`` tags
    each run with the round (fresh process) it was taken in; None for one round.
    """

    phases: dict[str, list[float]]
    warmup_runs: int
    sampling_s: float
    reached_target: bool | None
    rounds: list[int] | None = None

    @property
    def round_count(self) -> int:
        return 1 if self.rounds is None else len(set(self.rounds))

    @property
    def total_ms(self) -> np.ndarray:
        return np.sum([np.asarray(v) for v in self.phases.values()], axis=0)

    @classmethod
    def of(
        cls, phases: Sequence[Phase], samples: Sequence[Sample], warmups: int, seconds: float, reached: bool | None
    ) -> Measurement:
        by_phase = {name: [s[i] for s in samples] for i, (name, _) in enumerate(phases)}
        return cls(by_phase, warmups, seconds, reached)

    @classmethod
    def merged(cls, parts: Sequence[tuple[int, Measurement]], reached: bool | None) -> Measurement:
        """One measurement of a case's rounds: ``(round, measurement)`` pairs, runs tagged by round."""
        names = list(parts[0][1].phases)
        phases = {name: [v for _, m in parts for v in m.phases[name]] for name in names}
        tags = [r for r, m in parts for _ in m.phases[names[0]]]
        warmups = sum(m.warmup_runs for _, m in parts)
        seconds = sum(m.sampling_s for _, m in parts)
        return cls(phases, warmups, seconds, reached, tags)


def warm_up(
    phases: Sequence[Phase], config: TimerConfig, clock: Clock, before_run: Callable[[], None] | None = None
) -> int:
    """Warm-up runs (oneDNN primitives, cuDNN plans, allocator growth stay out of the samples)."""
    return len(run_loop(phases, clock, AtLeast(config.warmup_runs, config.warmup_s), before_run))


def measure(
    phases: Sequence[Phase],
    config: TimerConfig,
    clock: Clock = cpu_clock,
    before_run: Callable[[], None] | None = None,
    stop: StopRule | None = None,
) -> Measurement:
    """Warm up, then sample until ``stop`` (default: the config's precision target)."""
    warmups = warm_up(phases, config, clock, before_run)
    rule = stop if stop is not None else PrecisionTarget(config)
    with gc_paused():
        start = time.perf_counter()
        samples = run_loop(phases, clock, rule, before_run)
        took = time.perf_counter() - start
    reached = rule.reached(samples) if isinstance(rule, PrecisionTarget) else None
    return Measurement.of(phases, samples, warmups, took, reached)


def within(config: TimerConfig, budget_s: float) -> TimerConfig:
    """``config`` sampling for at most ``budget_s`` (and warming up for at most half of it)."""
    return replace(config, budget_s=min(config.budget_s, budget_s), warmup_s=min(config.warmup_s, budget_s / 2))
