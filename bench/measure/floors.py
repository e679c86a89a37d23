"""The overhead floor: what a call and each cell step cost when they do almost no work.

A tiny copy of the case (hidden and embedding size 8, batch 1, one layer, one direction)
keeps everything that costs whatever the sizes: the kernel's dispatch and launches,
packing, the Python of the cell loop. It is timed at 16 and at 64 steps; the line through
the two medians gives a fixed cost per call (embedding, packing, dispatch: the intercept)
and per step (the slope). A case's floor is the per-call cost plus the per-step cost times
its steps, layers and directions (``bench.core.roofline.overhead_steps``). ``compiled`` and
``onnxruntime`` are floored as the module (``FLOORED_AS_MODULE``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from bench.core.cases import Case
from bench.core.timer import TimerConfig, measure, within
from bench.measure.clocks import clock_for
from bench.measure.workload import build

FLOOR_STEPS = (16, 64)
# Floored as the module: compiling or exporting two tiny copies per case would cost more than the
# sweep's floors together (an export takes seconds), and their per-call costs are left unmeasured.
FLOORED_AS_MODULE = ("compiled", "onnxruntime")
FLOOR_TIMER = TimerConfig(target_rel_ci=0.05, min_samples=6, max_samples=200, budget_s=0.3, warmup_s=0.05)


def floor_case(case: Case, steps: int = FLOOR_STEPS[-1]) -> Case:
    """The tiny copy of ``case`` whose time is all fixed cost (a stream call is floored as the
    forward over its chunk it is, bench.records.rows)."""
    return dataclasses.replace(
        case,
        mode="inference" if case.streaming else case.mode,
        chunk=1,
        batch_size=1,
        seq_len=steps,
        lengths="full",
        num_layers=1,
        bidirectional=False,
        embedding_dim=8,
        hidden_size=8,
        vocab_size=min(case.vocab_size, 100),
        impl="module" if case.impl in FLOORED_AS_MODULE else case.impl,
    )


def _median_ms(tiny: Case, budget_s: float) -> float:
    work = build(tiny)
    try:
        with work.context():
            m = measure(work.phases, within(FLOOR_TIMER, budget_s), clock_for(tiny.device), work.before_sample)
    finally:
        work.close()
    del work
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    return float(np.median(m.total_ms))


def floor_ms(case: Case, budget_s: float = FLOOR_TIMER.budget_s) -> tuple[float, float]:
    """(per call, per cell step) in ms: the line through the tiny copy's medians at 16 and 64 steps
    (a per-call cost is never below zero)."""
    short, long = FLOOR_STEPS
    short_ms, long_ms = (_median_ms(floor_case(case, steps), budget_s) for steps in FLOOR_STEPS)
    per_step = max(0.0, (long_ms - short_ms) / (long - short))
    return max(0.0, short_ms - per_step * short), per_step
