"""``bench run --isolate``: each case in a child process of its own.

A crash in native code (a segfault in a kernel, an abort in a library) kills
only the child; the parent gets a ``Failed`` naming the signal and the sweep
goes on. Children are spawned, not forked: forking a process that already runs
torch's thread pools can deadlock. The cost is a fresh interpreter and torch
import per case (a few seconds).

The child runs a callable it is handed (pickled by reference), so this module
knows nothing of what it runs. For testing the isolation itself,
``RNNBENCH_FAULT_CASE=<label>`` makes the child with that label abort
(SIGABRT) before it calls anything.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any

from bench.execution import messages
from bench.records.outcomes import Failed

FAULT_ENV = "RNNBENCH_FAULT_CASE"


def _child(fn: Callable[..., Any], args: Sequence[Any], label: str, conn: Any) -> None:
    if os.environ.get(FAULT_ENV) == label:
        os.abort()
    from bench.core.timer import freeze_imports  # here: the child has imported what fn needs by now

    freeze_imports()
    conn.send(messages.isolate_reply(fn(*args)))
    conn.close()


def run_in_child(fn: Callable[..., Any], args: Sequence[Any], label: str) -> Any:
    """``fn(*args)`` in a spawned child; a dead child becomes a ``Failed``."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, args, label, send), daemon=True)
    proc.start()
    send.close()  # so that recv() sees EOF when the child dies
    try:
        result = messages.parse_isolate_reply(receive.recv())
    except EOFError:
        result = None
    finally:
        proc.join()
        receive.close()
    if result is not None:
        return result
    code = proc.exitcode or 0
    how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    return Failed("error", f"crashed: the case's process died ({how})")
