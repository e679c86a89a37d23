"""Read result CSVs for reports and comparisons: data only, checked, typed.

Nothing here imports torch: reports are rebuilt anywhere from the CSVs alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bench.errors import UsageError
from bench.results import CASE_COLUMNS, MEASURE_COLUMNS, SCHEMA_VERSION, STATUSES
from bench.spec import AXES, INPUT_AXES

# Every measurement column except the free-text ones is a number (or empty).
NUMERIC = [c for c in MEASURE_COLUMNS if c not in ("status", "error", "note")]
# Case columns added after the first release; an older run without them is filled in below.
ADDED_CASE_COLUMNS = ("varlen", "impl")
REQUIRED = (
    *(c for c in CASE_COLUMNS if c not in ADDED_CASE_COLUMNS),
    "status",
    "median_ms",
    "ci_low_ms",
    "ci_high_ms",
    "run_id",
    "schema_version",
)
INT_AXES = [a.name for a in AXES if a.kind == "int"]
BOOL_AXES = [a.name for a in INPUT_AXES if a.kind == "bool"]


def read_results(path: Path) -> pd.DataFrame:
    """One results CSV as a typed frame; UsageError (exit 2) for anything off."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise UsageError(f"{path}: empty file, not a results CSV") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise UsageError(f"{path}: cannot read as CSV ({str(e).splitlines()[0]})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise UsageError(f"{path}: not a results CSV (missing column {missing[0]!r})")
    if df.empty:
        raise UsageError(f"{path}: no rows")
    versions = set(df["schema_version"])
    if versions != {str(SCHEMA_VERSION)}:
        bad = sorted(versions - {str(SCHEMA_VERSION)})[0]
        raise UsageError(f"{path}: schema_version {bad!r} is not supported (this rnnbench reads {SCHEMA_VERSION})")
    dup = df["case_id"][df["case_id"].duplicated()]
    if not dup.empty:
        raise UsageError(f"{path}: duplicate case_id {dup.iloc[0]!r}")
    bad_status = set(df["status"]) - set(STATUSES)
    if bad_status:
        raise UsageError(f"{path}: status {sorted(bad_status)[0]!r} is not one of {', '.join(STATUSES)}")
    for col in INT_AXES:
        values = pd.to_numeric(df[col], errors="coerce")
        if values.isna().any() or (values != values.round()).any():
            raise UsageError(f"{path}: column {col!r} holds a non-integer ({df[col][values.isna()].iloc[0]!r})")
        df[col] = values.astype(int)
    for col in BOOL_AXES:
        if not set(df[col]) <= {"true", "false"}:
            raise UsageError(f"{path}: column {col!r} must hold true/false")
        df[col] = df[col] == "true"
    if "varlen" not in df.columns:  # before the varlen axis: packed or padded
        df["varlen"] = df["packed"].map({True: "packed", False: "padded"})
    if "impl" not in df.columns:  # before the impl axis: the nn.LSTM/nn.GRU modules
        df["impl"] = "module"
    for col in NUMERIC:
        if col not in df.columns:
            df[col] = ""  # an older run without this column
        raw = df[col]
        df[col] = pd.to_numeric(raw, errors="coerce")
        wrong = df[col].isna() & (raw != "")
        if wrong.any():
            raise UsageError(f"{path}: column {col!r} holds a non-number ({raw[wrong].iloc[0]!r})")
    ok = df["status"] == "ok"
    if (ok & ~(df["median_ms"] > 0)).any():
        raise UsageError(f"{path}: an ok row has no positive median_ms")
    for col in ("note", "error", "host", "gpu_name", "cpu_model", "torch_version", "git_commit", "timestamp"):
        if col not in df.columns:
            df[col] = ""
    df["source"] = path.name
    return df


def machine_label(row: pd.Series) -> str:
    """What tells cases of several runs apart: the GPU, or the CPU and its host."""
    if row["device"] == "cuda" and row["gpu_name"]:
        return row["gpu_name"]
    return f"{row['device']} {row['host']}".strip()


def load_many(paths: Sequence[Path]) -> pd.DataFrame:
    if not paths:
        raise UsageError("give at least one results CSV")
    frames = [read_results(Path(p)) for p in paths]
    df = pd.concat(frames, ignore_index=True)
    df["machine"] = df.apply(machine_label, axis=1)
    clash = df.duplicated(["case_id", "machine"], keep=False) & df.duplicated(["case_id", "machine"])
    if clash.any():
        row = df[clash].iloc[0]
        raise UsageError(f"case {row['case_id']!r} on {row['machine']!r} appears in more than one file")
    return df
