"""The frame a report is drawn from: results CSVs (read by ``bench.records.reading``) with a machine label.

Nothing here imports torch: reports are rebuilt anywhere from the CSVs alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bench.core.errors import UsageError
from bench.records.files import run_paths
from bench.records.reading import read_results
from bench.records.runinfo import read_run_info


def machine_label(row: pd.Series) -> str:
    """What a machine is, not what it is called: the GPU for CUDA rows; the CPU model and its
    logical CPUs for CPU rows (host names repeat: every VM here is ``vm``). Memory is left out,
    so that rows from before schema 4 (no mem_gib) name the same machine alike; rows without
    even a CPU count (older files without their run JSON) fall back to the host."""
    if row["device"] == "cuda" and row["gpu_name"]:
        return row["gpu_name"]
    model = row["cpu_model"] or row["device"]
    if row["cpu_count"]:
        return f"{model}, {row['cpu_count']} CPUs"
    return f"{model} on {row['host']}" if row["host"] else model


def _read(path: Path) -> pd.DataFrame:
    df = read_results(path).assign(source_path=str(path))
    info = read_run_info(run_paths(path)[1])
    # Each memory level's bandwidth, for the roofline plot's roofs (rows name only their own level).
    df.attrs["bandwidth"] = {(str(path), key): levels for key, levels in info.roofs.get("bandwidth", {}).items()}
    # Rows before schema 4 lack cpu_count; their run JSON may have it.
    counted = info.environment.get("cpu_count")
    if counted:
        df.loc[df["cpu_count"] == "", "cpu_count"] = str(counted)
    return df


def load_many(paths: Sequence[Path]) -> pd.DataFrame:
    if not paths:
        raise UsageError("give at least one results CSV")
    # Each row knows its file, so that sections can read its raw samples (bench.report.samples).
    frames = [_read(Path(p)) for p in paths]
    bandwidth = {k: v for f in frames for k, v in f.attrs.get("bandwidth", {}).items()}
    df = pd.concat(frames, ignore_index=True)
    df.attrs["bandwidth"] = bandwidth
    df["machine"] = df.apply(machine_label, axis=1)
    key = ["case_id", "machine", "metric"]  # a case may be both timed and counted
    clash = df.duplicated(key, keep=False) & df.duplicated(key)
    if clash.any():
        row = df[clash].iloc[0]
        raise UsageError(
            f"case {row['case_id']!r} on {row['machine']!r} appears in more than one file "
            "(two runs of one machine: report them apart, or merge them with `python -m bench merge`)"
        )
    return df.copy()  # one block per dtype: the columns added above left the frame fragmented
