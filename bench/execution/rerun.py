"""The same sweep run twice, one run after the other (``bench validate --calibration``)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from bench.core.spec import Spec
from bench.execution.runner import SweepOptions, plan, prepare_output, run_sweep
from bench.records.rows import new_run_id


def measure_twice(spec: Spec, folder: Path) -> tuple[Path, Path]:
    """The sweep run twice into ``folder``, each exactly as ``bench run`` would (rounds included);
    (first CSV, second CSV)."""
    options = SweepOptions(spec)
    cases, _ = plan(options)
    paths = (folder / "first.csv", folder / "second.csv")
    print(
        f"{len(cases)} cases from {spec.source}, {spec.timer.rounds} round(s) each, run twice into {folder} "
        f"(torch {torch.__version__}, {torch.get_num_threads()} threads)",
        file=sys.stderr,
    )
    for path in paths:
        run_id, done = prepare_output(path, False, new_run_id())
        t0 = time.perf_counter()
        run_sweep(options, cases, path, run_id, done)
        print(f"{path.name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return paths
