"""``bench run``: turn the flags into ``SweepOptions``, then measure (or launch shards)."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

from bench.errors import UsageError
from bench.results import new_run_id, run_paths
from bench.rounds import ledger_path
from bench.runner import SweepOptions, plan, prepare_output, run_sweep
from bench.shard import parse_shard
from bench.spec import INPUT_AXES, Spec, load_spec, with_overrides

RESULTS_DIR = Path("results")
EXIT_INTERRUPTED = 130


def resolve_spec(args: argparse.Namespace) -> Spec:
    """Spec + axis overrides + timer overrides, checked."""
    spec = load_spec(args.preset, args.spec)
    spec = with_overrides(spec, {a.name: getattr(args, a.name) for a in INPUT_AXES})
    return with_timer_flags(spec, args.budget_s, args.target_ci, args.rounds)


def with_timer_flags(spec: Spec, budget_s: float | None, target_ci: float | None, rounds: int | None) -> Spec:
    """The spec with ``--budget-s``, ``--target-ci`` and ``--rounds`` applied, each checked."""
    timer = spec.timer
    if budget_s is not None:
        if not budget_s > 0:
            raise UsageError(f"--budget-s: {budget_s} must be positive")
        timer = dataclasses.replace(timer, budget_s=budget_s)
    if target_ci is not None:
        if not 0 < target_ci < 1:
            raise UsageError(f"--target-ci: {target_ci} must be a fraction between 0 and 1")
        timer = dataclasses.replace(timer, target_rel_ci=target_ci)
    if rounds is not None:
        timer = timer.with_rounds(rounds)
    return dataclasses.replace(spec, timer=timer)


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
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
        if args.shards is None or not args.launcher or args.shard:
            raise UsageError("--shards N needs --launcher submitit, and excludes --shard")
        from bench.launch import LaunchOptions, launch

        plan(options)  # refuse bad input here, not in every job
        launch_opts = LaunchOptions(
            args.shards,
            args.cluster,
            args.partition,
            args.gpus_per_shard,
            args.timeout_min,
            not args.no_wait,
            args.parallel_local,
            args.out,
        )
        return launch(options, launch_opts)
    shard = parse_shard(args.shard) if args.shard else None
    cases, sweep_cases = plan(options, shard)
    if args.list:
        for case in cases:
            print(case.case_id)
        return 0
    run_id = new_run_id()
    suffix = f"-shard{args.shard.replace('/', 'of')}" if args.shard else ""
    out = args.out or RESULTS_DIR / f"{run_id}{suffix}.csv"
    run_id, done = prepare_output(out, args.resume, run_id)
    print(f"{len(cases)} cases from {options.spec.source} -> {out}", file=sys.stderr)
    try:
        outcome = run_sweep(options, cases, out, run_id, done, sweep_cases=sweep_cases)
    except KeyboardInterrupt:
        again = [a for a in argv if a not in ("--resume",)]
        if "--out" not in again:
            again += ["--out", str(out)]
        print(
            f"\ninterrupted: every finished case is kept in {out}, every finished round of the others in "
            f"{ledger_path(out).name}; resume with:\n"
            f"  python -m bench {shlex.join(again)} --resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    from bench.progress import summary_table

    summary_table(outcome.rows)
    samples, meta = run_paths(out)
    if outcome.already_done:
        print(f"resumed: {outcome.already_done} cases were already done", file=sys.stderr)
    print(f"results: {out}\nsamples: {samples}\nrun:     {meta}")
    if outcome.failed:
        print(f"{outcome.failed} case(s) failed (oom/error rows in the CSV)", file=sys.stderr)
        return 1
    return 0
