"""Test data made one way: cases by keyword, results files through the results module's own writer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.results import COLUMNS, SAMPLE_COLUMNS, AppendWriter, Failed, Measured, WorkFacts, make_row, run_paths
from bench.spec import Case
from bench.timer import Measurement

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
)
PROVENANCE = {"host": "h", "cpu_model": "test cpu", "torch_version": "2.13.0"}


def make_case(**axes: Any) -> Case:
    """A tiny case with the given axes changed."""
    return Case(**(CASE_DEFAULTS | axes))


def measured(samples_ms: Sequence[float], target_rel_ci: float | None = 0.02) -> Measured:
    m = Measurement({"fwd": list(map(float, samples_ms))}, warmup_runs=1, sampling_s=0.1, reached_target=True)
    return Measured(m, WorkFacts(valid_tokens=64, padding_fraction=0.0, gflop=0.01), 1.0, target_rel_ci)


def write_run(
    path: Path,
    outcomes: Mapping[Case, np.ndarray | Sequence[float] | str],
    run_id: str | None = None,
    timestamp: str | None = None,
    **provenance: str,
) -> Path:
    """A results CSV and its samples: per case, its samples (ms) or a failed status ("oom"/"error")."""
    rows, raw = AppendWriter(path, COLUMNS), AppendWriter(run_paths(path)[0], SAMPLE_COLUMNS)
    for case, outcome in outcomes.items():
        if isinstance(outcome, str):
            row = make_row(case, Failed(outcome, "boom"), PROVENANCE | provenance, run_id or path.stem)
        else:
            result = measured(outcome)
            row = make_row(case, result, PROVENANCE | provenance, run_id or path.stem)
            raw.write_many(
                {"case_id": case.case_id, "phase": "fwd", "index": i, "ms": v} for i, v in enumerate(outcome)
            )
        if timestamp:
            row.timestamp = timestamp
        rows.write(row)
    rows.close()
    raw.close()
    return path


def raw_rows(path: Path) -> list[dict[str, str]]:
    """A results CSV's rows exactly as written on disk (strings), to check the file itself."""
    return pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")
