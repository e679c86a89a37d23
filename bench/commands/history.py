"""``bench history``: trends across runs and the steps in them (the page: ``bench.report.history_page``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    h = sub.add_parser("history", help="trends across runs and the steps in them")
    h.add_argument("runs", nargs="+", type=Path, help="run CSVs or folders of them")
    h.add_argument("--out", type=Path, help="output folder (default: reports/history/)")
    h.add_argument("--threshold", default="5%", help="smallest step in time that counts (5%%)")
    h.add_argument("--count-threshold", default="1%", help="smallest step in instruction counts that counts (1%%)")
    h.add_argument(
        "--fail-on-regression", action="store_true", help="exit 1 if the newest runs brought a regression step"
    )


def run(args: argparse.Namespace) -> int:
    from bench.analysis.compare import parse_threshold
    from bench.analysis.history import HistoryConfig, analyse, collect, recent_regressions
    from bench.report.history_page import write_history

    config = HistoryConfig(
        threshold=parse_threshold(args.threshold), count_threshold=parse_threshold(args.count_threshold)
    )
    df = collect(args.runs)
    steps, drift = analyse(df, config)
    out: Path = args.out or Path("reports") / "history"
    write_history(df, steps, drift, config, out)
    print(f"{len(steps)} step(s); newest first in {out / 'history.md'}")
    print(f"history: {out / 'history.html'}\nsteps:   {out / 'steps.csv'}")
    recent = recent_regressions(df, steps, config)
    if args.fail_on_regression and not recent.empty:
        print(f"{len(recent)} regression step(s) in the newest {config.recent_runs} runs")
        return 1
    return 0
