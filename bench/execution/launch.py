"""``bench run --shards N --launcher submitit``: shards as a submitit job array.

submitit (Meta's job launcher, the engine behind Hydra's submitit launcher)
submits to SLURM, or runs jobs on this machine with its local executor. Each job
gets the sweep's ``SweepOptions`` and runs shard K of N (``bench.execution.runner.run_shard``)
into ``results/<run_id>/part-K-of-N.csv``. A job is checkpointable (``ShardJob``): near its
time limit SLURM requeues it and it resumes its part, and the case it was measuring is
measured again, never written as an error. A job that failed is resubmitted once and resumes
its part, unless its failure will recur (bad input found in the job); then the parts are
merged into ``--out`` (default ``results/<run_id>.csv``) and the exit code is an unsharded
run's: 1 when a case failed, with the same message.

Locally, shards run one after another unless ``--parallel-local``: shards that
share one CPU or GPU disturb each other's timings.

Devices and threads are settled here, on the submitting machine, before any job starts:
``--device auto`` becomes the CPU plus CUDA where the jobs will have GPUs
(``--gpus-per-shard``, or this machine's GPUs for local jobs), so every job
plans the same sweep and a job without the GPU its cases need fails loudly
instead of measuring fewer cases; ``--threads 0`` (torch's default) becomes a number, and
each job asks SLURM for the cores its cases' threads need (``--cpus-per-shard``), so case ids
and results are the same sharded or not. What depends on the machine (is CUDA there, does it
run a dtype) is checked in the jobs, not on a login node without the jobs' GPUs. Local jobs
run at once get GPUs of their own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.core.errors import UsageError, one_line
from bench.execution.runner import SweepOptions, plan, run_shard
from bench.records.merge import merge_parts
from bench.records.outcomes import FAILED_STATUSES
from bench.records.reading import read_results
from bench.records.rows import new_run_id

# Requeues a job may take at its time limit (each resumes its part): a sweep longer than the
# limit still ends. SLURM's warning comes SIGNAL_DELAY_S before the limit, or sooner for
# limits so short that 90 s would be most of them.
MAX_REQUEUES = 20
SIGNAL_DELAY_S = 90
POLL_S = 2.0
# What a job that failed says when its failure will recur: resubmitting it would fail again.
RECURRING = ("UsageError",)


def run_part(sweep: SweepOptions, k: int, n: int, part: str) -> int:
    """One shard of the sweep into its part file (resumed if it exists).

    Returns 1 when some cases failed (their rows record why), else 0.
    """
    result = run_shard(sweep, k, n, Path(part))
    return 1 if result.failed else 0


@dataclass(frozen=True)
class ShardJob:
    """A shard's job, checkpointable in submitit's sense: at its time limit (or a preemption)
    submitit calls ``checkpoint``, requeues the same call and ends the job; the requeued job
    resumes the part file, keeping every finished case and round (bench.execution.rounds)."""

    def __call__(self, sweep: SweepOptions, k: int, n: int, part: str) -> int:
        return run_part(sweep, k, n, part)

    def checkpoint(self, sweep: SweepOptions, k: int, n: int, part: str) -> Any:
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, sweep, k, n, part)


@dataclass(frozen=True)
class LaunchOptions:
    """How ``--shards`` are launched (the sweep itself is a ``SweepOptions``)."""

    shards: int
    cluster: str = "auto"
    partition: str | None = None
    gpus_per_shard: int = 0
    timeout_min: int = 60
    cpus_per_shard: int = 0  # 0: the most threads any case uses
    wait: bool = True
    parallel_local: bool = False
    out: Path | None = None  # the merged CSV (default: results/<run_id>.csv)


def local_gpus(k: int, opts: LaunchOptions, gpu_count: int) -> list[int]:
    """The GPUs local shard ``k`` (1-based) may see.

    One after another, every shard gets the first ``gpus_per_shard``; at once
    (``--parallel-local``), shard k gets its own block of them, never shared.
    """
    per = opts.gpus_per_shard
    needed = per * (opts.shards if opts.parallel_local else 1)
    if needed > gpu_count:
        how = f"{opts.shards} shards at once × {per}" if opts.parallel_local else f"{per} per shard"
        raise UsageError(f"--gpus-per-shard: {how} needs {needed} GPU(s), and this machine has {gpu_count}")
    first = (k - 1) * per if opts.parallel_local else 0
    return list(range(first, first + per))


def settle_devices(
    sweep: SweepOptions, opts: LaunchOptions, local: bool, gpu_count: int
) -> tuple[SweepOptions, LaunchOptions]:
    """Replace ``auto`` by the devices the jobs will have, and give CUDA sweeps their GPUs.

    Local jobs have this machine's GPUs; SLURM jobs have GPUs when
    ``--gpus-per-shard`` asks for them.
    """
    gpus_in_jobs = gpu_count > 0 if local else opts.gpus_per_shard > 0
    auto = ("cpu", "cuda") if gpus_in_jobs else ("cpu",)

    def settle(values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d for v in values for d in (auto if v == "auto" else (v,))))

    spec = sweep.spec
    axes = spec.axes | {"device": settle(spec.axes["device"])}
    grids = tuple(g | {"device": settle(g["device"])} if "device" in g else g for g in spec.grids)
    sweep = dataclasses.replace(sweep, spec=dataclasses.replace(spec, axes=axes, grids=grids))
    devices = {d for g in (axes, *grids) for d in g.get("device", ())}
    if "cuda" in devices and opts.gpus_per_shard == 0:
        if not local:
            raise UsageError("--device cuda: SLURM jobs get no GPU unless --gpus-per-shard N asks for them")
        opts = dataclasses.replace(opts, gpus_per_shard=1)
        print("[shards] CUDA cases: one GPU per shard (--gpus-per-shard 1)", file=sys.stderr)
    return sweep, opts


def settle_threads(sweep: SweepOptions, opts: LaunchOptions, default_threads: int) -> tuple[SweepOptions, int]:
    """``threads`` 0 (torch's default) made a number, and the cores a job asks for.

    0 becomes ``--cpus-per-shard`` where given, else this machine's torch default, so the jobs'
    case ids (``-t2``) are the ones ``--list`` shows here. A job asks for the most threads any
    case uses, unless ``--cpus-per-shard`` says more; fewer is refused (the cases would share cores).
    """
    zero = opts.cpus_per_shard or default_threads

    def settle(values: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(dict.fromkeys(zero if t == 0 else t for t in values))

    spec = sweep.spec
    axes = spec.axes | {"threads": settle(spec.axes["threads"])}
    grids = tuple(g | {"threads": settle(g["threads"])} if "threads" in g else g for g in spec.grids)
    most = max(t for g in (axes, *grids) for t in g.get("threads", ()))
    if opts.cpus_per_shard and most > opts.cpus_per_shard:
        raise UsageError(
            f"--cpus-per-shard {opts.cpus_per_shard}: a case runs {most} threads (--threads); give at least {most}"
        )
    sweep = dataclasses.replace(sweep, spec=dataclasses.replace(spec, axes=axes, grids=grids))
    return sweep, max(most, opts.cpus_per_shard)


def executor_for(folder: Path, opts: LaunchOptions) -> Any:
    try:
        import submitit
    except ImportError:
        raise UsageError("--launcher submitit needs submitit: pip install 'rnnbench[cluster]'") from None
    executor = submitit.AutoExecutor(
        folder=folder, cluster=None if opts.cluster == "auto" else opts.cluster, slurm_max_num_timeout=MAX_REQUEUES
    )
    params: dict[str, Any] = {"timeout_min": opts.timeout_min, "name": "rnnbench"}
    if opts.partition:
        params["slurm_partition"] = opts.partition
    if executor.cluster != "local":
        params["slurm_array_parallelism"] = opts.shards
        params["slurm_signal_delay_s"] = min(SIGNAL_DELAY_S, opts.timeout_min * 60 // 4)
    executor.update_parameters(**params)
    return executor


@dataclass(frozen=True)
class JobEnd:
    """How a finished job ended: ``done`` (its part written; failed cases are counted from the
    merged rows), ``failed`` (to resubmit: it resumes) or ``recurring`` (it would fail again)."""

    state: str
    why: str = ""


# A job that SLURM says COMPLETED may show its result file a little later on a shared filesystem.
RESULT_GRACE_S = 15.0
_no_result_since: dict[str, float] = {}
# The exception line of a Python traceback: "package.module.SomeError: what went wrong".
EXCEPTION_LINE = re.compile(r"^[\w.]*(?:Error|Exception|Interrupt)\b.*")


def end_of(job: Any) -> JobEnd | None:
    """None while the job runs. Reads the job's result file when there is one; without one, the
    job's SLURM state decides (a job cancelled or killed has no file, and submitit's
    ``exception()`` would wait 15 s for it), except that a COMPLETED job's file gets
    ``RESULT_GRACE_S`` to appear."""
    if not job.done():
        return None
    if not job.paths.result_pickle.exists():
        state = str(job.state).upper()
        first = _no_result_since.setdefault(job.job_id, time.monotonic())
        if state.startswith("COMPLETED") and time.monotonic() - first < RESULT_GRACE_S:
            return None  # its result file is on its way
        return JobEnd("failed", f"ended without a result ({job.state})")
    error = job.exception()
    if error is None:
        return JobEnd("done")
    lines = [line.strip() for line in str(error).splitlines() if EXCEPTION_LINE.match(line.strip())]
    why = lines[-1] if lines else one_line(error)
    return JobEnd("recurring" if why.split(":")[0].endswith(RECURRING) else "failed", why)


def state_of(job: Any) -> str:
    end = end_of(job)
    if end is None:
        return "pending" if job.state.upper() in ("PENDING", "UNKNOWN", "REQUEUED") else "running"
    return "done" if end.state == "done" else "failed"


def watch(jobs: dict[int, Any]) -> None:
    """Print job counts whenever they change, until every job is finished."""
    last = None
    while True:
        counts = Counter(state_of(j) for j in jobs.values())
        line = ", ".join(f"{s} {counts.get(s, 0)}" for s in ("pending", "running", "done", "failed"))
        if line != last:
            print(f"[shards] {line}", file=sys.stderr, flush=True)
            last = line
        if counts.get("pending", 0) + counts.get("running", 0) == 0:
            return
        time.sleep(POLL_S)


def cancel(jobs: dict[int, Any]) -> None:
    """Cancel the jobs still queued or running, and say which (an interrupted launcher)."""
    live = [j for j in jobs.values() if not j.done()]
    for job in live:
        try:
            job.cancel(check=False)
        except Exception as e:  # the scheduler may be gone too: say how to cancel by hand
            print(f"[shards] could not cancel job {job.job_id} ({one_line(e)}): scancel {job.job_id}", file=sys.stderr)
    if live:
        print(f"[shards] cancelled job(s) {', '.join(j.job_id for j in live)}", file=sys.stderr)


# What an sbatch refusal says, and the flag that changes it.
REFUSAL_FLAGS = (
    (("gres", "gpu"), "--gpus-per-shard"),
    (("partition",), "--partition"),
    (("time limit", "timelimit"), "--timeout-min"),
    (("processor", "cpu"), "--cpus-per-shard"),
)


def submit_or_refuse(submit: Any) -> Any:
    """``submit()``, with SLURM's refusal of a job (sbatch's error) as one line naming the flag to change.

    submitit prints sbatch's stderr (Python's ``sys.stderr``) and raises with the same text:
    the print is held back, and shown as it was only if the submission went through."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            jobs = submit()
    except Exception as e:
        if type(e).__module__.split(".")[0] != "submitit":
            raise
        lines = [line.strip() for line in (str(e) + "\n" + captured.getvalue()).splitlines() if line.strip()]
        said = next((line for line in lines if "error" in line.lower()), lines[-1] if lines else one_line(e))
        flags = [flag for words, flag in REFUSAL_FLAGS if any(w in said.lower() for w in words)]
        change = " or ".join(flags) if flags else "--partition, --gpus-per-shard, --cpus-per-shard or --timeout-min"
        raise UsageError(f"SLURM refused the jobs ({said}): change {change}") from None
    sys.stderr.write(captured.getvalue())
    return jobs


def launch(sweep: SweepOptions, opts: LaunchOptions) -> int:
    """Submit one job per shard, wait, resubmit failures once, merge the parts."""
    if opts.shards < 1:
        raise UsageError(f"--shards: {opts.shards} must be at least 1")
    if opts.cpus_per_shard < 0:
        raise UsageError(f"--cpus-per-shard: {opts.cpus_per_shard} must be 1 or more (0: what the cases need)")
    if opts.out is not None and opts.out.exists():
        raise UsageError(f"--out {opts.out}: the file exists; pick a new path (the merge goes there)")
    run_id = new_run_id()
    folder = Path("results") / run_id
    executor = executor_for(folder / "submitit", opts)
    local = executor.cluster == "local"
    gpu_count = torch.cuda.device_count() if local else 0
    sweep, opts = settle_devices(sweep, opts, local, gpu_count)
    sweep, cpus = settle_threads(sweep, opts, torch.get_num_threads())
    # Bad input refused here, before any job; whether CUDA is there and what it runs, in the jobs.
    plan(sweep, cuda_available=(local and gpu_count > 0) or opts.gpus_per_shard > 0, devices_here=local)
    if opts.gpus_per_shard:
        executor.update_parameters(gpus_per_node=opts.gpus_per_shard)
    if not local:
        executor.update_parameters(cpus_per_task=cpus)
    parts = {k: str(folder / f"part-{k}-of-{opts.shards}.csv") for k in range(1, opts.shards + 1)}
    gpus = {k: local_gpus(k, opts, gpu_count) if local and opts.gpus_per_shard else [] for k in parts}
    job = ShardJob()

    def submit(k: int) -> Any:
        if gpus[k]:  # the local executor's CUDA_VISIBLE_DEVICES for this job
            executor.update_parameters(visible_gpus=gpus[k])
        return executor.submit(job, sweep, k, opts.shards, parts[k])

    def submit_all(todo: list[int]) -> dict[int, Any]:
        if local:  # one by one: each job's visible GPUs are set before it is submitted
            return {k: submit(k) for k in todo}
        with executor.batch():
            return {k: submit(k) for k in todo}

    jobs: dict[int, Any] = {}
    sequential = local and not opts.parallel_local
    ends: dict[int, JobEnd] = {}
    try:
        for attempt in (1, 2):
            todo = [k for k in parts if k not in ends or ends[k].state == "failed"]
            if not todo:
                break
            if attempt == 2:
                print(f"[shards] resubmitting failed shard(s) {todo} once; they resume their parts", file=sys.stderr)
            if sequential:
                for k in todo:
                    jobs[k] = submit_or_refuse(lambda k=k: submit(k))
                    watch({k: jobs[k]})
            else:
                submitted = submit_or_refuse(lambda todo=todo: submit_all(todo))
                if not opts.wait:
                    merged = opts.out or Path("results") / f"{run_id}.csv"
                    print(
                        f"submitted {len(todo)} job(s) ({', '.join(j.job_id for j in submitted.values())}); "
                        f"merge when they finish:\n  python -m bench merge {folder} --out {merged}"
                    )
                    return 0
                jobs.update(submitted)
                watch(jobs)
            ends = {k: end_of(jobs[k]) or JobEnd("failed", "unfinished") for k in parts}
    except KeyboardInterrupt:
        cancel(jobs)
        print(f"[shards] interrupted; finished cases are in {folder}", file=sys.stderr)
        raise
    unfinished = [k for k in parts if ends[k].state != "done"]
    for k in unfinished:
        how = "will fail again, not resubmitted" if ends[k].state == "recurring" else "failed twice"
        print(f"[shards] shard {k} {how}: {ends[k].why}", file=sys.stderr)
    merged = opts.out or Path("results") / f"{run_id}.csv"
    try:
        rows, missing = merge_parts([folder], merged, allow_missing=True)
    except UsageError as e:
        if unfinished and "no part files" in str(e):  # no part at all: the shards' failures above say why
            return 1
        raise
    print(f"merged {rows} rows into {merged} ({len(missing)} case(s) missing)")
    failed = int(read_results(merged, allow_empty=True)["status"].isin(FAILED_STATUSES).sum())
    if failed:
        print(f"{failed} case(s) failed (oom/error rows in the CSV)", file=sys.stderr)
    return 1 if unfinished or missing or failed else 0
