"""Run a list of Cases: build, time, summarize, append a row per case.

A case that fails (OOM or any exception) becomes an ``oom``/``error`` row and
the sweep goes on; rows are flushed as they finish, so nothing measured is lost.
"""

from __future__ import annotations

import datetime as dt
import math
import socket
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from bench import env, progress
from bench.errors import UsageError
from bench.isolate import run_case_isolated
from bench.peaks import PeakCache
from bench.results import (
    COLUMNS,
    SAMPLE_COLUMNS,
    SCHEMA_VERSION,
    AppendWriter,
    read_rows,
    repair_torn_tail,
    run_paths,
    write_json_atomic,
)
from bench.spec import Case, Spec
from bench.stats import summarize
from bench.timer import Measurement, TimerConfig, measure
from bench.variants import measure_together, variant_groups
from bench.workload import Workload, build


def new_run_id() -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{socket.gethostname().split('.')[0]}-{uuid.uuid4().hex[:4]}"


def is_oom(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(error).lower()
    return any(s in text for s in ("out of memory", "can't allocate memory", "not enough memory"))


def one_line(error: BaseException) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{error.__class__.__name__}: {first}"[:500]


@dataclass(frozen=True)
class WorkFacts:
    """What a row needs to know of a built workload besides its timings."""

    valid_tokens: int
    padding_fraction: float
    gflop: float

    @classmethod
    def of(cls, work: Workload) -> WorkFacts:
        return cls(work.valid_tokens, work.padding_fraction, work.gflop)


def measured_columns(facts: WorkFacts, m: Measurement, config: TimerConfig, peak: float) -> dict[str, Any]:
    """The measurement columns of an ``ok`` row."""
    s = summarize(m.total_ms)
    row: dict[str, Any] = {"status": "ok", **asdict(s)}
    for phase in ("fwd", "bwd"):
        if phase in m.phases and len(m.phases) > 1:  # training: forward and backward apart
            row[f"{phase}_median_ms"] = summarize(m.phases[phase]).median_ms
    seconds = s.median_ms / 1e3
    row["tokens_per_s"] = facts.valid_tokens / seconds
    row["padding_fraction"] = facts.padding_fraction
    row["gflop"] = facts.gflop
    row["gflop_per_s"] = facts.gflop / seconds
    row["peak_gflop_per_s"] = peak
    row["efficiency"] = row["gflop_per_s"] / peak if peak > 0 else math.nan
    if not m.reached_target:
        row["note"] = (
            f"noisy: CI ±{s.rel_ci_half_width:.1%} of the median, target ±{config.target_rel_ci:.0%}, "
            f"{s.samples} samples in {m.sampling_s:.1f} s"
        )
    return row


def failure_row(error: BaseException) -> dict[str, Any]:
    return {"status": "oom" if is_oom(error) else "error", "error": one_line(error)}


def run_group(
    cases: Sequence[Case], config: TimerConfig, peaks: dict[Case, float]
) -> list[tuple[Case, dict[str, Any], Measurement | None]]:
    """Measure cases that differ only in varlen/impl side by side (bench.variants).

    ``peak_mem_mb`` stays empty: the allocator's peak would mix the variants.
    """
    done: dict[Case, tuple[dict[str, Any], Measurement | None]] = {}
    works = []
    for case in cases:
        try:
            works.append(build(case))
        except Exception as e:
            done[case] = (failure_row(e), None)
    results, rounds = measure_together(works, config)
    for work, result in results:
        case = work.case
        try:
            if isinstance(result, BaseException):
                raise result
            with work.context():
                extra = work.extra_columns()
            row = measured_columns(WorkFacts.of(work), result, config, peaks[case]) | extra
            side = f"side by side with {len(cases) - 1} other variant(s) in {rounds} rounds"
            row["note"] = f"{row['note']}; {side}" if row.get("note") else side
            done[case] = (row, result)
        except Exception as e:
            done[case] = (failure_row(e), None)
    del works, results
    if any(c.device == "cuda" for c in cases):
        torch.cuda.empty_cache()
    return [(case, *done[case]) for case in cases]


def peak_or_nan(peaks: PeakCache, case: Case) -> float:
    """The device peak for the case; NaN if even the matmul fails (the case will too)."""
    try:
        return peaks.get(case.device, case.dtype, case.threads)
    except Exception:
        return math.nan


def run_case(case: Case, config: TimerConfig, peak: float) -> tuple[dict[str, Any], Measurement | None]:
    """Measure one case; failures become a row, never an exception."""
    cuda = case.device == "cuda"
    work = None
    try:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        work = build(case)
        with work.context():
            m = measure(work.phases, config, cuda=cuda, before_sample=work.before_sample)
            extra = work.extra_columns()  # after timing: nothing of it lands in the samples
        row = measured_columns(WorkFacts.of(work), m, config, peak) | extra
        if cuda:
            # Allocator peak over build + warm-up + samples: weights, inputs, activations.
            row["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
        return row, m
    except Exception as e:
        return failure_row(e), None
    finally:
        del work
        if cuda:
            torch.cuda.empty_cache()


@dataclass
class RunOutcome:
    csv_path: Path
    samples_path: Path
    json_path: Path
    run_id: str
    rows: list[dict[str, Any]]
    skipped_done: int

    @property
    def failed(self) -> int:
        return sum(r["status"] in ("oom", "error") for r in self.rows)


def prepare_output(out: Path, resume: bool, run_id: str) -> tuple[str, set[str]]:
    """The run id (the old one when resuming) and the case ids already done."""
    samples, _ = run_paths(out)
    if not resume:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.open("x").close()  # atomic: of two runs racing for one path, one gets it
        except FileExistsError:
            raise UsageError(
                f"--out {out}: the file exists (add --resume to continue it, or pick a new path)"
            ) from None
        except OSError as e:
            raise UsageError(f"--out {out}: cannot create it ({e.strerror})") from None
        return run_id, set()
    if not out.exists():
        raise UsageError(f"--resume: {out} does not exist (nothing to resume)")
    repair_torn_tail(out)
    repair_torn_tail(samples)
    rows = read_rows(out)
    run_id = rows[0]["run_id"] if rows and rows[0].get("run_id") else run_id
    return run_id, {r["case_id"] for r in rows}


def _measure(
    group: list[Case], config: TimerConfig, peaks: PeakCache, isolate: bool
) -> list[tuple[Case, dict[str, Any], Measurement | None]]:
    """One case alone (in this process or a child), or a group side by side."""
    if len(group) > 1:
        return run_group(group, config, {c: peak_or_nan(peaks, c) for c in group})
    case = group[0]
    peak = peak_or_nan(peaks, case)
    measured, m = run_case_isolated(case, config, peak) if isolate else run_case(case, config, peak)
    return [(case, measured, m)]


def run_sweep(
    cases: Sequence[Case],
    spec: Spec,
    out: Path,
    run_id: str,
    done: set[str],
    isolate: bool = False,
    sweep_cases: Sequence[Case] | None = None,
    side_by_side: bool = False,
) -> RunOutcome:
    """Measure every case not in ``done``; append rows to ``out`` as they finish.

    ``run_id`` and ``done`` come from ``prepare_output``, called first so that
    a bad ``--out`` is refused before anything is printed or measured.
    """
    samples_path, json_path = run_paths(out)
    todo = [c for c in cases if c.case_id not in done]
    provenance = env.provenance()
    peaks = PeakCache()
    meta = {
        "run_id": run_id,
        "schema_version": SCHEMA_VERSION,
        "spec_source": spec.source,
        "axes": {k: list(v) for k, v in spec.axes.items()},
        "timer": asdict(spec.timer),
        "cases": [c.case_id for c in cases],
        # The whole sweep when this run is one shard of it: `bench merge` reports what is missing.
        "sweep_cases": [c.case_id for c in (sweep_cases or cases)],
        "environment": env.environment(),
        "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    write_json_atomic(json_path, meta)
    rows_out = AppendWriter(out, COLUMNS, exclusive=True)
    samples_out = AppendWriter(samples_path, SAMPLE_COLUMNS)
    rows: list[dict[str, Any]] = []
    try:
        with progress.Bar(len(todo)) as bar:
            for group in variant_groups(todo) if side_by_side else [[c] for c in todo]:
                bar.start(group[0].case_id + (f" (+{len(group) - 1} side by side)" if len(group) > 1 else ""))
                for case, measured, m in _measure(group, spec.timer, peaks, isolate):
                    row = {"case_id": case.case_id, **case.columns(), **measured, **provenance}
                    row.update(
                        run_id=run_id,
                        timestamp=dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                        gpu_name=env.gpu_name() if case.device == "cuda" else "",
                        schema_version=SCHEMA_VERSION,
                    )
                    rows_out.write(row)
                    if m is not None:
                        samples_out.write_many(
                            {"case_id": case.case_id, "phase": phase, "index": i, "ms": ms}
                            for phase, values in m.phases.items()
                            for i, ms in enumerate(values)
                        )
                    rows.append(row)
                    bar.advance(row)
    finally:
        rows_out.close()
        samples_out.close()
        meta["peak_gflop_per_s"] = peaks.as_dict()
        meta["finished"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        meta["status_counts"] = dict(Counter(r["status"] for r in rows))
        write_json_atomic(json_path, meta)
    return RunOutcome(out, samples_path, json_path, run_id, rows, len(cases) - len(todo))
