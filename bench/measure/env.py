"""What machine and software a run measured: provenance for every row."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import torch

from bench.core.paths import REPO_ROOT


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def mem_gib() -> str:
    """The machine's memory in GiB (rounded), or "" where /proc/meminfo cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return str(round(int(line.split()[1]) / 2**20))
    except (OSError, ValueError, IndexError):
        pass
    return ""


def gpu_name() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""


@cache
def git_commit() -> str:
    """The checkout's commit (with ``+dirty`` when it has changes), or "" without git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return ""
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance() -> dict[str, str]:
    """The per-row provenance columns (docs/architecture.md), except run_id, timestamp and gpu_name."""
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "host": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_count": str(os.cpu_count() or ""),
        "mem_gib": mem_gib(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda or "",
        "cudnn_version": str(cudnn or ""),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python_version": platform.python_version(),
        "git_commit": git_commit(),
    }


def environment() -> dict[str, Any]:
    """Everything worth knowing to reproduce or compare a run (for the run JSON)."""
    env: dict[str, Any] = provenance()
    env.update(
        python=platform.python_version(),
        platform=platform.platform(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch_interop_threads=torch.get_num_interop_threads(),
        mkldnn_available=torch.backends.mkldnn.is_available(),
        cuda_available=torch.cuda.is_available(),
        gpu_name=gpu_name(),
        gpu_count=torch.cuda.device_count() if torch.cuda.is_available() else 0,
        omp_num_threads=os.environ.get("OMP_NUM_THREADS", ""),
    )
    return env
