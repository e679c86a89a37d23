"""Report tables: every case, the noisy and failed ones, and the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from bench.errors import UsageError
from bench.report.document import Blocks, Heading, Link, Paragraph, Table
from bench.results import PROVENANCE_COLUMNS
from bench.spec import AXES, Case


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
    # Sorted by the axes' values, so batch sizes read 1, 8, 32, 128 (not b1, b128, b32, b8).
    for _, r in df.sort_values(["machine", *(a.name for a in AXES)]).iterrows():
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


PIVOT_TITLE = "Variants side by side"
SHAPE = ("machine", "model", "mode", "num_layers", "bidirectional", "lengths", "threads", "batch_size", "seq_len")


def variant_label(row: pd.Series) -> str:
    return row["varlen"] if row["impl"] == "module" else f"{row['varlen']} {row['impl']}"


def pivot(df: pd.DataFrame) -> Blocks:
    """One row per shape, one column per variant (varlen and impl), like torch.utils.benchmark's
    Compare: each cell the median step time with its CI and its ratio to the row's fastest."""
    rows = df[(df["status"] == "ok") & (df["metric"] == "time")]
    rows = rows[(rows["dtype"] == "float32") & (rows["backend"] == "default") & (rows["tf32"] == "off")]
    rows = rows.assign(variant=rows.apply(variant_label, axis=1))
    if rows.empty or rows["variant"].nunique() < 2:
        return []
    order = [v for v in ("padded", "packed", "exact") if v in set(rows["variant"])]
    order += sorted(set(rows["variant"]) - set(order))
    table, shades = [], []
    for shape, g in rows.groupby(list(SHAPE), sort=True):  # numeric sort: batch 1, 8, 32, 128
        if g["variant"].nunique() < 2:
            continue
        best = g["median_ms"].min()
        ratios = dict(zip(g["variant"], g["median_ms"] / best, strict=True))
        cells = {}
        for _, r in g.iterrows():
            half = (r["ci_high_ms"] - r["ci_low_ms"]) / 2 / r["median_ms"]
            mark = "best" if r["median_ms"] == best else f"{r['median_ms'] / best:.2f}×"
            cells[r["variant"]] = f"{r['median_ms']:.3g} ±{half:.0%} ({mark})"
        values = dict(zip(SHAPE, shape, strict=True))
        label = (
            f"{values['model']} {values['mode']} b{values['batch_size']} L{values['seq_len']} "
            f"{values['num_layers']}×{'bi' if values['bidirectional'] else 'uni'} {values['lengths']} "
            f"t{values['threads']}"
        )
        table.append([label, values["machine"], *(cells.get(v, "") for v in order)])
        shades.append([None, None, *(ratios.get(v) for v in order)])
    if not table:
        return []
    return [
        Heading(PIVOT_TITLE),
        Paragraph(
            "Median step time in ms, ±half its 95% CI, and its ratio to the fastest variant of the row "
            "(float32, default kernels); in the HTML the best cell is blue and slower ones shade to red at 2× and "
            "beyond. Rows are shapes, sorted by their values; empty cells were not run."
        ),
        Table(["shape", "machine", *order], table, shade=shades),
    ]
