"""The GPU check script's dry run: the plan holds on any machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_check_dry_run_plans_every_step(tmp_path):
    out = tmp_path / "check"
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu-check.sh"), "--dry-run", "--out", str(out), "--python", sys.executable],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (out / "summary.txt").read_text()
    for name in ("modules", "cuda-tests", "quick", "grid", "onnx", "stream"):
        assert f"{name}" in summary and f"{name}" + " " * (13 - len(name)) + "rc=0" in summary
    assert "every step passed" in summary
    collected = (out / "cuda-tests.log").read_text()
    assert "test_cuda_oom_is_a_row_and_the_next_case_runs_clean" in collected
    assert "test_cuda_memory_is_back_after_a_case" in collected
    planned = (out / "grid.log").read_text().split()
    assert len(planned) > 100 and all(line.startswith(("lstm-", "gru-")) for line in planned)
    assert any(line.endswith("-cudagraph") for line in planned)  # CUDA graphs beside the module
    stream = (out / "stream.log").read_text().split()
    assert any("-stream-" in line and line.endswith("-cudagraph-chunk8") for line in stream)
    onnx = (out / "onnx.log").read_text().split()
    assert any(line.endswith("-onnxruntime") for line in onnx) and any(line.endswith("-cudagraph") for line in onnx)


def test_gpu_check_refuses_an_unknown_argument(tmp_path):
    done = subprocess.run(["bash", str(REPO / "scripts" / "gpu-check.sh"), "--bogus"], capture_output=True, text=True)
    assert done.returncode == 2 and "unknown argument '--bogus'" in done.stderr
