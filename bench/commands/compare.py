"""``bench compare``: regression verdicts between two runs (the page: ``bench.report.compare_page``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.core.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("compare", help="regression verdicts between two runs")
    c.add_argument("baseline", type=Path, help="baseline results CSV")
    c.add_argument("current", type=Path, help="current results CSV")
    c.add_argument(
        "--threshold", help="change that counts, e.g. 5%% or 0.1 (default: 5%% for time, 1%% for instruction counts)"
    )
    c.add_argument("--alpha", type=float, default=0.01, help="significance level of the test (0.01)")
    c.add_argument(
        "--percentile",
        default="p99",
        help="what stream cases (--mode stream) are judged on: p50, p90, p99 or p99.9 of their calls (p99)",
    )
    c.add_argument("--fail-on-regression", action="store_true", help="exit 1 when a case regressed")
    c.add_argument("--allow-env-change", action="store_true", help="compare runs from different environments")
    c.add_argument("--out", type=Path, help="output folder (default: reports/compare/<base>--<current>/)")


def run(args: argparse.Namespace) -> int:
    from bench.analysis.compare import CompareConfig, parse_percentile, parse_threshold
    from bench.report.compare_page import default_out, show, write_comparison

    if not 0 < args.alpha < 1:
        raise UsageError(f"--alpha: {args.alpha} must be between 0 and 1")
    threshold = parse_threshold(args.threshold) if args.threshold is not None else None
    percentile = parse_percentile(args.percentile)
    out = args.out or default_out(args.baseline, args.current)
    config = CompareConfig(threshold, args.alpha, percentile=percentile)
    found = write_comparison(args.baseline, args.current, config, out, args.allow_env_change)
    show(found, out)
    return 1 if found.regressions and args.fail_on_regression else 0
