"""``bench merge``: part files of a sharded run into one results CSV.

Refuses parts that overlap (a case in two parts) or mix schema versions; reports
the cases the run's spec asked for that no part holds. Rows keep the host and
GPU that measured them, so a report can group by machine.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from bench.errors import UsageError
from bench.results import (
    COLUMNS,
    SAMPLE_COLUMNS,
    AppendWriter,
    read_rows,
    results_files,
    run_paths,
    write_json_atomic,
)


def merge_parts(inputs: Sequence[Path], out: Path, allow_missing: bool = False) -> tuple[int, list[str]]:
    """Write ``out`` (+ samples, + run JSON); returns (rows, case ids missing).

    Cases of the sweep that no part holds are refused (a part is missing)
    unless ``allow_missing``, as after a shard that failed twice.
    """
    files = results_files(inputs, "part files")
    if out.exists():
        raise UsageError(f"--out {out}: the file exists; pick a new path")
    rows: list[dict[str, str]] = []
    seen: dict[str, Path] = {}
    wanted: list[str] = []
    parts_meta = []
    for f in files:
        part_rows = read_rows(f)
        for row in part_rows:
            if row["case_id"] in seen:
                raise UsageError(f"{f}: case {row['case_id']!r} is also in {seen[row['case_id']]} (overlapping parts)")
            seen[row["case_id"]] = f
        versions = {r["schema_version"] for r in part_rows} | {r["schema_version"] for r in rows}
        if len(versions) > 1:
            raise UsageError(f"{f}: mixed schema versions {sorted(versions)} across parts")
        rows += part_rows
        meta_path = run_paths(f)[1]
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        wanted += [c for c in meta.get("sweep_cases", []) if c not in wanted]
        hosts = sorted({(r.get("host", ""), r.get("gpu_name", "")) for r in part_rows})
        parts_meta.append(
            {
                "file": str(f),
                "rows": len(part_rows),
                "hosts": [h for h, _ in hosts],
                "gpus": [g for _, g in hosts if g],
                "run_id": meta.get("run_id", ""),
            }
        )
    missing = [c for c in wanted if c not in seen]
    if missing and not allow_missing:
        raise UsageError(f"{len(missing)} case(s) of the sweep are in no part (a part is missing?), e.g. {missing[0]}")
    writer = AppendWriter(out, COLUMNS, exclusive=True)
    writer.write_many(rows)
    writer.close()
    samples = AppendWriter(run_paths(out)[0], SAMPLE_COLUMNS)
    for f in files:
        path = run_paths(f)[0]
        if path.is_file():
            with path.open(newline="", encoding="utf-8") as handle:
                samples.write_many(csv.DictReader(handle))
    samples.close()
    write_json_atomic(
        run_paths(out)[1],
        {"merged_from": parts_meta, "missing_cases": missing, "sweep_cases": wanted, "rows": len(rows)},
    )
    return len(rows), missing
