"""``bench merge``: the part files of a sharded run into one results CSV."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("merge", help="merge the part files of a sharded run")
    m.add_argument("parts", nargs="+", type=Path, help="part CSVs or folders of them")
    m.add_argument("--out", type=Path, required=True, help="merged results CSV")


def run(args: argparse.Namespace) -> int:
    from bench.records.merge import merge_parts

    rows, _ = merge_parts(args.parts, args.out)
    print(f"merged {rows} rows into {args.out}")
    return 0
