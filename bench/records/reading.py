"""Reading results and samples files back, upgrading older versions.

Every reader of results and samples (report, compare, history, merge, resume)
goes through ``read_results`` and ``read_samples``. They accept what the
writer writes and what pandas writes back after a user filtered a run
(``True``/``False``, ``1``/``0``, ``1.0`` for an integer, empty cells for NaN),
and they upgrade older files version by version (``UPGRADES``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.core.cases import AXES, INPUT_AXES
from bench.core.errors import UsageError
from bench.records.files import run_paths
from bench.records.outcomes import METRICS, STATUSES
from bench.records.rows import (
    CASE_COLUMNS,
    COLUMNS,
    COUNT_SAMPLE_COLUMNS,
    MEASURE_COLUMNS,
    PLACEMENT_COLUMNS,
    PROVENANCE_COLUMNS,
    READABLE_VERSIONS,
    SAMPLE_COLUMNS,
    SCHEMA_VERSION,
    STREAM_COLUMNS,
)

if TYPE_CHECKING:  # pandas is imported by the readers alone: see _pandas()
    import pandas as pd

TEXT_COLUMNS = (
    "status",
    "error",
    "metric",
    "peak_engine",
    "weights_level",
    "bound",
    "note",
    *PROVENANCE_COLUMNS[:-1],
)  # schema_version is a number
NUMERIC_COLUMNS = tuple(c for c in MEASURE_COLUMNS if c not in TEXT_COLUMNS)
# Present in every version-1 file; the rest is filled in for files from before it was added.
REQUIRED_COLUMNS = (
    *(c for c in CASE_COLUMNS if c not in ("varlen", "impl", "tf32", "chunk")),
    "status",
    "median_ms",
    "ci_low_ms",
    "ci_high_ms",
    "run_id",
    "schema_version",
)
INT_AXES = tuple(a.name for a in AXES if a.kind == "int")
BOOL_AXES = tuple(a.name for a in INPUT_AXES if a.kind == "bool")
# What our writer and pandas (after read_csv/to_csv) write for booleans.
BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}


def _pandas() -> Any:
    """pandas, imported when a file is read: the instruction-count worker imports this module
    under valgrind to write nothing, and importing pandas there costs ~20 s of instrumented code."""
    import pandas

    return pandas


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    """A CSV as strings (empty cells as ""); UsageError for anything unreadable."""
    pd = _pandas()
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise UsageError(f"{path}: empty file, not a {what}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise UsageError(f"{path}: cannot read as CSV ({str(e).splitlines()[0]})") from None


def _integers(path: Path, df: pd.DataFrame, col: str) -> pd.Series:
    values = _pandas().to_numeric(df[col], errors="coerce")
    if values.isna().any() or (values != values.round()).any():
        bad = df[col][values.isna() | (values != values.round())].iloc[0]
        raise UsageError(f"{path}: column {col!r} holds a non-integer ({bad!r})")
    return values.astype(int)


def _fill(df: pd.DataFrame, col: str, value: Any, rows: pd.Series) -> None:
    """Column ``col`` (added empty where the file lacks it) set to ``value`` in ``rows``' empty cells."""
    if col not in df.columns:
        df[col] = ""
    df.loc[rows & (df[col] == ""), col] = value


def _v1_late(df: pd.DataFrame, rows: pd.Series) -> None:
    """Columns version 1 gained without a bump: varlen and impl (an older row is varlen packed or
    padded from its `packed` column, impl module), state_max_abs_err and compile_s (empty), the tf32
    axis (off) and kernel_settings (empty: not recorded)."""
    if "varlen" not in df.columns and "packed" in df.columns:
        df["varlen"] = df["packed"].map({True: "packed", False: "padded"})
    _fill(df, "impl", "module", rows)
    _fill(df, "tf32", "off", rows)
    for col in ("state_max_abs_err", "compile_s", "kernel_settings"):
        _fill(df, col, "", rows)


def _v1_to_v2(df: pd.DataFrame, rows: pd.Series) -> None:
    """Instruction counts: a version-1 row timed its steps."""
    _fill(df, "metric", "time", rows)
    for col in ("instructions", "fwd_instructions", "bwd_instructions", "instructions_spread"):
        _fill(df, col, "", rows)
    for col in ("cpu_capability", "python_version"):
        _fill(df, col, "", rows)


def _v2_to_v3(df: pd.DataFrame, rows: pd.Series) -> None:
    """Rounds: an older time row was measured in one process."""
    if not rows.any():
        return
    ok_time = rows & (df["status"] == "ok") & (df["metric"] == "time")
    _fill(df, "rounds", "1", ok_time)
    for col in ("rounds", "within_round_rel_ci", "between_round_rel_sd"):
        _fill(df, col, "", rows)


def _v3_to_v4(df: pd.DataFrame, rows: pd.Series) -> None:
    """The machine's identity: cpu_count and mem_gib, not recorded before (a report fills
    cpu_count from the run JSON where it has it)."""
    for col in ("cpu_count", "mem_gib"):
        _fill(df, col, "", rows)


def _dropped(df: pd.DataFrame) -> None:
    """Columns a user's tool cut from a file of any version, filled as an older file's are."""
    pd = _pandas()
    every = pd.Series(True, index=df.index)
    _v1_late(df, every)
    _fill(df, "metric", "time", every)
    _fill(df, "chunk", "1", every)
    if "rounds" not in df.columns:
        _v2_to_v3(df, every)


def _v4_to_v5(df: pd.DataFrame, rows: pd.Series) -> None:
    """The roofline: not measured before (peak_gflop_per_s then was torch.mm of n×n alone)."""
    for col in ("peak_engine", *PLACEMENT_COLUMNS):
        _fill(df, col, "", rows)


def _v5_to_v6(df: pd.DataFrame, rows: pd.Series) -> None:
    """Streaming: every older row is a whole-batch step (chunk 1, no percentiles)."""
    _fill(df, "chunk", "1", rows)
    for col in STREAM_COLUMNS:
        _fill(df, col, "", rows)


# UPGRADES[v] brings rows of version v to v + 1; a row of version v goes through every step from v
# on. A new schema version adds its step here (and its history in bench.records.rows).
UPGRADES: dict[int, Callable[[pd.DataFrame, pd.Series], None]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
    5: _v5_to_v6,
}


def read_results(path: Path, allow_empty: bool = False) -> pd.DataFrame:
    """One results CSV as a typed frame (upgraded to the current version); UsageError for anything off."""
    pd = _pandas()
    df = _read_csv(path, "results CSV")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise UsageError(f"{path}: not a results CSV (missing column {missing[0]!r})")
    if df.empty and not allow_empty:
        raise UsageError(f"{path}: no rows")
    readable = {str(v) for v in READABLE_VERSIONS}
    # "1.0" is pandas' way of writing 1 back.
    versions = df["schema_version"].str.strip().str.replace(r"\.0$", "", regex=True)
    unknown = sorted(set(versions) - readable)
    if unknown:
        supported = ", ".join(sorted(readable))
        raise UsageError(f"{path}: schema_version {unknown[0]!r} is not supported (this rnnbench reads {supported})")
    dup = df["case_id"][df["case_id"].duplicated()]
    if not dup.empty:
        raise UsageError(f"{path}: duplicate case_id {dup.iloc[0]!r}")
    bad_status = set(df["status"]) - set(STATUSES)
    if bad_status:
        raise UsageError(f"{path}: status {sorted(bad_status)[0]!r} is not one of {', '.join(STATUSES)}")
    for col in BOOL_AXES:
        if col not in df.columns:
            continue
        parsed = df[col].str.strip().str.lower().map(BOOL_TEXT)
        if parsed.isna().any():
            raise UsageError(f"{path}: column {col!r} must hold true/false (found {df[col][parsed.isna()].iloc[0]!r})")
        df[col] = parsed.astype(bool)
    version = versions.astype(int)
    _v1_late(df, version == 1)
    for v, step in sorted(UPGRADES.items()):
        step(df, version <= v)
    _dropped(df)
    for col in INT_AXES:  # after the upgrades: they fill in axes an older file lacks (chunk)
        if col in df.columns:
            df[col] = _integers(path, df, col)
    df["schema_version"] = SCHEMA_VERSION
    for col in NUMERIC_COLUMNS:
        if col not in df.columns:
            df[col] = ""  # a column a user's tool dropped: empty, as an older file's
        raw = df[col]
        df[col] = pd.to_numeric(raw, errors="coerce")
        wrong = df[col].isna() & (raw.str.strip() != "") & (raw.str.lower() != "nan")
        if wrong.any():
            raise UsageError(f"{path}: column {col!r} holds a non-number ({raw[wrong].iloc[0]!r})")
    for col in TEXT_COLUMNS:
        if col not in df.columns:
            df[col] = ""
    bad_metric = set(df["metric"]) - set(METRICS)
    if bad_metric:
        raise UsageError(f"{path}: metric {sorted(bad_metric)[0]!r} is not one of {', '.join(METRICS)}")
    # pandas writes an integer column with a gap as floats: cuDNN 90100 comes back as 90100.0.
    df["cudnn_version"] = df["cudnn_version"].str.replace(r"^(\d+)\.0$", r"\1", regex=True)
    ok = df["status"] == "ok"
    timed = df["metric"] == "time"
    if (ok & timed & ~(df["median_ms"] > 0)).any():
        raise UsageError(f"{path}: an ok time row has no positive median_ms")
    if (ok & ~timed & ~(df["instructions"] > 0)).any():
        raise UsageError(f"{path}: an ok instructions row has no positive instructions count")
    df["source"] = path.name
    # The current column order, whatever the file's: upgraded columns land where they belong.
    return df[[*COLUMNS, *(c for c in df.columns if c not in COLUMNS)]]


def read_samples(csv_path: Path) -> pd.DataFrame:
    """The raw samples of a results CSV: case_id, phase, index, then ms (and block, if blocked),
    or instructions for an instruction run."""
    pd = _pandas()
    path, _ = run_paths(csv_path)
    # Or gzipped (pandas reads it by its suffix): committed reference runs keep their samples so.
    zipped = path.with_name(path.name + ".gz")
    if not path.is_file() and zipped.is_file():
        path = zipped
    if not path.is_file():
        raise UsageError(f"{csv_path}: its raw samples {path.name} are missing")
    df = _read_csv(path, "samples CSV")
    if list(df.columns)[:4] not in (list(SAMPLE_COLUMNS), list(COUNT_SAMPLE_COLUMNS)):
        raise UsageError(f"{path}: not a samples CSV (want columns {', '.join(SAMPLE_COLUMNS)})")
    for col in ("ms", "instructions", "index", "block", "round"):
        if col in df:
            values = pd.to_numeric(df[col], errors="coerce")
            if values.isna().any():
                raise UsageError(f"{path}: column {col!r} holds a non-number")
            df[col] = values if col == "ms" else values.astype("int64")
    return df
