"""Results files: the CSV columns (one tuple), appending rows, reading them back.

A run writes three files side by side:

* ``<run>.csv``: one row per case, appended and flushed as each case ends, so an
  interrupted run keeps every finished case;
* ``<run>.samples.csv``: the raw samples (``case_id, phase, index, ms``);
* ``<run>.json``: the spec, the environment and the measured peaks.
"""

from __future__ import annotations

import csv
import fcntl
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.spec import CASE_COLUMN_NAMES

# History: 1 = first release (DESIGN.md columns + max_abs_err + note); later columns
# (varlen, impl, state_max_abs_err, compile_s) were added without a new version: readers
# fill them in for older files (bench.report.load).
SCHEMA_VERSION = 1

CASE_COLUMNS: tuple[str, ...] = ("case_id", *CASE_COLUMN_NAMES)
MEASURE_COLUMNS: tuple[str, ...] = (
    "status",
    "error",
    "samples",
    "median_ms",
    "iqr_ms",
    "mean_ms",
    "std_ms",
    "min_ms",
    "max_ms",
    "ci_low_ms",
    "ci_high_ms",
    "fwd_median_ms",
    "bwd_median_ms",
    "tokens_per_s",
    "padding_fraction",
    "gflop",
    "gflop_per_s",
    "peak_gflop_per_s",
    "efficiency",
    "peak_mem_mb",
    "max_abs_err",
    "state_max_abs_err",
    "compile_s",
    "note",
)
PROVENANCE_COLUMNS: tuple[str, ...] = (
    "run_id",
    "timestamp",
    "host",
    "cpu_model",
    "gpu_name",
    "torch_version",
    "cuda_version",
    "cudnn_version",
    "git_commit",
    "schema_version",
)
COLUMNS: tuple[str, ...] = CASE_COLUMNS + MEASURE_COLUMNS + PROVENANCE_COLUMNS
SAMPLE_COLUMNS: tuple[str, ...] = ("case_id", "phase", "index", "ms")
STATUSES = ("ok", "oom", "error", "skipped")


def run_paths(csv_path: Path) -> tuple[Path, Path]:
    """The samples CSV and run JSON that belong to a results CSV."""
    stem = csv_path.with_suffix("")
    return stem.with_name(stem.name + ".samples.csv"), stem.with_name(stem.name + ".json")


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def repair_torn_tail(path: Path) -> bool:
    """Cut a half-written last line (a hard kill mid-write). True if it cut one."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with path.open("rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return False
        f.truncate(data.rfind(b"\n") + 1)
    return True


class AppendWriter:
    """Appends rows to a CSV, writing the header for a new file; flushes each row."""

    def __init__(self, path: Path, columns: tuple[str, ...], exclusive: bool = False) -> None:
        self.path = path
        self.columns = columns
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists() or path.stat().st_size == 0
        self._file = path.open("a", newline="", encoding="utf-8")
        if exclusive:
            try:  # two runs appending to one file would interleave rows
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._file.close()
                raise UsageError(f"{path}: another run is writing this file") from None
        self._writer = csv.DictWriter(self._file, fieldnames=columns, lineterminator="\n")
        if new:
            self._writer.writeheader()
            self._flush()

    def write(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow({c: format_value(row.get(c)) for c in self.columns})
        self._flush()

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self._writer.writerow({c: format_value(row.get(c)) for c in self.columns})
        self._flush()

    def _flush(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def results_files(inputs: Sequence[Path], what: str, recursive: bool = False) -> list[Path]:
    """Results CSVs named directly or found in folders (samples files left out)."""
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = p.rglob("*.csv") if recursive else p.glob("*.csv")
            files += sorted(f for f in found if not f.name.endswith(".samples.csv"))
        elif p.is_file():
            files.append(p)
        else:
            raise UsageError(f"{p}: no such file or folder")
    if not files:
        raise UsageError(f"no {what} in {', '.join(map(str, inputs))}")
    return files


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a results CSV as strings, checked for the case columns."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = reader.fieldnames or []
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UsageError(f"{path}: cannot read ({e})") from None
    missing = [c for c in ("case_id", "status", "schema_version") if c not in header]
    if missing:
        raise UsageError(f"{path}: not a results CSV (missing column {missing[0]!r})")
    return rows


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary file and rename it, so readers never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
