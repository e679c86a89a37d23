"""``bench validate --calibration``: do the CIs keep their promise on this machine?

Runs the same sweep twice, one after the other, each exactly as ``bench run``
would (rounds included), then reports the share of cases whose two medians differ
by less than their combined 95% interval (``bench.calibration``; ideal 95%). With
``--runs A.csv B.csv`` it checks two runs already made instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from bench.calibration import calibration
from bench.errors import UsageError
from bench.results import new_run_id, read_results

AGREEMENT = 0.90  # below this share, the machine's CIs promise more than they keep


def cmd_calibrate(args: argparse.Namespace) -> int:
    if args.runs:
        first, second = args.runs
    else:
        first, second = measure_twice(args)
    result = calibration(read_results(first), read_results(second))
    if result.cases == 0:
        raise UsageError(f"{first.name} and {second.name} share no case measured ok in time")
    print(f"calibration of {first} against {second}:")
    for line in result.lines():
        print(f"  {line}")
    if not result.worst.empty:
        print("  furthest outside (change between the runs, combined 95% CI):")
        for r in result.worst.head(5).itertuples():
            print(f"    {r.case_id}: {r.change:.1%} against ±{r.combined:.1%}")
    honest = result.share_inside >= AGREEMENT
    print(f"the CIs {'keep' if honest else 'do NOT keep'} their promise here (at least {AGREEMENT:.0%} wanted)")
    return 0 if honest else 1


def measure_twice(args: argparse.Namespace) -> tuple[Path, Path]:
    """The sweep run twice into a fresh folder; (first CSV, second CSV)."""
    import torch  # the measuring side only: --runs needs no torch

    from bench.commands.run import with_timer_flags
    from bench.runner import SweepOptions, plan, prepare_output, run_sweep
    from bench.spec import load_spec

    spec = load_spec(args.preset or (None if args.spec else "quick"), args.spec)
    spec = with_timer_flags(spec, args.budget_s, None, args.rounds)
    timer = spec.timer
    options = SweepOptions(spec)
    cases, _ = plan(options)
    folder = args.out or Path("results") / f"calibration-{dt.datetime.now():%Y%m%d-%H%M%S}"
    paths = (folder / "first.csv", folder / "second.csv")
    print(
        f"{len(cases)} cases from {spec.source}, {timer.rounds} round(s) each, run twice into {folder} "
        f"(torch {torch.__version__}, {torch.get_num_threads()} threads)",
        file=sys.stderr,
    )
    for path in paths:
        run_id, done = prepare_output(path, False, new_run_id())
        t0 = time.perf_counter()
        run_sweep(options, cases, path, run_id, done)
        print(f"{path.name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return paths
