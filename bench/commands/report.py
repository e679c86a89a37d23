"""``bench report``: plots and a Markdown + HTML report from results CSVs."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("report", help="plots and a Markdown + HTML report from result CSVs")
    r.add_argument("csv", nargs="+", type=Path, help="results CSV files")
    r.add_argument("--out", type=Path, help="output folder (default: reports/<first CSV's name>/)")


def run(args: argparse.Namespace) -> int:
    from bench.report import build_report

    md, page = build_report(args.csv, args.out or Path("reports") / args.csv[0].stem)
    print(f"report: {page}\nreport: {md}")
    return 0
