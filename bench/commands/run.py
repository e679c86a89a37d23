"""``bench run``: validate the sweep, then measure it."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

import torch

from bench.errors import UsageError
from bench.results import run_paths
from bench.runner import new_run_id, prepare_output, run_sweep
from bench.shard import parse_shard, shard_cases
from bench.spec import INPUT_AXES, Case, Spec, expand, load_spec, with_overrides
from bench.workload import dtype_supported

RESULTS_DIR = Path("results")


def resolve(args: argparse.Namespace) -> tuple[Spec, list[Case]]:
    """Spec + overrides + grid, every check done before anything runs."""
    spec = load_spec(args.preset, args.spec)
    spec = with_overrides(spec, {a.name: getattr(args, a.name) for a in INPUT_AXES})
    timer = spec.timer
    if args.budget_s is not None:
        if not args.budget_s > 0:
            raise UsageError(f"--budget-s: {args.budget_s} must be positive")
        timer = dataclasses.replace(timer, budget_s=args.budget_s)
    if args.target_ci is not None:
        if not 0 < args.target_ci < 1:
            raise UsageError(f"--target-ci: {args.target_ci} must be a fraction between 0 and 1")
        timer = dataclasses.replace(timer, target_rel_ci=args.target_ci)
    spec = dataclasses.replace(spec, timer=timer)
    cases = expand(spec, torch.cuda.is_available(), torch.get_num_threads())
    for device, dtype in sorted({(c.device, c.dtype) for c in cases}):
        why = dtype_supported(device, dtype)
        if why:
            raise UsageError(f"--dtype: {dtype} does not run on {device} here ({why})")
    return spec, cases


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    spec, cases = resolve(args)
    sweep_cases = cases
    if args.shards is not None or args.launcher:
        if args.shards is None or not args.launcher or args.shard:
            raise UsageError("--shards N needs --launcher submitit, and excludes --shard")
        from bench.launch import LaunchOptions, launch, strip_launcher_flags

        opts = LaunchOptions(
            args.shards,
            args.cluster,
            args.partition,
            args.gpus_per_shard,
            args.timeout_min,
            not args.no_wait,
            args.parallel_local,
        )
        return launch(strip_launcher_flags(argv[1:]), opts)
    if args.shard:
        k, n = parse_shard(args.shard)
        cases = shard_cases(cases, k, n)
    if args.side_by_side and args.isolate:
        raise UsageError("--side-by-side and --isolate exclude each other (variants share one process)")
    if args.list:
        for case in cases:
            print(case.case_id)
        return 0
    run_id = new_run_id()
    suffix = f"-shard{args.shard.replace('/', 'of')}" if args.shard else ""
    out = args.out or RESULTS_DIR / f"{run_id}{suffix}.csv"
    run_id, done = prepare_output(out, args.resume, run_id)
    print(f"{len(cases)} cases from {spec.source} -> {out}", file=sys.stderr)
    try:
        outcome = run_sweep(
            cases,
            spec,
            out,
            run_id,
            done,
            isolate=args.isolate,
            sweep_cases=sweep_cases,
            side_by_side=args.side_by_side,
        )
    except KeyboardInterrupt:
        again = [a for a in argv if a not in ("--resume",)]
        if "--out" not in again:
            again += ["--out", str(out)]
        print(
            f"\ninterrupted: every finished case is kept in {out}; resume with:\n"
            f"  python -m bench {shlex.join(again)} --resume",
            file=sys.stderr,
        )
        return 130
    from bench.progress import summary_table

    summary_table(outcome.rows)
    samples, meta = run_paths(out)
    if outcome.skipped_done:
        print(f"resumed: {outcome.skipped_done} cases were already done", file=sys.stderr)
    print(f"results: {out}\nsamples: {samples}\nrun:     {meta}")
    if outcome.failed:
        print(f"{outcome.failed} case(s) failed (oom/error rows in the CSV)", file=sys.stderr)
        return 1
    return 0
