"""``bench merge``: part files of a sharded run into one results CSV.

Refuses parts that overlap (a case in two parts) or that ``bench.results``
cannot read; reports the cases the run's spec asked for that no part holds.
Rows keep the host and GPU that measured them, so a report can group by machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bench.errors import UsageError
from bench.results import (
    COLUMNS,
    COUNT_SAMPLE_COLUMNS,
    ROUND_SAMPLE_COLUMNS,
    SAMPLE_COLUMNS,
    AppendWriter,
    read_json,
    read_results,
    read_samples,
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
    parts: list[pd.DataFrame] = []
    seen: dict[str, Path] = {}
    wanted: list[str] = []
    parts_meta = []
    for f in files:
        part = read_results(f, allow_empty=True)
        for case_id in part["case_id"]:
            if case_id in seen:
                raise UsageError(f"{f}: case {case_id!r} is also in {seen[case_id]} (overlapping parts)")
            seen[case_id] = f
        parts.append(part)
        meta = read_json(run_paths(f)[1])
        wanted += [c for c in meta.get("sweep_cases", []) if c not in wanted]
        hosts = sorted(set(zip(part["host"], part["gpu_name"], strict=True)))
        parts_meta.append(
            {
                "file": str(f),
                "rows": len(part),
                "hosts": [h for h, _ in hosts],
                "gpus": [g for _, g in hosts if g],
                "run_id": meta.get("run_id", ""),
            }
        )
    missing = [c for c in wanted if c not in seen]
    if missing and not allow_missing:
        raise UsageError(f"{len(missing)} case(s) of the sweep are in no part (a part is missing?), e.g. {missing[0]}")
    metrics = sorted({m for part in parts for m in part["metric"]})
    if len(metrics) > 1:  # times and counts have different samples files: not one run
        raise UsageError(f"the parts measured different metrics ({', '.join(metrics)}); merge each metric apart")
    rows = [row for part in parts for row in part.to_dict("records")]
    writer = AppendWriter(out, COLUMNS, exclusive=True)
    writer.write_many(rows)
    writer.close()
    raw = [read_samples(f) for f in files if run_paths(f)[0].is_file()]
    columns = SAMPLE_COLUMNS
    if metrics == ["instructions"]:
        columns = COUNT_SAMPLE_COLUMNS
    elif raw and all("round" in r for r in raw):  # parts measured in rounds keep their rounds
        columns = ROUND_SAMPLE_COLUMNS
    samples = AppendWriter(run_paths(out)[0], columns)
    for r in raw:
        samples.write_many(r.to_dict("records"))
    samples.close()
    write_json_atomic(
        run_paths(out)[1],
        {"merged_from": parts_meta, "missing_cases": missing, "sweep_cases": wanted, "rows": len(rows)},
    )
    return len(rows), missing
