"""``bench run --isolate``: each case in a child process of its own.

A crash in native code (a segfault in a kernel, an abort in a library) kills
only the child; the parent writes an ``error`` row naming the signal and the
sweep goes on. Children are spawned, not forked: forking a process that already
runs torch's thread pools can deadlock. The cost is a fresh interpreter and
torch import per case (a few seconds).

For testing the isolation itself, ``RNNBENCH_FAULT_CASE=<case_id>`` makes the
child measuring that case abort (SIGABRT) before it builds anything.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from typing import Any

from bench.spec import Case
from bench.timer import Measurement, TimerConfig

FAULT_ENV = "RNNBENCH_FAULT_CASE"


def _child(case: Case, config: TimerConfig, peak: float, conn: Any) -> None:
    from bench.runner import run_case

    if os.environ.get(FAULT_ENV) == case.case_id:
        os.abort()
    conn.send(run_case(case, config, peak))
    conn.close()


def run_case_isolated(case: Case, config: TimerConfig, peak: float) -> tuple[dict[str, Any], Measurement | None]:
    """``run_case`` in a spawned child; a dead child becomes an ``error`` row."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(case, config, peak, send), daemon=True)
    proc.start()
    send.close()  # so that recv() sees EOF when the child dies
    try:
        result = receive.recv()
    except EOFError:
        result = None
    finally:
        proc.join()
        receive.close()
    if result is not None:
        return result
    code = proc.exitcode or 0
    how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    return {"status": "error", "error": f"crashed: the case's process died ({how})"}, None
