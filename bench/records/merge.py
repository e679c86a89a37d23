"""``bench merge``: part files of a sharded run into one results CSV.

Refuses parts that overlap (a case in two parts) or that ``bench.records.reading``
cannot read; reports the cases the run's spec asked for that no part holds.
Rows keep the host and GPU that measured them, so a report can group by machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bench.core.errors import UsageError
from bench.records.files import AppendWriter, ledger_path, results_files, run_paths
from bench.records.reading import read_results, read_samples
from bench.records.rows import (
    COLUMNS,
    COUNT_SAMPLE_COLUMNS,
    ROUND_SAMPLE_COLUMNS,
    SAMPLE_COLUMNS,
    SCHEMA_VERSION,
)
from bench.records.runinfo import RunInfo, read_run_info


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
    infos: list[RunInfo] = []
    for f in files:
        json_path = run_paths(f)[1]
        unfinished = ledger_path(f).exists() or (json_path.exists() and not read_run_info(json_path).finished)
        if not allow_missing and unfinished:
            raise UsageError(
                f"{f}: its run has not finished (its job is still running, or was stopped: wait for it, "
                f"or finish it with `python -m bench run ... --out {f} --resume`)"
            )
        part = read_results(f, allow_empty=True)
        for case_id in part["case_id"]:
            if case_id in seen:
                raise UsageError(f"{f}: case {case_id!r} is also in {seen[case_id]} (overlapping parts)")
            seen[case_id] = f
        parts.append(part)
        meta = read_run_info(run_paths(f)[1])
        infos.append(meta)
        wanted += [c for c in meta.sweep_cases if c not in wanted]
        hosts = sorted(set(zip(part["host"], part["gpu_name"], strict=True)))
        parts_meta.append(
            {
                "file": str(f),
                "rows": len(part),
                "hosts": [h for h, _ in hosts],
                "gpus": [g for _, g in hosts if g],
                "run_id": meta.run_id,
                "environment": meta.environment,
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
    environments = [i.environment for i in infos if i.environment]
    RunInfo(
        run_id="",  # each row keeps the run id of the shard that measured it
        schema_version=SCHEMA_VERSION,
        metric=metrics[0] if metrics else "time",
        spec_source=next((i.spec_source for i in infos if i.spec_source), ""),
        axes=next((i.axes for i in infos if i.axes), {}),
        timer=next((i.timer for i in infos if i.timer), {}),
        rounds=next((i.rounds for i in infos if i.rounds is not None), None),
        cases=[str(c) for c in seen],
        sweep_cases=wanted,
        # One environment where every part ran in the same one; each part's is in merged_from.
        environment=environments[0] if environments and all(e == environments[0] for e in environments) else {},
        started=min((i.started for i in infos if i.started), default=""),
        finished=max((i.finished for i in infos if i.finished), default=""),
        status_counts={str(k): int(v) for k, v in Counter(r["status"] for r in rows).items()},
        rows=len(rows),
        merged_from=parts_meta,
        # Every part's roofs; a key two parts share (one machine, two shards) keeps the first part's.
        roofs={
            section: {k: v for i in reversed(infos) for k, v in i.roofs.get(section, {}).items()}
            for section in ("compute", "bandwidth", "floors_ms")
        },
        missing_cases=missing,
    ).write(run_paths(out)[1])
    return len(rows), missing
