"""The workload in a loop, for a sampling profiler attached from outside.

``python -m bench.profiling.loop CASE_ID SECONDS`` builds the case, warms it up,
prints ``READY`` and then runs steps for SECONDS (or until killed). The parent
attaches py-spy only after ``READY``, so model building and warm-up never
appear in the flame graph.
"""

from __future__ import annotations

import sys

from bench.core.cases import Case
from bench.core.timer import TimeBudget, TimerConfig, run_loop, warm_up
from bench.measure.clocks import clock_for
from bench.measure.workload import build


def main(case_id: str, seconds: float) -> None:
    case = Case.from_id(case_id)
    work = build(case)
    with work.context():
        clock = clock_for(case.device)
        warm_up(work.phases, TimerConfig(), clock, work.before_sample)
        print("READY", flush=True)
        run_loop(work.phases, clock, TimeBudget(seconds), work.before_sample)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
