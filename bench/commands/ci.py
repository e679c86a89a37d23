"""``bench ci``: the regression gate behind ``nox -s bench_ci``.

Measures this tree against the committed baseline, or against a git ref in the same
job (``bench.execution.gate``: time side by side, or instruction counts under callgrind),
then gives ``bench compare``'s verdict, which fails the job on a regression.
``python -m bench.ci`` is the same command.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench.commands import add_model_path_flag
from bench.execution.gate import DEFAULT_BASELINES, DEFAULT_OUT, DEFAULT_PRESETS, GateOptions
from bench.records.outcomes import METRICS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ci", help="regression gate: the CI suite against a baseline or a git ref")
    p.add_argument("--against", help="git ref to measure side by side (e.g. main, origin/main, HEAD~1)")
    p.add_argument("--baseline", type=Path, help="committed baseline CSV (results/baselines/ci-cpu.csv)")
    p.add_argument("--blocks", type=int, default=20, help="alternating blocks per case and side (20)")
    p.add_argument("--block-s", type=float, default=0.1, help="seconds per block (0.1)")
    p.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="--against: the blocks split over this many rounds of fresh worker processes (5)",
    )
    p.add_argument(
        "--wrap-current",
        default="",
        help="command prefix for the current side, to test the gate itself (e.g. 'taskset -c 0')",
    )
    p.add_argument(
        "--metric",
        choices=METRICS,
        default="time",
        help="gate on time (default) or on instruction counts under callgrind (needs valgrind)",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--preset", help="the preset whose cases the gate measures (ci; ci-instructions for --metric instructions)"
    )
    which.add_argument("--spec", type=Path, help="instead of a preset: a spec TOML (e.g. one naming your model)")
    add_model_path_flag(p)
    p.add_argument("--threshold", help="slowdown that counts (5%% for time, 1%% for instruction counts)")
    p.add_argument(
        "--percentile", default="p99", help="stream cases (--mode stream) are judged on this percentile (p99)"
    )
    p.add_argument("--out", type=Path, help="output folder (reports/ci)")
    p.add_argument("--refresh-baseline", action="store_true", help="measure and write --baseline, no compare")


def options_of(args: argparse.Namespace) -> GateOptions:
    """The flags with the metric's defaults filled in (``args`` is left as parsed)."""
    return GateOptions(
        metric=args.metric,
        against=args.against,
        baseline=args.baseline or DEFAULT_BASELINES[args.metric],
        preset=args.preset or DEFAULT_PRESETS[args.metric],
        spec=args.spec.resolve() if args.spec is not None else None,  # both sides run in other folders
        blocks=args.blocks,
        block_s=args.block_s,
        rounds=args.rounds,
        wrap_current=args.wrap_current,
        out=args.out or DEFAULT_OUT,
    )


def run(args: argparse.Namespace) -> int:
    from bench.analysis.compare import parse_percentile, parse_threshold
    from bench.execution.gate import measure_sides, refresh_baseline

    threshold = parse_threshold(args.threshold) if args.threshold is not None else None
    percentile = parse_percentile(args.percentile)
    options = options_of(args)
    options.check()
    if args.refresh_baseline:
        print(f"baseline: {refresh_baseline(options)}")
        return 0
    sides = measure_sides(options)
    # Measured together here, only the code differs: a change of environment is moot.
    out = options.out.resolve() / "compare"
    return verdict(sides.baseline, sides.current, out, threshold, sides.same_job, percentile)


def verdict(
    baseline: Path,
    current: Path,
    out: Path,
    threshold: float | None,
    allow_env_change: bool,
    percentile: str = "p99",
) -> int:
    """``bench compare --fail-on-regression``, its summary also in the GitHub job summary."""
    from bench.analysis.compare import CompareConfig
    from bench.report.compare_page import show, write_comparison

    found = write_comparison(baseline, current, CompareConfig(threshold, percentile=percentile), out, allow_env_change)
    show(found, out)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:  # compare.md without its plot
        with open(summary, "a", encoding="utf-8") as f:
            f.write((out / "summary.md").read_text(encoding="utf-8") + "\n")
    return 1 if found.regressions else 0
