"""Instruction counts: the instruction clock, and the process that runs under callgrind.

``bench.execution.counting`` starts this module as
``valgrind --tool=callgrind --collect-atstart=no ... python -m bench.execution.callgrind JOB``.
The process imports torch once (instrumented but not counted), then forks a
child per case, so that a case starts from nearly the same state whatever ran
before it (Python's specializing interpreter and the allocators carried one
case's history into the next one's counts by up to 0.5% here; forked, the
parent's own small changes still move them by up to 0.14%). The
child builds the case, warms it up (not counted), and counts ``repeats``
steps through the one measuring loop (``bench.core.timer.run_loop``) with the
*instruction clock*: callgrind's collection is switched on around each phase
(``torch._C._valgrind_toggle``, as ``torch.utils.benchmark``'s
``collect_callgrind`` does) and its counters are dumped as it is switched off,
so each dump's ``totals:`` line is one phase's instruction count, and nothing
between phases (gradient clearing, the loop itself) is counted.

Counts depend on Python's string hashing, so the parent fixes ``PYTHONHASHSEED``;
with it, two processes count the same steps alike to the instruction.

Protocol: one JSON line per case on the process's original stdout; anything the
models or torch print goes to stderr.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import torch

from bench.core.cases import Case
from bench.core.timer import Clock, FixedCount, Phase, TimerConfig, cpu_clock, gc_paused, run_loop, warm_up
from bench.execution import messages
from bench.measure.failures import failure
from bench.measure.workload import build
from bench.records.outcomes import Counted, Failed

OUT_FILE_ENV = "RNNBENCH_CALLGRIND_OUT"  # callgrind's --callgrind-out-file (with %p), set by bench.execution.counting
_TOTALS = re.compile(rb"^totals:\s+(\d+)", re.MULTILINE)


class NotCounting(RuntimeError):
    """This process is not under callgrind, or torch cannot switch its collection."""


class Dumps:
    """This process's numbered callgrind dumps (``OUT.PID.1``, ``OUT.PID.2``, ...), read in order and removed."""

    def __init__(self, out_template: str) -> None:
        self.out_file = out_template.replace("%p", str(os.getpid()))
        self.read = 0

    def next_count(self) -> int:
        self.read += 1
        path = Path(f"{self.out_file}.{self.read}")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotCounting(
                f"callgrind wrote no dump {path.name}: is this process running under callgrind?"
            ) from None
        path.unlink()
        found = _TOTALS.search(data)
        if found is None:
            raise NotCounting(f"{path.name} has no totals line")
        return int(found.group(1))


def instruction_clock(dumps: Dumps) -> Clock:
    """A clock for ``run_loop`` that gives each phase's instruction count, not its time."""
    toggle: Callable[[], None] = torch._C._valgrind_toggle
    toggle_and_dump: Callable[[], None] = torch._C._valgrind_toggle_and_dump_stats

    def clock(phases: Sequence[Phase]) -> list[float]:
        counts = []
        for _, fn in phases:
            toggle()
            fn()
            toggle_and_dump()  # collection off first, then the dump: the dump itself is not counted
            counts.append(float(dumps.next_count()))
        return counts

    return clock


def check_counting(dumps: Dumps) -> None:
    """One empty count: refuses a torch without valgrind support or a process outside callgrind."""
    if not torch._C._valgrind_supported_platform():
        raise NotCounting(f"torch {torch.__version__} was built without valgrind support: it cannot count")
    instruction_clock(dumps)([("probe", lambda: None)])


def count_case(case: Case, repeats: int, warmups: int, dumps: Dumps) -> dict[str, Any]:
    """One case's counts per phase (``repeats`` steps after ``warmups`` uncounted ones), as a
    protocol record; a failure is a record too (``bench.measure.failures``), never an exception."""
    work = None
    try:
        work = build(case)
        with work.context():
            warm_up(work.phases, TimerConfig(warmup_runs=warmups, warmup_s=0.0), cpu_clock, work.before_sample)
            with gc_paused():
                samples = run_loop(work.phases, instruction_clock(dumps), FixedCount(repeats), work.before_sample)
            settings = work.kernel_settings()
        counts = {name: [int(s[i]) for s in samples] for i, (name, _) in enumerate(work.phases)}
        return messages.counted_record(case.case_id, Counted(counts, work.facts(), settings))
    except NotCounting:
        raise  # nothing here can count: the parent reports it for every case
    except Exception as e:
        return messages.failed_record(case.case_id, failure(e))
    finally:
        if work is not None:
            work.close()
        del work


def serve(job: messages.CountJob, protocol: TextIO, out_template: str) -> None:
    """Count the job's cases in order, each in a forked child that writes its protocol line.

    Two probe children go first: the parent's own state (its heap, its specialized loop)
    changes over its first fork, and the first case should not be counted from that state.
    """
    torch.set_num_threads(1)
    for case in [None, None, *job.cases]:
        pid = os.fork()
        if pid == 0:  # the child: count, report, and leave without running the parent's cleanup
            code = 1
            try:
                code = _child(case, job, protocol, out_template)
            finally:  # whatever happens, the child never goes back into the parent's loop
                os._exit(code)
        status = os.waitpid(pid, 0)[1]
        if os.waitstatus_to_exitcode(status) == 3:
            raise SystemExit(3)  # the child said why
        if status != 0 and case is not None:  # it died before its line: say so in its place
            why = f"the counting process died ({_death(status)})"
            protocol.write(messages.to_line(messages.failed_record(case.case_id, Failed("error", why))))
            protocol.flush()


def _child(case: Case | None, job: messages.CountJob, protocol: TextIO, out_template: str) -> int:
    """A forked child's work: the probe (``case`` None) or one case's counts; its exit code."""
    try:
        dumps = Dumps(out_template)
        if case is None:
            check_counting(dumps)
            return 0
        record = count_case(case, job.repeats, job.warmups, dumps)
        code = 0
    except NotCounting as e:
        record, code = messages.fatal_record(str(e)), 3
    protocol.write(messages.to_line(record))
    protocol.flush()
    return code


def _death(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    return f"signal {-code}" if code < 0 else f"exit {code}"


def main(argv: Sequence[str]) -> int:
    job = messages.parse_count_job(messages.from_line(Path(argv[0]).read_text(encoding="utf-8")))
    # The parent's import path (its checkout first, --model-path folders), so that this
    # process runs the same code and finds the same user models.
    sys.path[:0] = [p for p in job.sys_path if p not in sys.path]
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # from here on, stray prints (a user's model, torch) go to stderr
    try:
        serve(job, protocol, os.environ[OUT_FILE_ENV])
    except NotCounting as e:
        protocol.write(messages.to_line(messages.fatal_record(str(e))))
        return 3
    finally:
        protocol.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
