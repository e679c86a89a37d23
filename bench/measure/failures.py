"""What a failed case becomes: an ``oom`` or ``error`` outcome with one line saying why.

Only the text of the exception is kept: an exception object holds its
traceback, and the traceback holds every frame's locals (the case's model,
its tensors, the autograd graph), which would keep a failed case's memory
alive into the next case.
"""

from __future__ import annotations

import torch

from bench.core.errors import one_line
from bench.measure.usermodels import Unsupported
from bench.records.outcomes import Failed

# Allocation failures as torch, cuDNN, cuBLAS and the CPU allocator word them. Not
# every message with "memory" in it: "an illegal memory access was encountered"
# is a crash, not a lack of memory.
OOM_TEXT = (
    "out of memory",
    "can't allocate memory",
    "not enough memory",
    "cudnn_status_alloc_failed",
    "cublas_status_alloc_failed",
    "failed to allocate memory",
)


def oom_types() -> tuple[type[BaseException], ...]:
    """The exception classes that mean "out of memory" in this torch.

    ``torch.OutOfMemoryError`` exists from torch 2.5; ``torch.cuda.OutOfMemoryError``
    from 1.13; ``MemoryError`` is Python's own (a failed CPU allocation).
    """
    found = (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None))
    return (*(t for t in found if isinstance(t, type)), MemoryError)


def is_oom(error: BaseException) -> bool:
    if isinstance(error, oom_types()):
        return True
    text = str(error).lower()
    return any(s in text for s in OOM_TEXT)


def from_launcher(error: BaseException) -> bool:
    """An exception of the job launcher's (submitit's time-limit or preemption handling), raised
    inside whatever case was running: the job's, never the case's, so never its row."""
    return type(error).__module__.split(".")[0] == "submitit"


def failure(error: BaseException) -> Failed:
    if isinstance(error, Unsupported):  # a user's factory refused the case
        return Failed("unsupported", str(error)[:500])
    return Failed("oom" if is_oom(error) else "error", one_line(error))
