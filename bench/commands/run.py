"""``bench run``: turn the flags into ``SweepOptions``, then measure (or launch shards)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bench.commands import add_model_path_flag
from bench.core.cases import INPUT_AXES
from bench.core.errors import UsageError
from bench.core.spec import Spec, load_spec, preset_names, with_overrides, with_timer_flags
from bench.records.outcomes import METRICS

if TYPE_CHECKING:
    from bench.execution.runner import SweepOptions

RESULTS_DIR = Path("results")
EXIT_INTERRUPTED = 130


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a sweep and write results/<run_id>.csv")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", help=f"a preset name ({', '.join(preset_names())})")
    src.add_argument("--spec", help="a spec TOML file")
    for axis in INPUT_AXES:
        p.add_argument(axis.flag, dest=axis.name, metavar="V[,V...]", help=axis.describe())
    p.add_argument("--out", type=Path, help="results CSV (default: results/<run_id>.csv)")
    add_model_path_flag(p)
    p.add_argument("--resume", action="store_true", help="skip cases already in --out and append the rest")
    p.add_argument("--budget-s", type=float, help="sampling time per case (overrides the spec's timer)")
    p.add_argument("--target-ci", type=float, help="target CI half-width as a fraction of the median")
    p.add_argument(
        "--rounds",
        type=int,
        help="fresh processes per case, interleaved over the sweep; the CI is taken across them "
        "(the spec's timer, 3 by default; 1: one process, a quick look whose CI covers that process only)",
    )
    p.add_argument("--list", action="store_true", help="print the case ids and exit without measuring")
    p.add_argument("--isolate", action="store_true", help="run each case in a child process (survives crashes)")
    p.add_argument(
        "--side-by-side",
        action="store_true",
        help="measure cases that differ only in varlen/impl together, in alternating blocks",
    )
    p.add_argument(
        "--metric",
        choices=METRICS,
        default="time",
        help="time each step (default), or count its instructions under valgrind's callgrind (CPU, 1 thread)",
    )
    p.add_argument(
        "--jobs", type=int, default=0, help="--metric instructions: valgrind processes at once (default: one per core)"
    )
    p.add_argument("--shard", help="run only shard K of N (K/N, 1-based) of the cases")
    p.add_argument("--shards", type=int, help="split into N shards and launch them (with --launcher submitit)")
    p.add_argument("--launcher", choices=["submitit"], help="how to launch --shards")
    p.add_argument("--cluster", choices=["auto", "local", "slurm"], default="auto", help="submitit cluster")
    p.add_argument("--partition", help="SLURM partition")
    p.add_argument("--gpus-per-shard", type=int, default=0, help="GPUs per job (local CUDA shards: 1 when not given)")
    p.add_argument("--timeout-min", type=int, default=60, help="job time limit in minutes (a job requeues at it)")
    p.add_argument(
        "--cpus-per-shard", type=int, default=0, help="CPU cores per job (default: the most threads a case uses)"
    )
    p.add_argument("--no-wait", action="store_true", help="submit and exit; merge later with `bench merge`")
    p.add_argument("--parallel-local", action="store_true", help="local shards at once (spoils timings)")


def resolve_spec(args: argparse.Namespace) -> Spec:
    """Spec + axis overrides + timer overrides, checked."""
    spec = load_spec(args.preset, args.spec)
    spec = with_overrides(spec, {a.name: getattr(args, a.name) for a in INPUT_AXES})
    return with_timer_flags(spec, args.budget_s, args.target_ci, args.rounds)


def run(args: argparse.Namespace) -> int:
    from bench.execution.progress import summary_table
    from bench.execution.runner import SweepOptions, plan, prepare_output, run_sweep
    from bench.execution.shard import parse_shard
    from bench.records.files import ledger_path, run_paths
    from bench.records.rows import new_run_id

    if args.jobs < 0:
        raise UsageError(f"--jobs: {args.jobs} must be 0 (one per core) or more")
    options = SweepOptions(
        resolve_spec(args),
        isolate=args.isolate,
        side_by_side=args.side_by_side,
        metric=args.metric,
        count_jobs=args.jobs,
    )
    if args.shards is not None or args.launcher:
        return launch_shards(args, options)
    shard = parse_shard(args.shard) if args.shard else None
    cases, sweep_cases = plan(options, shard)
    if args.list:
        for case in cases:
            print(case.case_id)
        return 0
    suffix = f"-shard{args.shard.replace('/', 'of')}" if args.shard else ""
    run_id = new_run_id()
    out = args.out or RESULTS_DIR / f"{run_id}{suffix}.csv"
    run_id, done = prepare_output(out, args.resume, run_id)
    print(f"{len(cases)} cases from {options.spec.source} -> {out}", file=sys.stderr)
    try:
        outcome = run_sweep(options, cases, out, run_id, done, sweep_cases=sweep_cases)
    except KeyboardInterrupt:
        again = [a for a in args.argv if a != "--resume"] + ([] if "--out" in args.argv else ["--out", str(out)])
        print(
            f"\ninterrupted: every finished case is kept in {out}, every finished round of the others in "
            f"{ledger_path(out).name}; resume with:\n  python -m bench {shlex.join(again)} --resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    summary_table(outcome.rows)
    samples, meta = run_paths(out)
    if outcome.already_done:
        print(f"resumed: {outcome.already_done} cases were already done", file=sys.stderr)
    print(f"results: {out}\nsamples: {samples}\nrun:     {meta}")
    if outcome.failed:
        print(f"{outcome.failed} case(s) failed (oom/error rows in the CSV)", file=sys.stderr)
        return 1
    return 0


def launch_shards(args: argparse.Namespace, options: SweepOptions) -> int:
    """``--shards N --launcher submitit``: the sweep split into jobs, merged when they end."""
    from bench.execution.launch import LaunchOptions, launch

    if args.shards is None or not args.launcher or args.shard:
        raise UsageError("--shards N needs --launcher submitit, and excludes --shard")
    # launch() plans the sweep for the jobs' machines and refuses bad input before any job.
    same = (
        "shards",
        "cluster",
        "partition",
        "gpus_per_shard",
        "timeout_min",
        "cpus_per_shard",
        "parallel_local",
        "out",
    )
    how = LaunchOptions(**{name: getattr(args, name) for name in same}, wait=not args.no_wait)
    return launch(options, how)
