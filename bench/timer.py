"""Adaptive timing of a workload's phases.

Warm-up runs first (oneDNN primitive creation, cuDNN plan selection, the first
CUDA call and the caching allocator's growth stay out of the samples). Then one
sample at a time until the 95% CI of the median is within ``target_rel_ci`` of
the median, or the case's ``budget_s`` is spent, but never fewer than
``min_samples``. GC is off while sampling. On CUDA each phase is bracketed by
CUDA events on the current stream and the host waits once per sample, after the
last event, so no host-side synchronization cost lands inside a phase.
"""

from __future__ import annotations

import gc
import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from bench.errors import UsageError
from bench.stats import summarize

Phase = tuple[str, Callable[[], None]]


@dataclass(frozen=True)
class TimerConfig:
    """How long and how precisely to sample each case."""

    target_rel_ci: float = 0.02  # stop once the CI half-width is within 2% of the median
    min_samples: int = 10  # at least this many, whatever the budget says
    max_samples: int = 2000  # no case needs more to pin its median
    budget_s: float = 2.0  # sampling time per case before giving up on the target
    warmup_runs: int = 2  # at least this many warm-up runs ...
    warmup_s: float = 0.2  # ... and at least this long
    check_every: int = 5  # recompute the CI every N samples

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
        if config.min_samples < 6:
            raise UsageError(f"{where}.min_samples: {config.min_samples} is too few for a 95% CI (need >= 6)")
        if config.max_samples < config.min_samples:
            raise UsageError(f"{where}.max_samples: {config.max_samples} is below min_samples")
        return config


@dataclass
class Measurement:
    """Raw samples per phase (ms) plus how the sampling ended."""

    phases: dict[str, list[float]]
    warmup_runs: int
    sampling_s: float
    reached_target: bool

    @property
    def total_ms(self) -> np.ndarray:
        return np.sum([np.asarray(v) for v in self.phases.values()], axis=0)


def time_phases_cpu(phases: Sequence[Phase]) -> list[float]:
    out = []
    for _, fn in phases:
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def time_phases_cuda(phases: Sequence[Phase]) -> list[float]:
    import torch

    events = [torch.cuda.Event(enable_timing=True) for _ in range(len(phases) + 1)]
    events[0].record()
    for (_, fn), end in zip(phases, events[1:], strict=True):
        fn()
        end.record()
    events[-1].synchronize()
    return [a.elapsed_time(b) for a, b in itertools.pairwise(events)]


def time_phases(cuda: bool) -> Callable[[Sequence[Phase]], list[float]]:
    """The function that times one run of the phases (ms each) on this device."""
    return time_phases_cuda if cuda else time_phases_cpu


def measure(
    phases: Sequence[Phase],
    config: TimerConfig,
    cuda: bool = False,
    before_sample: Callable[[], None] | None = None,
) -> Measurement:
    """Warm up, then sample the phases until precise enough or out of budget.

    ``before_sample`` runs untimed before every run (e.g. clearing gradients).
    """
    timed = time_phases(cuda)
    if cuda:
        import torch

        torch.cuda.synchronize()

    def run_once() -> list[float]:
        if before_sample is not None:
            before_sample()
        return timed(phases)

    warm_start, warmups = time.perf_counter(), 0
    while warmups < config.warmup_runs or time.perf_counter() - warm_start < config.warmup_s:
        run_once()
        warmups += 1
    samples: list[list[float]] = []
    reached = False
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    start = time.perf_counter()
    try:
        while len(samples) < config.max_samples:
            samples.append(run_once())
            n = len(samples)
            if n < config.min_samples:
                continue
            if n % config.check_every == 0 or n == config.min_samples:
                total = np.sum(samples, axis=1)
                if summarize(total).rel_ci_half_width <= config.target_rel_ci:
                    reached = True
                    break
            if time.perf_counter() - start >= config.budget_s:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    by_phase = {name: [s[i] for s in samples] for i, (name, _) in enumerate(phases)}
    return Measurement(by_phase, warmups, time.perf_counter() - start, reached)
