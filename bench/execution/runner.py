"""Run a sweep: plan its cases, measure each (alone, isolated or side by side), append a row per case.

A case that fails (OOM or any exception) becomes an ``oom``/``error`` row and
the sweep goes on; rows are flushed as they finish, so nothing measured is lost.
``SweepOptions`` is everything a sweep needs; the command line builds it, and
shard launchers hand it to their jobs as it is (no argv re-parsing).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bench.core.cases import Case
from bench.core.errors import UsageError
from bench.core.noise import CpuWatch, oversubscribed
from bench.core.roofline import Roofs
from bench.core.spec import Spec, expand
from bench.core.timer import Measurement, TimerConfig, freeze_imports, measure
from bench.execution import progress
from bench.execution.counting import count_cases, valgrind
from bench.execution.isolate import run_in_child
from bench.execution.rounds import Direct, Executor, Ledger, Unit, WorkerPerRound, restore, run_rounds
from bench.execution.rounds import Progress as RoundsProgress
from bench.execution.shard import shard_cases
from bench.measure import env
from bench.measure.checks import check_cases
from bench.measure.clocks import clock_for
from bench.measure.correctness import extra_columns
from bench.measure.failures import failure, from_launcher
from bench.measure.peaks import RoofCache
from bench.measure.variants import measure_together, variant_groups
from bench.measure.workload import Workload, build
from bench.records.files import AppendWriter, keep_samples, ledger_path, repair_torn_tail, run_paths
from bench.records.outcomes import FAILED_STATUSES, Counted, Failed, Measured, Outcome
from bench.records.reading import read_results
from bench.records.rows import (
    COLUMNS,
    COUNT_SAMPLE_COLUMNS,
    ROUND_SAMPLE_COLUMNS,
    SCHEMA_VERSION,
    Row,
    make_row,
    new_run_id,
    now_iso,
    sample_rows,
)
from bench.records.runinfo import RunInfo

ROOF_MIN_BUDGET_S = 0.03


def peak_or_nan(peaks: RoofCache, case: Case) -> float:
    """The device peak for the case; NaN if even the matmul fails (the case will too)."""
    try:
        return peaks.for_case(case)
    except Exception:
        return math.nan


def roofs_or_none(peaks: RoofCache, case: Case) -> Roofs | None:
    """Every roof of the case (measured now where not yet); None if they cannot be measured."""
    try:
        return peaks.roofs_for(case)
    except Exception:
        return None


def run_case(case: Case, config: TimerConfig, peak: float) -> Outcome:
    """Measure one case; failures become a ``Failed``, never an exception.

    When it returns, the case's model, tensors and autograd graph are freed
    (``Workload.close``, then the last reference dropped; no ``gc.collect``
    needed) and CUDA's cache is emptied, so the next case starts clean.
    """
    cuda = case.device == "cuda"
    work = None
    try:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        work = build(case)
        with work.context(), CpuWatch() as watch:
            m = measure(work.phases, config, clock_for(case.device), work.before_sample, work.stop_rule(config))
            # Allocator peak over build + warm-up + samples (weights, inputs, activations),
            # read before the error check below builds a reference model.
            peak_mem_mb = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
            settings = work.kernel_settings()
            extra = extra_columns(work)  # after timing: nothing of it lands in the samples
        if cuda:
            extra["peak_mem_mb"] = peak_mem_mb
        if watch.result is not None:
            extra.update(watch.result.columns())
        return Measured(m, work.facts(), peak, config.target_rel_ci, extra, kernel_settings=settings)
    except Exception as e:
        if from_launcher(e):
            raise  # a time limit cut the case off: measured again when the job resumes, not an error
        return failure(e)
    finally:
        if work is not None:
            work.close()
        del work
        if cuda:
            torch.cuda.empty_cache()


def run_group(cases: Sequence[Case], config: TimerConfig, peaks: dict[Case, float]) -> list[tuple[Case, Outcome]]:
    """Measure cases that differ only in varlen/impl side by side (bench.measure.variants).

    ``peak_mem_mb`` stays empty: the allocator's peak would mix the variants.
    Every variant is freed before this returns, as in ``run_case``.
    """
    done: dict[Case, Outcome] = {}
    works = []
    for case in cases:
        try:
            works.append(build(case))
        except Exception as e:
            if from_launcher(e):
                raise
            done[case] = failure(e)
    try:
        done.update(_measure_group(works, config, peaks))
    finally:
        while works:  # pop: no loop variable is left holding the last one
            works.pop().close()
    if any(c.device == "cuda" for c in cases):
        torch.cuda.empty_cache()
    return [(case, done[case]) for case in cases]


def _measure_group(works: Sequence[Workload], config: TimerConfig, peaks: dict[Case, float]) -> dict[Case, Outcome]:
    with CpuWatch() as watch:
        results, turns = measure_together(works, config)
    noise = watch.result.columns() if watch.result is not None else {}
    side = f"side by side with {len(works) - 1} other variant(s) in {turns} turns"
    done: dict[Case, Outcome] = {}
    for work, result in results:
        if isinstance(result, Failed):
            done[work.case] = result
            continue
        try:
            with work.context():
                settings = work.kernel_settings()
                extra = extra_columns(work) | noise
            peak = peaks[work.case]
            done[work.case] = Measured(result, work.facts(), peak, config.target_rel_ci, extra, side, settings)
        except Exception as e:
            if from_launcher(e):
                raise
            done[work.case] = failure(e)
    return done


@dataclass(frozen=True)
class SweepOptions:
    """What ``bench run`` measures and how: everything a shard job needs, picklable."""

    spec: Spec
    isolate: bool = False
    side_by_side: bool = False
    metric: str = "time"  # or "instructions": each step counted under callgrind (bench.execution.counting)
    count_jobs: int = 0  # instructions: valgrind processes at once (0: one per core)


@dataclass
class SweepResult:
    rows: list[Row]
    already_done: int  # cases skipped because --resume found them in the file

    @property
    def failed(self) -> int:
        return sum(r.status in FAILED_STATUSES for r in self.rows)


def plan(
    options: SweepOptions,
    shard: tuple[int, int] | None = None,
    cuda_available: bool | None = None,
    devices_here: bool = True,
) -> tuple[list[Case], list[Case]]:
    """(the cases to measure here, the whole sweep's cases), every check done before anything runs.

    A launcher plans for its jobs' machines: ``cuda_available`` says whether they have CUDA
    (None: this machine's answer), and without ``devices_here`` what only a job's machine can
    check (does its CUDA run a dtype) is left to the job's own plan.
    """
    if options.side_by_side and options.isolate:
        raise UsageError("--side-by-side and --isolate exclude each other (variants share one process)")
    if options.metric == "instructions":
        cases = countable_cases(options)
    else:
        cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
        cases = expand(options.spec, cuda, torch.get_num_threads())
    check_cases(cases, devices_here)
    return (shard_cases(cases, *shard) if shard else cases), cases


def countable_cases(options: SweepOptions) -> list[Case]:
    """The cases of an instruction run: on the CPU, one thread each; the rest refused in one line."""
    flag = "--metric instructions"
    valgrind()  # none here: one line on how to install it, before anything runs
    if options.side_by_side or options.isolate:
        raise UsageError(f"{flag} runs each case in a valgrind process: drop --side-by-side/--isolate")
    spec = options.spec
    if any("cuda" in grid.get("device", spec.axes["device"]) for grid in spec.grids or ({},)):
        raise UsageError(
            f"{flag} counts the host's instructions, which say nothing of the GPU's work: use --device cpu"
        )
    # device auto means the CPU, and threads 0 (torch's default) one thread: counts are per step on one thread.
    cases = expand(spec, cuda_available=False, default_threads=1)
    for case in cases:
        if case.threads != 1:
            raise UsageError(f"{flag} counts one thread (valgrind runs threads one at a time): use --threads 1")
        if case.impl == "compiled":
            raise UsageError(f"{flag}: impl=compiled is not counted (torch.compile under valgrind takes many minutes)")
        if case.streaming:
            raise UsageError(f"{flag}: --mode stream is timed, not counted (its tail is what it is judged by)")
    return cases


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
        Ledger(ledger_path(out)).remove()  # rounds of some earlier run at this path are not this run's
        return run_id, set()
    if not out.exists():
        raise UsageError(f"--resume: {out} does not exist (nothing to resume)")
    repair_torn_tail(out)
    repair_torn_tail(samples)
    if out.stat().st_size == 0:
        return run_id, set()
    rows = read_results(out, allow_empty=True)
    if not rows.empty and rows["run_id"].iloc[0]:
        run_id = rows["run_id"].iloc[0]
    return run_id, set(rows["case_id"])


def measure_unit(cases: list[Case], config: TimerConfig, peaks: dict[Case, float]) -> list[tuple[Case, Outcome]]:
    """One round of a unit: a case alone, or a group side by side (what a round worker runs)."""
    if len(cases) > 1:
        return run_group(cases, config, peaks)
    return [(cases[0], run_case(cases[0], config, peaks[cases[0]]))]


def run_sweep(
    options: SweepOptions,
    cases: Sequence[Case],
    out: Path,
    run_id: str,
    done: set[str],
    sweep_cases: Sequence[Case] | None = None,
) -> SweepResult:
    """Measure every case not in ``done``; append rows to ``out`` as they finish.

    ``run_id`` and ``done`` come from ``prepare_output``, called first so that
    a bad ``--out`` is refused before anything is printed or measured.
    """
    spec = options.spec
    samples_path, json_path = run_paths(out)
    todo = [c for c in cases if c.case_id not in done]
    provenance = env.provenance()
    # Roofs sampled no longer than the cases (within the roofs' own budgets): a quick look stays quick.
    peaks = RoofCache(budget_s=max(ROOF_MIN_BUDGET_S, spec.timer.budget_s / 2))
    counting = options.metric == "instructions"
    meta = RunInfo(
        run_id=run_id,
        schema_version=SCHEMA_VERSION,
        metric=options.metric,
        spec_source=spec.source,
        axes={k: list(v) for k, v in spec.axes.items()},
        timer=asdict(spec.timer),
        rounds=None if counting else spec.timer.rounds,
        cases=[c.case_id for c in cases],
        # The whole sweep when this run is one shard of it: `bench merge` reports what is missing.
        sweep_cases=[c.case_id for c in (sweep_cases or cases)],
        environment=env.environment(),
        started=now_iso(),
    )
    meta.write(json_path)
    warning = None if counting else oversubscribed(max((c.threads for c in todo), default=0))
    if warning:
        print(warning, file=sys.stderr)
    rows_out = AppendWriter(out, COLUMNS, exclusive=True)
    if not counting:
        # Resuming: only the finished cases' samples stay; the ledger gives back the finished rounds
        # of the rest (a round's samples may be out while its ledger line is not).
        keep_samples(samples_path, done, ROUND_SAMPLE_COLUMNS)
    samples_out = AppendWriter(samples_path, COUNT_SAMPLE_COLUMNS if counting else ROUND_SAMPLE_COLUMNS)
    rows: list[Row] = []
    complete = False
    try:
        if counting:
            with progress.Bar(len(todo)) as bar:
                for case, outcome in _counted(todo, options, bar):
                    row = _write_row(case, outcome, provenance, run_id, rows_out, rows)
                    if isinstance(outcome, Counted):
                        samples_out.write_many(sample_rows(case.case_id, outcome))
                    bar.advance(row.case.case_id, row.status, row_detail(row))
        else:
            for case, outcome in _timed(todo, options, peaks, out, samples_out):
                if isinstance(outcome, Measured):  # its roofs: measured before the workers started
                    outcome = dataclasses.replace(outcome, roofs=roofs_or_none(peaks, case))
                _write_row(case, outcome, provenance, run_id, rows_out, rows)
        complete = True
    finally:
        rows_out.close()
        samples_out.close()
        if complete and not counting:
            Ledger(ledger_path(out)).remove()  # every row is out: the rounds are in the CSVs
        meta.peak_gflop_per_s = {key: r["gflop_per_s"] for key, r in peaks.as_dict()["compute"].items()}
        meta.roofs = peaks.as_dict()
        meta.finished = now_iso()
        meta.status_counts = dict(Counter(r.status for r in rows))
        meta.write(json_path)
    return SweepResult(rows, len(cases) - len(todo))


def _write_row(
    case: Case, outcome: Outcome, provenance: dict[str, str], run_id: str, rows_out: AppendWriter, rows: list[Row]
) -> Row:
    gpu = {"gpu_name": env.gpu_name() if case.device == "cuda" else ""}
    row = make_row(case, outcome, provenance | gpu, run_id)
    rows_out.write(row)
    rows.append(row)
    return row


def _timed(
    todo: Sequence[Case], options: SweepOptions, peaks: RoofCache, out: Path, samples_out: AppendWriter
) -> Iterator[tuple[Case, Outcome]]:
    """Each case timed in its rounds (bench.execution.rounds): alone, in a child, or with its variants side
    by side; each round's samples written as it ends, each case's outcome yielded when it has all."""
    config = options.spec.timer
    freeze_imports()  # for units measured in this process (one round, no worker)
    groups = variant_groups(todo) if options.side_by_side else [[c] for c in todo]
    units = [Unit(g) for g in groups]
    ledger = Ledger(ledger_path(out))
    restored = restore(units, ledger)
    for unit in units:  # the samples of rounds finished before an interrupt
        for index, outcomes in sorted(unit.rounds.items()):
            _write_round_samples(unit, index, outcomes, samples_out)
    per_round = config.for_one_round()

    def peak(case: Case) -> float:
        return peak_or_nan(peaks, case)

    # Every roof before any round's worker starts: measured lazily, the first peak ran beside the
    # worker importing torch and read 8 GFLOP/s instead of ~200 (2-vCPU AMD EPYC VM), and every
    # efficiency of the run was off by as much.
    for case in todo:
        roofs_or_none(peaks, case)
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()  # what the roofs held goes back before the workers measure
    if config.rounds > 1 and not options.isolate:
        executor: Executor = WorkerPerRound(measure_unit, per_round, peak)
    else:  # one round in this process (a quick look), or each unit-round in a child of its own
        executor = Direct(measure_unit, per_round, peak, run_in_child if options.isolate else None)
    with progress.Bar(len(units) * config.rounds - restored) as bar:

        def started(unit: Unit, index: int) -> None:
            bar.start(f"{round_label(index, config.rounds)}: {unit.label}")

        def ended(unit: Unit, index: int, outcomes: list[tuple[Case, Outcome]]) -> None:
            _write_round_samples(unit, index, dict((c.case_id, o) for c, o in outcomes), samples_out)
            failed = [o for _, o in outcomes if isinstance(o, Failed)]
            status = failed[0].status if len(failed) == len(outcomes) else "ok"
            bar.advance(f"{round_label(index, config.rounds)}: {unit.label}", status, round_detail(outcomes))

        yield from run_rounds(units, config, executor, ledger, RoundsProgress(started, ended, bar.extend))


def _write_round_samples(unit: Unit, index: int, outcomes: dict[str, Outcome], samples_out: AppendWriter) -> None:
    """A round's raw samples, tagged with the round, numbered on from the case's earlier rounds."""
    for case_id, outcome in outcomes.items():
        if not isinstance(outcome, Measured):
            continue
        m = outcome.measurement
        before = sum(
            len(next(iter(o[case_id].measurement.phases.values())))
            for r, o in unit.rounds.items()
            if r < index and isinstance(o.get(case_id), Measured)
        )
        tagged = Measurement(m.phases, m.warmup_runs, m.sampling_s, m.reached_target, [index] * len(m.total_ms))
        samples_out.write_many(sample_rows(case_id, tagged, first_index=before))


def round_label(index: int, planned: int) -> str:
    """``round 2/3`` for a planned round, ``extra round 4`` for one from the time pool."""
    return f"round {index + 1}/{planned}" if index < planned else f"extra round {index + 1}"


def round_detail(outcomes: list[tuple[Case, Outcome]]) -> str:
    """A round's medians (or errors), for the progress line."""
    parts = []
    for _, o in outcomes:
        if isinstance(o, Measured):
            parts.append(f"{np.median(o.measurement.total_ms):.3f} ms")
        elif isinstance(o, Failed):
            parts.append(o.error)
    return ", ".join(parts)


def _counted(todo: Sequence[Case], options: SweepOptions, bar: progress.Bar) -> Iterator[tuple[Case, Outcome]]:
    """Each case's instructions, as the valgrind processes finish them."""
    jobs = options.count_jobs or os.cpu_count() or 1
    bar.start(f"counting instructions under callgrind in {min(jobs, len(todo))} process(es); importing torch first")
    yield from count_cases(todo, jobs)


def row_detail(row: Row) -> str:
    if row.instructions is not None:
        return f"{row.instructions / 1e6:.3f} M instructions (spread {row.instructions_spread:.2%})"
    return f"{row.median_ms:.3f} ms" if row.median_ms is not None else row.error


def run_shard(options: SweepOptions, k: int, n: int, out: Path) -> SweepResult:
    """One shard of a sweep into its part file, resumed if the file exists (a launcher's job)."""
    cases, sweep = plan(options, (k, n))
    run_id, done = prepare_output(out, out.exists(), new_run_id())
    return run_sweep(options, cases, out, run_id, done, sweep_cases=sweep)
