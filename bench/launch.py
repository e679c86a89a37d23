"""``bench run --shards N --launcher submitit``: shards as a submitit job array.

submitit (Meta's job launcher, the engine behind Hydra's submitit launcher)
submits to SLURM, or runs jobs on this machine with its local executor. Each job
runs ``bench run ... --shard K/N`` into ``results/<run_id>/part-K-of-N.csv``; a
failed or timed-out job is resubmitted once and resumes its part; when all are
done the parts are merged into ``results/<run_id>.csv``.

Locally, shards run one after another unless ``--parallel-local``: shards that
share one CPU or GPU disturb each other's timings.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.merge import merge_parts
from bench.runner import new_run_id

# Flags of `bench run` that belong to the launcher, with whether they take a value.
LAUNCHER_FLAGS = {
    "--shards": True,
    "--launcher": True,
    "--cluster": True,
    "--partition": True,
    "--gpus-per-shard": True,
    "--timeout-min": True,
    "--no-wait": False,
    "--parallel-local": False,
    "--out": True,
}


def run_part(run_argv: list[str], k: int, n: int, part: str) -> int:
    """The job: one shard of the sweep into its part file (resumed if it exists)."""
    from bench.cli import main

    resume = ["--resume"] if Path(part).exists() else []
    code = main(["run", *run_argv, "--shard", f"{k}/{n}", "--out", part, *resume])
    if code not in (0, 1):  # 1: some cases failed, which their rows record
        raise RuntimeError(f"shard {k}/{n} exited {code}")
    return code


def strip_launcher_flags(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in LAUNCHER_FLAGS:
            skip = LAUNCHER_FLAGS[name] and "=" not in arg
            continue
        out.append(arg)
    return out


@dataclass
class LaunchOptions:
    shards: int
    cluster: str = "auto"
    partition: str | None = None
    gpus_per_shard: int = 0
    timeout_min: int = 60
    wait: bool = True
    parallel_local: bool = False


def executor_for(folder: Path, opts: LaunchOptions) -> Any:
    try:
        import submitit
    except ImportError:
        raise UsageError("--launcher submitit needs submitit: pip install 'rnnbench[cluster]'") from None
    executor = submitit.AutoExecutor(folder=folder, cluster=None if opts.cluster == "auto" else opts.cluster)
    params: dict[str, Any] = {"timeout_min": opts.timeout_min, "name": "rnnbench"}
    if opts.gpus_per_shard:
        params["gpus_per_node"] = opts.gpus_per_shard
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


def launch(run_argv: list[str], opts: LaunchOptions) -> int:
    if opts.shards < 1:
        raise UsageError(f"--shards: {opts.shards} must be at least 1")
    run_id = new_run_id()
    folder = Path("results") / run_id
    executor = executor_for(folder / "submitit", opts)
    parts = {k: str(folder / f"part-{k}-of-{opts.shards}.csv") for k in range(1, opts.shards + 1)}
    jobs: dict[int, Any] = {}
    sequential = executor.cluster == "local" and not opts.parallel_local
    for attempt in (1, 2):
        todo = [k for k in parts if k not in jobs or state_of(jobs[k]) == "failed"]
        if not todo:
            break
        if attempt == 2:
            print(f"[shards] resubmitting failed shard(s) {todo} once; they resume their parts", file=sys.stderr)
        if sequential:
            for k in todo:
                jobs[k] = executor.submit(run_part, run_argv, k, opts.shards, parts[k])
                watch({k: jobs[k]})
        else:
            with executor.batch():
                submitted = {k: executor.submit(run_part, run_argv, k, opts.shards, parts[k]) for k in todo}
            if not opts.wait:
                print(
                    f"submitted {len(todo)} job(s) ({', '.join(j.job_id for j in submitted.values())}); "
                    f"merge when they finish:\n  python -m bench merge {folder} --out results/{run_id}.csv"
                )
                return 0
            jobs.update(submitted)
            watch(jobs)
    failed = [k for k in parts if state_of(jobs[k]) == "failed"]
    for k in failed:
        print(f"[shards] shard {k} failed twice: {jobs[k].exception()}", file=sys.stderr)
    rows, missing = merge_parts([folder], Path("results") / f"{run_id}.csv", allow_missing=True)
    print(f"merged {rows} rows into results/{run_id}.csv ({len(missing)} case(s) missing)")
    return 1 if failed or missing else 0
