"""Report tables: every case, the noisy and failed ones, and the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from bench.core.cases import AXES, Case
from bench.core.errors import UsageError
from bench.records.rows import PROVENANCE_COLUMNS
from bench.report.answers import is_right
from bench.report.document import Blocks, Heading, Link, Paragraph, Table
from bench.report.slices import EXACT_TOL


def _num(value: float, fmt: str) -> str:
    return "" if pd.isna(value) else format(value, fmt)


FOLD_ROWS = 12  # a table longer than this is folded away (<details>) under its summary line


def axis_columns(df: pd.DataFrame) -> list[str]:
    """The axes that tell these rows apart (a case id split into readable columns): the model,
    and every other axis with more than one value here."""
    return ["model", *(a.name for a in AXES if a.name != "model" and df[a.name].nunique() > 1)]


def _axis_cells(r: pd.Series, axes: list[str]) -> list[str]:
    return [("bi" if r[a] else "uni") if a == "bidirectional" else str(r[a]) for a in axes]


def _fold(n: int, what: str) -> str:
    return f"{n} {what} (click to show)" if n > FOLD_ROWS else ""


def summary(df: pd.DataFrame) -> Blocks:
    axes = axis_columns(df)
    header = [
        *axes,
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
                *_axis_cells(r, axes),
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
    # Columns with one value in every row (the machine, "ok", an empty compile_s) say it once, above.
    fixed = {a.name: str(df.iloc[0][a.name]) for a in AXES if a.name not in axes}
    keep = []
    for k, name in enumerate(header):
        values = {row[k] for row in rows}
        if k >= len(axes) and len(values) == 1 and name not in ("median_ms", "95% CI ms", "note"):
            if values != {""}:
                fixed[name] = values.pop()
            continue
        keep.append(k)
    header = [header[k] for k in keep]
    rows = [[row[k] for k in keep] for row in rows]
    text = "Every row of the run; the same in all rows: " + ", ".join(f"{a}={v}" for a, v in fixed.items()) + "."
    return [Heading("Every case"), Paragraph(text), Table(header, rows, sortable=True, fold=_fold(len(rows), "cases"))]


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
    axes = axis_columns(df)
    if not noisy.empty:
        half = (noisy["ci_high_ms"] - noisy["ci_low_ms"]) / 2 / noisy["median_ms"]
        blocks.append(
            Paragraph(
                f"{len(noisy)} case(s) did not reach the CI target within their time budget (their 95% CI "
                f"±{half.min():.1%} to ±{half.max():.1%} of the median):"
            )
        )
        machine = ["machine"] if df["machine"].nunique() > 1 else []
        rows = [[*_axis_cells(r, axes), *(r[m] for m in machine), r["note"]] for _, r in noisy.iterrows()]
        fold = _fold(len(rows), "noisy cases")
        blocks.append(Table([*axes, *machine, "note"], rows, sortable=True, fold=fold, wrap=True))
    if not failed.empty:
        blocks.append(Paragraph(f"{len(failed)} case(s) failed:"))
        rows = [[*_axis_cells(r, axes), r["machine"], r["status"], r["error"]] for _, r in failed.iterrows()]
        blocks.append(Table([*axes, "machine", "status", "error"], rows, fold=_fold(len(rows), "failed cases")))
    return blocks


ENV_COLUMNS = [
    "machine",
    "source",
    *(c for c in PROVENANCE_COLUMNS if c not in ("timestamp", "schema_version")),
    "threads",
]


def environment(df: pd.DataFrame) -> Blocks:
    """One column per results file, one row per fact: narrow enough to read without scrolling."""
    cols = [c for c in ENV_COLUMNS if c in df.columns and c != "source"]
    runs = []
    for source, g in df.groupby("source", sort=True):
        facts = {c: ", ".join(sorted({str(v) for v in g[c]})) for c in cols}
        facts["first row"], facts["last row"] = str(g["timestamp"].min()), str(g["timestamp"].max())
        runs.append((source, facts))
    names = [*cols, "first row", "last row"]
    rows = [[name, *(facts[name] for _, facts in runs)] for name in names]
    rows = [row for row in rows if any(row[1:])]  # a fact no run recorded (no GPU: no cuda_version)
    return [Heading("Environment"), Table(["", *(source for source, _ in runs)], rows, wrap=True)]


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
    Compare: each cell the median step time with its CI and its ratio to the row's fastest *right*
    variant. Shapes run with the same variants share a table, so no table is mostly empty."""
    rows = df[(df["status"] == "ok") & (df["metric"] == "time")]
    rows = rows[(rows["dtype"] == "float32") & (rows["backend"] == "default") & (rows["tf32"] == "off")]
    rows = rows.assign(variant=rows.apply(variant_label, axis=1), right=is_right(rows))
    if rows.empty or rows["variant"].nunique() < 2:
        return []
    # Module variants first, then each implementation's padded, packed, exact.
    impls = ("", "compiled", "cells", "onnxruntime", "cudagraph", "quantized")
    known = [f"{v} {impl}".strip() for impl in impls for v in ("padded", "packed", "exact")]
    order = [v for v in known if v in set(rows["variant"])]
    order += sorted(set(rows["variant"]) - set(order))
    machines = rows["machine"].nunique() > 1
    by_set: dict[tuple[str, ...], tuple[list[list[str]], list[list[float | None]]]] = {}
    for shape, g in rows.groupby(list(SHAPE), sort=True):  # numeric sort: batch 1, 8, 32, 128
        if g["variant"].nunique() < 2:
            continue
        right = g[g["right"]]
        best = right["median_ms"].min() if not right.empty else None
        cells, ratios = {}, {}
        for _, r in g.iterrows():
            half = (r["ci_high_ms"] - r["ci_low_ms"]) / 2 / r["median_ms"]
            if best is not None and r["right"]:  # a wrong cell is never shaded as the best
                ratios[r["variant"]] = r["median_ms"] / best
            if not r["right"]:
                mark = "wrong outputs" if r["max_abs_err"] >= EXACT_TOL else "wrong final states"
            else:
                mark = "best" if r["median_ms"] == best else f"{r['median_ms'] / best:.2f}×"
            noisy = ", noisy" if str(r["note"]).startswith("noisy") else ""
            cells[r["variant"]] = f"{r['median_ms']:.3g} ±{half:.0%} ({mark}{noisy})"
        values = dict(zip(SHAPE, shape, strict=True))
        label = (
            f"{values['model']} {values['mode']} b{values['batch_size']} L{values['seq_len']} "
            f"{values['num_layers']}×{'bi' if values['bidirectional'] else 'uni'} {values['lengths']} "
            f"t{values['threads']}"
        )
        present = tuple(v for v in order if v in cells)
        table, shades = by_set.setdefault(present, ([], []))
        table.append([label, *([values["machine"]] if machines else []), *(cells[v] for v in present)])
        shades.append([None, *([None] if machines else []), *(ratios.get(v) for v in present)])
    if not by_set:
        return []
    blocks: Blocks = [
        Heading(PIVOT_TITLE),
        Paragraph(
            "Median step time in ms, ±half its 95% CI, and its ratio to the fastest right variant of the row "
            "(float32, default kernels). A variant whose outputs or final states differ from packing is marked "
            "wrong and is never the best; in the HTML the best cell is blue and slower ones shade to red at 2× "
            "and beyond. Shapes run with the same variants share a table; rows are sorted by their values."
        ),
    ]
    lead = 2 if machines else 1
    for present, (table, shades) in sorted(by_set.items(), key=lambda kv: (-len(kv[0]), kv[0])):
        fold = _fold(len(table), "shapes with " + ", ".join(present))
        # More than 5 variants: a table per group of 3 columns, each ratio still to the row's best.
        for start in range(0, len(present), 3 if len(present) > 5 else len(present)):
            cols = list(range(lead)) + [lead + k for k in range(start, min(start + 3, len(present)))]
            if len(present) <= 5:
                cols = list(range(lead + len(present)))
            header = ["shape", *(["machine"] if machines else []), *present]
            blocks.append(
                Table(
                    [header[c] for c in cols],
                    [[row[c] for c in cols] for row in table],
                    shade=[[tone[c] for c in cols] for tone in shades],
                    fold=fold,
                )
            )
    return blocks
