"""py-spy flame graph and speedscope profile of a case's steady-state loop."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from bench.core.cases import Case

PTRACE_FIX = "run as root, or allow ptrace (sysctl kernel.yama.ptrace_scope=0; in Docker: --cap-add SYS_PTRACE)"


def record(case: Case, out: Path, seconds: int) -> tuple[list[str], str | None]:
    """Write flame.svg and profile.speedscope.json; returns (files, problem or None).

    py-spy attaches to a child running ``bench.profiling.loop`` after it printed
    READY (model built, warmed up), and samples with --native so C++ frames
    (ATen, oneDNN, packing) show next to Python ones.
    """
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        return [], "py-spy is not installed (pip install py-spy); the flame graph was skipped"
    outputs = [("flamegraph", "flame.svg"), ("speedscope", "profile.speedscope.json")]
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.profiling.loop", case.case_id, str(seconds * len(outputs) + 30)],
        stdout=subprocess.PIPE,
        text=True,
    )
    files: list[str] = []
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "READY":
            return [], f"the workload did not start (exit {child.wait()})"
        for fmt, name in outputs:
            done = subprocess.run(
                [
                    exe,
                    "record",
                    "--pid",
                    str(child.pid),
                    "--native",
                    "--duration",
                    str(seconds),
                    "--format",
                    fmt,
                    "--output",
                    str(out / name),
                ],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0 or not (out / name).exists():
                why = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
                if "ermission" in why or "ptrace" in why.lower():
                    return files, f"py-spy cannot attach ({why}): {PTRACE_FIX}"
                return files, f"py-spy failed: {why}"
            files.append(name)
    finally:
        child.kill()
        child.wait()
    return files, None
