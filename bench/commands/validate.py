"""``bench validate``: the timer against torch.utils.benchmark (``bench.measure.validation``), or
with ``--calibration`` the CIs against a rerun (``bench.analysis.calibration``)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from bench.core.errors import UsageError
from bench.core.spec import load_spec, with_timer_flags

AGREEMENT = 0.90  # below this share of reruns inside the combined CI, the CIs promise more than they keep
CALIBRATION_ONLY = ("preset", "spec", "runs", "rounds", "budget_s", "out")


def add_parser(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser(
        "validate", help="check the timer against torch.utils.benchmark, or (--calibration) the CIs against a rerun"
    )
    v.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    v.add_argument(
        "--calibration",
        action="store_true",
        help="run the same sweep twice and report how often the two medians agree within their combined 95%% CI",
    )
    calib = v.add_mutually_exclusive_group()
    calib.add_argument("--preset", help="--calibration: the sweep to run twice (default: quick)")
    calib.add_argument("--spec", help="--calibration: a spec TOML to run twice")
    calib.add_argument(
        "--runs", nargs=2, type=Path, metavar="CSV", help="--calibration: check two existing runs instead"
    )
    v.add_argument("--rounds", type=int, help="--calibration: rounds per case (default: the spec's)")
    v.add_argument("--budget-s", type=float, help="--calibration: sampling time per case")
    v.add_argument("--out", type=Path, help="--calibration: folder for the two runs (results/calibration-<time>)")


def run(args: argparse.Namespace) -> int:
    if args.calibration:
        return calibrate(args)
    given = [f for f in CALIBRATION_ONLY if getattr(args, f) is not None]
    if given:
        raise UsageError(f"--{given[0].replace('_', '-')} goes with --calibration")
    return validate_timer(args.device)


def validate_timer(device: str) -> int:
    import torch

    from bench.measure.validation import AGREEMENT as TIMER_AGREEMENT
    from bench.measure.validation import ROUNDS, compare_case, timer_overhead_us, validation_cases

    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device: 'cuda' was asked for but torch.cuda.is_available() is False here")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if device == "auto" else [device]
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads")
    print(f"ratio: the median over {ROUNDS} ABBA rounds of suite/torch block medians (paired, so drift cancels);")
    print("suite ms / torch ms: all samples pooled, for reference")
    worst = 0.0
    for dev in devices:
        print(f"\n{dev}: per-sample timer overhead {timer_overhead_us(dev == 'cuda'):.2f} µs")
        print(f"{'case':<80} {'suite ms':>9} {'torch ms':>9} {'ratio':>6} {'suite s':>8} {'torch s':>8}")
        for case in validation_cases(dev, threads):
            ours, ref, ratio, ours_s, ref_s = compare_case(case)
            worst = max(worst, abs(ratio - 1))
            print(f"{case.case_id:<80} {ours:9.3f} {ref:9.3f} {ratio:6.3f} {ours_s:8.2f} {ref_s:8.2f}")
    agree = worst <= TIMER_AGREEMENT
    verdict = "agree" if agree else "DISAGREE"
    print(f"\nworst |ratio - 1| = {worst:.1%}: the two timers {verdict} (limit {TIMER_AGREEMENT:.0%})")
    return 0 if agree else 1


def calibrate(args: argparse.Namespace) -> int:
    """Run the sweep twice (or take ``--runs``): how often does a rerun land inside the combined CI?"""
    from bench.analysis.calibration import calibration
    from bench.records.reading import read_results

    if args.runs:
        first, second = args.runs
    else:
        from bench.execution.rerun import measure_twice

        spec = load_spec(args.preset or (None if args.spec else "quick"), args.spec)
        spec = with_timer_flags(spec, args.budget_s, None, args.rounds)
        folder = args.out or Path("results") / f"calibration-{dt.datetime.now():%Y%m%d-%H%M%S}"
        first, second = measure_twice(spec, folder)
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
