"""The frame a report is drawn from: results CSVs (read by ``bench.results``) with a machine label.

Nothing here imports torch: reports are rebuilt anywhere from the CSVs alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bench.errors import UsageError
from bench.results import read_results


def machine_label(row: pd.Series) -> str:
    """What tells cases of several runs apart: the GPU, or the CPU and its host."""
    if row["device"] == "cuda" and row["gpu_name"]:
        return row["gpu_name"]
    return f"{row['device']} {row['host']}".strip()


def load_many(paths: Sequence[Path]) -> pd.DataFrame:
    if not paths:
        raise UsageError("give at least one results CSV")
    # Each row knows its file, so that sections can read its raw samples (bench.report.samples).
    frames = [read_results(Path(p)).assign(source_path=str(Path(p))) for p in paths]
    df = pd.concat(frames, ignore_index=True)
    df["machine"] = df.apply(machine_label, axis=1)
    key = ["case_id", "machine", "metric"]  # a case may be both timed and counted
    clash = df.duplicated(key, keep=False) & df.duplicated(key)
    if clash.any():
        row = df[clash].iloc[0]
        raise UsageError(f"case {row['case_id']!r} on {row['machine']!r} appears in more than one file")
    return df
