"""Report tables: every case, the noisy and failed ones, and the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from bench.errors import UsageError
from bench.report.document import Blocks, Heading, Link, Paragraph, Table
from bench.results import PROVENANCE_COLUMNS
from bench.spec import Case


def _num(value: float, fmt: str) -> str:
    return "" if pd.isna(value) else format(value, fmt)


def summary(df: pd.DataFrame) -> Blocks:
    header = [
        "case_id",
        "machine",
        "status",
        "median_ms",
        "95% CI ms",
        "tokens/s",
        "efficiency",
        "max_abs_err",
        "state_max_abs_err",
        "compile_s",
        "note",
    ]
    rows = []
    for _, r in df.sort_values(["machine", "case_id"]).iterrows():
        ci = f"{r['ci_low_ms']:.4g}–{r['ci_high_ms']:.4g}" if r["status"] == "ok" else ""
        rows.append(
            [
                r["case_id"],
                r["machine"],
                r["status"],
                _num(r["median_ms"], ".4g"),
                ci,
                _num(r["tokens_per_s"], ".3g"),
                _num(r["efficiency"], ".1%"),
                _num(r["max_abs_err"], ".2g"),
                _num(r["state_max_abs_err"], ".2g"),
                _num(r["compile_s"], ".2f"),
                r["note"] or r["error"],
            ]
        )
    return [Heading("Every case"), Table(header, rows, sortable=True)]


def problems(df: pd.DataFrame) -> Blocks:
    blocks: Blocks = [Heading("Noisy and failed cases")]
    noisy = df[(df["status"] == "ok") & df["note"].str.startswith("noisy")]
    untargeted = df[(df["status"] == "ok") & df["note"].str.startswith("no precision target")]
    failed = df[df["status"] != "ok"]
    if not untargeted.empty:
        blocks.append(
            Paragraph(
                f"{len(untargeted)} case(s) were sampled on a fixed schedule (blocks against another tree), "
                "with no precision target to reach."
            )
        )
    if noisy.empty and failed.empty:
        timed = df["metric"] == "time"
        if not timed.any():  # instruction counts: no precision target to reach
            which = "Every case was counted"
        elif not untargeted.empty or not timed.all():
            which = "Every timed case with a precision target reached it"
        else:
            which = "Every case reached its precision target"
        return [*blocks, Paragraph(f"{which}; none failed.")]
    if not noisy.empty:
        blocks.append(Paragraph(f"{len(noisy)} case(s) did not reach the CI target within their time budget:"))
        blocks.append(Table(["case_id", "machine", "note"], noisy[["case_id", "machine", "note"]].values.tolist()))
    if not failed.empty:
        blocks.append(Paragraph(f"{len(failed)} case(s) failed:"))
        blocks.append(
            Table(
                ["case_id", "machine", "status", "error"],
                failed[["case_id", "machine", "status", "error"]].values.tolist(),
            )
        )
    return blocks


ENV_COLUMNS = [
    "machine",
    "source",
    *(c for c in PROVENANCE_COLUMNS if c not in ("timestamp", "schema_version")),
    "threads",
]


def environment(df: pd.DataFrame) -> Blocks:
    cols = [c for c in ENV_COLUMNS if c in df.columns]
    env = (
        df.groupby(["machine", "source"], sort=True)
        .agg({c: (lambda s: ", ".join(sorted({str(v) for v in s}))) for c in cols if c not in ("machine", "source")})
        .reset_index()
    )
    dates = df.groupby(["machine", "source"])["timestamp"].agg(["min", "max"]).reset_index()
    env = env.merge(dates, on=["machine", "source"])
    header = [*cols, "first row", "last row"]
    return [Heading("Environment"), Table(header, env[[*cols, "min", "max"]].astype(str).values.tolist())]


def profiles(df: pd.DataFrame, profiles_dir: Path, report_dir: Path) -> Blocks:
    """Links to ``bench profile`` output for cases of this report that have one."""
    links = []
    for case_id in sorted(df["case_id"].unique()):
        try:
            Case.from_id(case_id)  # only real case ids become paths: no ../ from a CSV
        except UsageError:
            continue
        index = profiles_dir / case_id / "index.md"
        if index.is_file():
            links.append(Link(case_id, os.path.relpath(index, report_dir), "flame graph and operator table"))
    if not links:
        return []
    return [Heading("Profiles"), Paragraph("Cases of this report profiled with `python -m bench profile`:"), *links]
