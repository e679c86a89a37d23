"""What happened to a case: measured (times), counted (instructions) or failed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.core.roofline import Roofs
from bench.core.timer import Measurement

METRICS = ("time", "instructions")
STATUSES = ("ok", "oom", "error", "unsupported")
FAILED_STATUSES = ("oom", "error")  # unsupported: a user's model declined the case, nothing failed


@dataclass(frozen=True)
class WorkFacts:
    """What a row needs to know of a built workload besides its timings."""

    valid_tokens: int
    padding_fraction: float
    gflop: float | None  # None: not counted (a user's model FlopCounterMode counts nothing of)


@dataclass(frozen=True)
class Measured:
    """A case that ran: its samples and what else was measured around them."""

    measurement: Measurement
    facts: WorkFacts
    peak_gflop_per_s: float
    target_rel_ci: float | None = None  # the precision target the schedule aimed for, if any
    extra: Mapping[str, float | None] = field(default_factory=dict)  # errors, compile_s, peak_mem_mb
    schedule: str = ""  # how it was sampled, when not alone (side by side, blocks)
    kernel_settings: str = ""  # bench.measure.backends.settings_now() while the case ran
    roofs: Roofs | None = None  # the case's roofs (set by the sweep's parent, which measured them)


@dataclass(frozen=True)
class Counted:
    """A case whose steps were counted under callgrind (``bench.execution.callgrind``): instructions
    per phase, one count per counted step."""

    counts: Mapping[str, Sequence[int]]
    facts: WorkFacts
    kernel_settings: str = ""

    @property
    def totals(self) -> np.ndarray:
        """Each counted step's instructions, its phases summed."""
        return np.sum([np.asarray(v, dtype=np.int64) for v in self.counts.values()], axis=0)


@dataclass(frozen=True)
class Failed:
    """A case that did not run: ``oom`` or ``error``, with one line saying why."""

    status: str
    error: str


Outcome = Measured | Counted | Failed
