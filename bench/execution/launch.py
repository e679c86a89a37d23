"""``bench run --shards N --launcher submitit``: shards as a submitit job array.

submitit (Meta's job launcher, the engine behind Hydra's submitit launcher)
submits to SLURM, or runs jobs on this machine with its local executor. Each job
gets the sweep's ``SweepOptions`` and runs shard K of N (``bench.execution.runner.run_shard``)
into ``results/<run_id>/part-K-of-N.csv``; a failed or timed-out job is
resubmitted once and resumes its part; when all are done the parts are merged
into ``--out`` (default ``results/<run_id>.csv``).

Locally, shards run one after another unless ``--parallel-local``: shards that
share one CPU or GPU disturb each other's timings.

Devices are settled here, on the submitting machine, before any job starts:
``--device auto`` becomes the CPU plus CUDA where the jobs will have GPUs
(``--gpus-per-shard``, or this machine's GPUs for local jobs), so every job
plans the same sweep and a job without the GPU its cases need fails loudly
instead of measuring fewer cases. Local jobs run at once get GPUs of their own.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.core.errors import UsageError
from bench.execution.runner import SweepOptions, run_shard
from bench.records.merge import merge_parts
from bench.records.rows import new_run_id


def run_part(sweep: SweepOptions, k: int, n: int, part: str) -> int:
    """The job: one shard of the sweep into its part file (resumed if it exists).

    Returns 1 when some cases failed (their rows record why), else 0.
    """
    result = run_shard(sweep, k, n, Path(part))
    return 1 if result.failed else 0


@dataclass(frozen=True)
class LaunchOptions:
    """How ``--shards`` are launched (the sweep itself is a ``SweepOptions``)."""

    shards: int
    cluster: str = "auto"
    partition: str | None = None
    gpus_per_shard: int = 0
    timeout_min: int = 60
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


def executor_for(folder: Path, opts: LaunchOptions) -> Any:
    try:
        import submitit
    except ImportError:
        raise UsageError("--launcher submitit needs submitit: pip install 'rnnbench[cluster]'") from None
    executor = submitit.AutoExecutor(folder=folder, cluster=None if opts.cluster == "auto" else opts.cluster)
    params: dict[str, Any] = {"timeout_min": opts.timeout_min, "name": "rnnbench"}
    if opts.partition:
        params["slurm_partition"] = opts.partition
    if executor.cluster != "local":
        params["slurm_array_parallelism"] = opts.shards
    executor.update_parameters(**params)
    return executor


def state_of(job: Any) -> str:
    if not job.done():
        return "pending" if job.state.upper() in ("PENDING", "UNKNOWN", "REQUEUED") else "running"
    return "failed" if job.exception() is not None else "done"


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
        time.sleep(2)


def launch(sweep: SweepOptions, opts: LaunchOptions) -> int:
    """Submit one job per shard, wait, resubmit failures once, merge the parts."""
    if opts.shards < 1:
        raise UsageError(f"--shards: {opts.shards} must be at least 1")
    run_id = new_run_id()
    folder = Path("results") / run_id
    executor = executor_for(folder / "submitit", opts)
    local = executor.cluster == "local"
    gpu_count = torch.cuda.device_count() if local else 0
    sweep, opts = settle_devices(sweep, opts, local, gpu_count)
    if opts.gpus_per_shard:
        executor.update_parameters(gpus_per_node=opts.gpus_per_shard)
    parts = {k: str(folder / f"part-{k}-of-{opts.shards}.csv") for k in range(1, opts.shards + 1)}
    gpus = {k: local_gpus(k, opts, gpu_count) if local and opts.gpus_per_shard else [] for k in parts}

    def submit(k: int) -> Any:
        if gpus[k]:  # the local executor's CUDA_VISIBLE_DEVICES for this job
            executor.update_parameters(visible_gpus=gpus[k])
        return executor.submit(run_part, sweep, k, opts.shards, parts[k])

    jobs: dict[int, Any] = {}
    sequential = local and not opts.parallel_local
    for attempt in (1, 2):
        todo = [k for k in parts if k not in jobs or state_of(jobs[k]) == "failed"]
        if not todo:
            break
        if attempt == 2:
            print(f"[shards] resubmitting failed shard(s) {todo} once; they resume their parts", file=sys.stderr)
        if sequential:
            for k in todo:
                jobs[k] = submit(k)
                watch({k: jobs[k]})
        else:
            if local:  # one by one: each job's visible GPUs are set before it is submitted
                submitted = {k: submit(k) for k in todo}
            else:
                with executor.batch():
                    submitted = {k: submit(k) for k in todo}
            if not opts.wait:
                merged = opts.out or Path("results") / f"{run_id}.csv"
                print(
                    f"submitted {len(todo)} job(s) ({', '.join(j.job_id for j in submitted.values())}); "
                    f"merge when they finish:\n  python -m bench merge {folder} --out {merged}"
                )
                return 0
            jobs.update(submitted)
            watch(jobs)
    failed = [k for k in parts if state_of(jobs[k]) == "failed"]
    for k in failed:
        print(f"[shards] shard {k} failed twice: {jobs[k].exception()}", file=sys.stderr)
    merged = opts.out or Path("results") / f"{run_id}.csv"
    rows, missing = merge_parts([folder], merged, allow_missing=True)
    print(f"merged {rows} rows into {merged} ({len(missing)} case(s) missing)")
    return 1 if failed or missing else 0
