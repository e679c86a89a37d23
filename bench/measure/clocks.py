"""Clocks for the measuring loop that need torch: CUDA events.

On CUDA each phase is bracketed by CUDA events on the current stream and the
host waits once per run, after the last event, so no host-side synchronization
cost lands inside a phase.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

from bench.core.timer import Clock, Phase, cpu_clock


def cuda_clock(phases: Sequence[Phase]) -> list[float]:
    """GPU time of each phase in ms, by CUDA events."""
    events = [torch.cuda.Event(enable_timing=True) for _ in range(len(phases) + 1)]
    events[0].record()
    for (_, fn), end in zip(phases, events[1:], strict=True):
        fn()
        end.record()
    events[-1].synchronize()
    return [a.elapsed_time(b) for a, b in itertools.pairwise(events)]


def clock_for(device: str) -> Clock:
    """The clock that times a case on ``device``; CUDA work is synchronized first."""
    if device == "cuda":
        torch.cuda.synchronize()
        return cuda_clock
    return cpu_clock
