"""The workload in a loop, for a sampling profiler attached from outside.

``python -m bench.profiling.loop CASE_ID SECONDS`` builds the case, warms it up,
prints ``READY`` and then runs steps for SECONDS (or until killed). The parent
attaches py-spy only after ``READY``, so model building and warm-up never
appear in the flame graph.
"""

from __future__ import annotations

import sys
import time

from bench.spec import Case
from bench.timer import TimerConfig, measure, time_phases
from bench.workload import build


def main(case_id: str, seconds: float) -> None:
    case = Case.from_id(case_id)
    work = build(case)
    timed = time_phases(case.device == "cuda")
    with work.context():
        measure(
            work.phases,
            TimerConfig(min_samples=6, max_samples=6, budget_s=1.0),
            cuda=case.device == "cuda",
            before_sample=work.before_sample,
        )
        print("READY", flush=True)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            work.before_sample()
            timed(work.phases)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
