"""Results files on disk: their paths, the append writer, atomic writes.

A run writes three files side by side:

* ``<run>.csv``: one row per case (a ``Row``), appended and flushed as each
  case ends, so an interrupted run keeps every finished case;
* ``<run>.samples.csv``: the raw samples (``case_id, phase, index, ms`` and,
  for runs measured in blocks against another tree, ``block``);
* ``<run>.json``: the run's metadata (``bench.records.runinfo``).

Reading them back is ``bench.records.reading``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import filelock
import numpy as np

from bench.core.errors import UsageError
from bench.records.rows import Row


def run_paths(csv_path: Path) -> tuple[Path, Path]:
    """The samples CSV and run JSON that belong to a results CSV."""
    stem = csv_path.with_suffix("")
    return stem.with_name(stem.name + ".samples.csv"), stem.with_name(stem.name + ".json")


def ledger_path(csv_path: Path) -> Path:
    """The rounds ledger of a results CSV (bench.execution.rounds): there while its run is unfinished."""
    stem = csv_path.with_suffix("")
    return stem.with_name(stem.name + ".rounds.jsonl")


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
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
        self._lock: filelock.BaseFileLock | None = None
        if exclusive:  # two runs appending to one file would interleave rows
            # filelock (a torch dependency) works on every OS; the lock file sits beside the CSV.
            self._lock = filelock.FileLock(str(path) + ".lock")
            try:
                self._lock.acquire(timeout=0)
            except filelock.Timeout:
                raise UsageError(f"{path}: another run is writing this file") from None
        new = not path.exists() or path.stat().st_size == 0
        self._file = path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=columns, lineterminator="\n")
        if new:
            self._writer.writeheader()
            self._flush()

    def write(self, row: Row | Mapping[str, Any]) -> None:
        self.write_many([row])

    def write_many(self, rows: Iterable[Row | Mapping[str, Any]]) -> None:
        for row in rows:
            values = row.as_dict() if isinstance(row, Row) else row
            self._writer.writerow({c: format_value(values.get(c)) for c in self.columns})
        self._flush()

    def _flush(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()
        if self._lock is not None:
            self._lock.release()
            Path(self._lock.lock_file).unlink(missing_ok=True)  # no lock file left beside the results
            self._lock = None


def keep_samples(path: Path, case_ids: set[str], columns: tuple[str, ...]) -> None:
    """Rewrite a samples file keeping only the rows of ``case_ids`` (``--resume``: the cases
    whose rows are out; the rounds ledger gives back the rest). Rows of a file from before
    rounds get round 0: they were measured in one process."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open(newline="", encoding="utf-8") as f:
        kept = [r for r in csv.DictReader(f) if r.get("case_id") in case_ids]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for r in kept:
            writer.writerow({c: r.get(c) or ("0" if c == "round" else "") for c in columns})
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary file and rename it, so readers never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


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
