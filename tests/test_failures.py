"""Failed cases: OOM told apart from other errors, on every torch we support."""

from __future__ import annotations

import math

import pytest
import torch
from factories import make_case

from bench.execution import runner
from bench.measure.failures import failure, is_oom
from bench.records.outcomes import Failed


@pytest.mark.parametrize(
    "message",
    [
        "CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.10 GiB total capacity)",
        "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes",
        "cuDNN error: CUDNN_STATUS_ALLOC_FAILED",
        "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
        "HIP out of memory. Tried to allocate 2.00 GiB",
    ],
)
def test_allocation_failures_are_oom(message):
    assert is_oom(RuntimeError(message))


@pytest.mark.parametrize(
    "message",
    [
        "CUDA error: an illegal memory access was encountered",
        "CUDA error: misaligned address",
        "Expected all tensors to be on the same device",
        "shared memory size exceeds the kernel's limit",
    ],
)
def test_other_errors_with_memory_in_the_text_are_errors(message):
    assert not is_oom(RuntimeError(message))


def test_python_memory_error_is_oom():
    assert failure(MemoryError()) == Failed("oom", "MemoryError: ")


@pytest.fixture
def torch_before_2_5(monkeypatch):
    """A torch without ``torch.OutOfMemoryError`` (it arrived in 2.5)."""
    monkeypatch.delattr(torch, "OutOfMemoryError", raising=False)
    assert not hasattr(torch, "OutOfMemoryError")


def test_failures_are_classified_without_torch_OutOfMemoryError(torch_before_2_5):
    assert failure(RuntimeError("boom")) == Failed("error", "RuntimeError: boom")
    assert failure(RuntimeError("CUDA out of memory.")).status == "oom"
    assert failure(torch.cuda.OutOfMemoryError("x")).status == "oom"


def test_a_failing_case_is_a_row_without_torch_OutOfMemoryError(torch_before_2_5, monkeypatch):
    def build(case):
        raise ValueError("cannot build")

    monkeypatch.setattr(runner, "build", build)
    assert runner.run_case(make_case(), runner.TimerConfig(), math.nan) == Failed("error", "ValueError: cannot build")


def test_failures_are_classified_with_neither_oom_class(torch_before_2_5, monkeypatch):
    monkeypatch.delattr(torch.cuda, "OutOfMemoryError", raising=False)
    assert failure(RuntimeError("boom")).status == "error"
    assert failure(RuntimeError("CUDA out of memory.")).status == "oom"
