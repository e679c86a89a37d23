"""Test data made one way: cases by keyword, results files through the results module's own writer."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.core.cases import Case
from bench.core.paths import REPO_ROOT
from bench.core.roofline import Level, Roofs
from bench.core.timer import Measurement
from bench.records.files import AppendWriter, run_paths
from bench.records.outcomes import Failed, Measured, WorkFacts
from bench.records.rows import COLUMNS, ROUND_SAMPLE_COLUMNS, SAMPLE_COLUMNS, make_row, sample_rows

# Roofs like the dev VM's (AMD EPYC, 2 threads), for rows placed on a roofline.
ROOFS = Roofs(
    compute_gflop_per_s=200.0,
    engine="oneDNN matmul",
    levels=(
        Level("L1", 64 * 2**10, 400.0),
        Level("L2", 2 * 2**20, 230.0),
        Level("L3", 32 * 2**20, 180.0),
        Level("DRAM", float("inf"), 35.0),
    ),
    floor_ms_per_step=0.003,
)

TINY_SPEC = """
[axes]
model = ["lstm", "gru"]
device = ["cpu"]
mode = ["inference", "training"]
batch_size = [3]
seq_len = [5]
packed = [false, true]
lengths = ["uniform:2"]
embedding_dim = [8]
hidden_size = [8]
vocab_size = [20]
threads = [1]

[timer]
budget_s = 0.02
min_samples = 6
warmup_runs = 1
warmup_s = 0.0
rounds = 1  # one process: most tests are not about rounds (tests/test_rounds*.py are)
"""

# A tiny case: builds and runs in milliseconds on one CPU thread.
CASE_DEFAULTS: dict[str, Any] = dict(
    model="lstm",
    device="cpu",
    dtype="float32",
    mode="inference",
    batch_size=4,
    seq_len=16,
    num_layers=1,
    bidirectional=False,
    varlen="padded",
    lengths="full",
    embedding_dim=8,
    hidden_size=8,
    vocab_size=10,
    backend="default",
    threads=1,
    impl="module",
    tf32="off",
    chunk=1,
)
PROVENANCE = {"host": "h", "cpu_model": "test cpu", "torch_version": "2.13.0"}


def make_case(**axes: Any) -> Case:
    """A tiny case with the given axes changed."""
    return Case(**(CASE_DEFAULTS | axes))


def measured(
    samples_ms: Sequence[float], target_rel_ci: float | None = 0.02, rounds: Sequence[int] | None = None
) -> Measured:
    """A measured outcome; ``rounds`` tags each sample with its round (None: one round)."""
    tags = None if rounds is None else [int(r) for r in rounds]
    m = Measurement({"fwd": list(map(float, samples_ms))}, 1, 0.1, reached_target=True, rounds=tags)
    return Measured(m, WorkFacts(valid_tokens=64, padding_fraction=0.0, gflop=0.01), 200.0, target_rel_ci)


def write_run(
    path: Path,
    outcomes: Mapping[Case, np.ndarray | Sequence[float] | str],
    run_id: str | None = None,
    timestamp: str | None = None,
    roofs: Roofs | None = None,
    **provenance: str,
) -> Path:
    """A results CSV and its samples: per case, its samples (ms), a list of rounds of samples (a 2-D
    array: measured in rounds, as a sweep does), or a failed status ("oom"/"error"); with ``roofs``
    the rows are placed on the roofline as a sweep places them."""
    in_rounds = any(not isinstance(o, str) and np.ndim(o) == 2 for o in outcomes.values())
    columns = ROUND_SAMPLE_COLUMNS if in_rounds else SAMPLE_COLUMNS
    rows, raw = AppendWriter(path, COLUMNS), AppendWriter(run_paths(path)[0], columns)
    for case, outcome in outcomes.items():
        if isinstance(outcome, str):
            row = make_row(case, Failed(outcome, "boom"), PROVENANCE | provenance, run_id or path.stem)
        else:
            values = np.asarray(outcome, dtype=float)
            tags = np.repeat(np.arange(values.shape[0]), values.shape[1]) if values.ndim == 2 else None
            result = dataclasses.replace(measured(values.ravel(), rounds=tags), roofs=roofs)
            row = make_row(case, result, PROVENANCE | provenance, run_id or path.stem)
            raw.write_many(sample_rows(case.case_id, result.measurement))
        if timestamp:
            row.timestamp = timestamp
        rows.write(row)
    rows.close()
    raw.close()
    return path


def raw_rows(path: Path) -> list[dict[str, str]]:
    """A results CSV's rows exactly as written on disk (strings), to check the file itself."""
    return pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")


# Time factors of the synthetic sweep (``synthetic_run``): chosen so that strata disagree the way
# they do on real CPUs (packing costs LSTM and pays for GRU; native kernels cost LSTM alone).
_VARLEN = {("lstm", "packed"): 2.0, ("gru", "packed"): 0.7, ("lstm", "exact"): 1.1, ("gru", "exact"): 1.3}
_NATIVE = {"lstm": 3.0, "gru": 1.0}


def synthetic_ms(case: Case) -> float:
    """A plausible step time for ``case``: grows with the work, with the factors above."""
    ms = 0.002 * case.batch_size**0.7 * case.seq_len * case.num_layers * (2 if case.bidirectional else 1)
    ms *= _VARLEN.get((case.model, case.varlen), 1.0) * (1.6 if case.model == "gru" else 1.0)
    ms *= _NATIVE[case.model] if case.backend == "native" else 1.0
    ms *= {"compiled": 0.9, "cells": 1.5}.get(case.impl, 1.0) * (3.0 if case.mode == "training" else 1.0)
    ms *= 1.8 if case.threads == 1 else 1.0
    ms *= 0.1 if case.device == "cuda" else 1.0
    return ms


def synthetic_run(
    path: Path, cases: Sequence[Case], seed: int = 0, roofs: Roofs | None = None, **provenance: str
) -> Path:
    """A results CSV for ``cases`` as a sweep in 3 rounds would write it, with the errors a real run
    records: padded bidirectional outputs wrong, padded final states wrong wherever lengths vary."""
    rng = np.random.default_rng(seed)
    outcomes = {c: synthetic_ms(c) * rng.lognormal(0, 0.01, (3, 4)) for c in cases}
    write_run(path, outcomes, roofs=roofs, **provenance)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    by_id = {c.case_id: c for c in cases}
    for i, case_id in enumerate(df["case_id"]):
        c = by_id[case_id]
        padded_varies = c.varlen == "padded" and c.lengths not in ("full", "pad:0")
        df.loc[i, "max_abs_err"] = "0.3" if c.varlen == "padded" and c.bidirectional else "1e-07"
        df.loc[i, "state_max_abs_err"] = "1.2" if padded_varies else "1e-07"
    df.to_csv(path, index=False)
    return path


# --- bench run in a subprocess, watched as it writes ------------------------------------------


def start(spec: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "bench", "run", "--spec", str(spec), "--out", str(out), *extra]
    return subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_rows(out: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.exists() and len(out.read_text().splitlines()) - 1 >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} rows after {timeout} s")
