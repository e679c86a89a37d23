"""The overhead floor: what one cell step costs when it does almost no work.

A tiny copy of the case (hidden and embedding size 8, batch 1, 64 steps, one layer, one
direction) keeps everything that costs per step whatever the sizes: the kernel's
dispatch and launches, packing, the Python of the cell loop. Its median time over its
64 steps is the floor of one step; a case's floor is that times its steps, layers and
directions (``bench.core.roofline.overhead_steps``). ``compiled`` is floored as the
module (compiling a tiny copy would cost more than the sweep's floors together).
"""

from __future__ import annotations

import dataclasses

import torch

from bench.core.cases import Case
from bench.core.timer import TimerConfig, measure, within
from bench.measure.clocks import clock_for
from bench.measure.workload import build

FLOOR_STEPS = 64
FLOOR_TIMER = TimerConfig(target_rel_ci=0.05, min_samples=6, max_samples=200, budget_s=0.3, warmup_s=0.05)


def floor_case(case: Case) -> Case:
    """The tiny copy of ``case`` whose time is all fixed cost."""
    return dataclasses.replace(
        case,
        batch_size=1,
        seq_len=FLOOR_STEPS,
        lengths="full",
        num_layers=1,
        bidirectional=False,
        embedding_dim=8,
        hidden_size=8,
        vocab_size=min(case.vocab_size, 100),
        impl="module" if case.impl == "compiled" else case.impl,
    )


def floor_key(case: Case) -> Case:
    """Cases that share a floor share this key."""
    return floor_case(case)


def floor_ms_per_step(case: Case, budget_s: float = FLOOR_TIMER.budget_s) -> float:
    """The median time of one cell step of the tiny copy (ms)."""
    tiny = floor_case(case)
    work = build(tiny)
    try:
        with work.context():
            m = measure(work.phases, within(FLOOR_TIMER, budget_s), clock_for(tiny.device), work.before_sample)
    finally:
        work.close()
    del work
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    total = sorted(m.total_ms)
    return float(total[len(total) // 2]) / FLOOR_STEPS
