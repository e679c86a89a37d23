"""Report section on implementation variants: exact padding, torch.compile, the cell loop, other runtimes.

Every variant is timed against the packed ``module`` run of the same case (the
exact reference), and shown with its recorded error against that reference, so
a reader sees at once which fast paths are also right.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

from bench.report.answers import IMPLEMENTATIONS, answer, compile_text
from bench.report.document import Blocks, Heading, Image, Paragraph, Table
from bench.report.plotting import RATIO_TICKS, new_figure, ratio_colorbar, ratio_heatmap, ratio_norm, save
from bench.report.slices import AXIS_NAMES, EXACT_TOL, missing_note, ok_rows, pairs, typical

IMPL_ORDER = ("module", "compiled", "cells", "onnxruntime", "cudagraph", "quantized")
VARIANT_ORDER = [f"{impl}·{varlen}" for impl in IMPL_ORDER for varlen in ("padded", "packed", "exact")]


def against_reference(df: pd.DataFrame) -> pd.DataFrame:
    """Each ok row joined to the packed ``module`` row of its case: ``ratio`` and ``err``."""
    rows = ok_rows(df).assign(variant=lambda d: d["impl"] + "·" + d["varlen"])
    ref = rows[(rows["impl"] == "module") & (rows["varlen"] == "packed")]
    on = [c for c in AXIS_NAMES if c not in ("impl", "varlen")] + ["machine"]
    joined = rows.merge(ref[[*on, "median_ms"]], on=on, suffixes=("", "_ref"))
    joined = joined[joined["variant"] != "module·packed"]
    errors = joined[["max_abs_err", "state_max_abs_err"]]
    return joined.assign(ratio=joined["median_ms"] / joined["median_ms_ref"], err=errors.max(axis=1, skipna=True))


def implementations(df: pd.DataFrame, folder: Path) -> Blocks:
    title = IMPLEMENTATIONS
    j = against_reference(df)
    if j.empty:
        how = "--varlen padded,packed,exact --impl module,compiled,cells"
        said = _sentence(df, j).removesuffix(" Hollow markers: results that differ from packing.").strip()
        # The findings' exact-padding and compile rows link here: their numbers are said even without a plot.
        return [
            Heading(title),
            *([Paragraph(said)] if said else []),
            Paragraph(missing_note("variants beside packed module runs of the same cases", how)),
        ]
    variants = [v for v in VARIANT_ORDER if v in set(j["variant"])]
    fig, axes = new_figure(height=3.4)
    ax = axes[0][0]
    rng = np.random.default_rng(0)  # fixed jitter: the same CSV gives the same picture
    markers = {model: m for model, m in zip(sorted(j["model"].unique()), "os^v", strict=False)}
    for k, variant in enumerate(variants):
        g = j[j["variant"] == variant]
        x = k + rng.uniform(-0.2, 0.2, len(g))
        for model, marker in markers.items():
            # Correctness is the fill (filled: right, hollow: wrong), never a colour: red and
            # blue mean slower and faster in the report's ratio plots.
            for right in (True, False):
                pick = ((g["model"] == model) & ((g["err"] < EXACT_TOL) == right)).to_numpy()
                face = "0.25" if right else "none"
                ax.scatter(x[pick], g["ratio"][pick], s=18, marker=marker, facecolors=face, edgecolors="0.25")
        worst = g["err"].max()
        ax.annotate(
            f"err ≤ {worst:.0e}" if np.isfinite(worst) else "err n/a",
            (k, 1),
            xycoords=("data", "axes fraction"),
            ha="center",
            va="bottom",
            fontsize=9,
            fontweight="normal" if worst < EXACT_TOL else "bold",
        )
    ax.axhline(1, color="k", lw=0.8)
    ax.set_yscale("log")
    # Labels on the report's ratio ticks only: minor labels at 0.8, 0.9, 1 ran into each other.
    ax.yaxis.set_major_locator(FixedLocator(RATIO_TICKS))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.2g"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(range(len(variants)), variants, rotation=20)
    ax.set_ylabel("time / packed module time")
    handles = [Line2D([], [], ls="", marker=m, color="0.25", label=model) for model, m in markers.items()]
    handles += [
        Line2D([], [], ls="", marker="o", color="0.25", label=f"filled: right (err < {EXACT_TOL:g})"),
        Line2D([], [], ls="", marker="o", markerfacecolor="none", color="0.25", label="hollow: wrong"),
    ]
    ax.legend(handles=handles, loc="lower right", ncols=2)
    file = save(fig, folder, "implementations", "Which way of feeding variable lengths is fastest, and right?")
    blocks: Blocks = [Heading(title), Paragraph(_sentence(df, j)), Image(file, title)]
    blocks += _exact_grid(df, folder)
    blocks.append(_table(j))
    return blocks


def _sentence(df: pd.DataFrame, j: pd.DataFrame) -> str:
    parts = []
    exact = answer(df, "exact")
    if exact.found:
        parts.append(exact.sentence())
    padded = j[j["variant"] == "module·padded"]
    if not padded.empty:
        outputs_off = padded["max_abs_err"] >= EXACT_TOL
        states_only = ~outputs_off & (padded["state_max_abs_err"] >= EXACT_TOL)
        parts.append(
            f"Plain padding takes a median {padded['ratio'].median():.2f}× of the packed time; of its "
            f"{len(padded)} cases, {int(outputs_off.sum())} give wrong outputs at valid positions (up to "
            f"{padded['max_abs_err'].max():.2g}) and {int(states_only.sum())} more give right outputs but final "
            f"states taken after the padding (off by up to {padded['state_max_abs_err'].max():.2g})."
        )
    compiled = answer(df, "compile")
    if compiled.found:
        parts.append(f"{compiled.sentence()} Its first (compiling) step: {compile_text(df)}.")
    cells = j[j["impl"] == "cells"]
    if not cells.empty:
        parts.append(f"The Python cell loop takes a median {cells['ratio'].median():.2f}× of the packed module time.")
    return " ".join(parts) + " Hollow markers: results that differ from packing."


def _exact_grid(df: pd.DataFrame, folder: Path) -> Blocks:
    """exact/packed and exact/padded time over batch × length, per model (module rows)."""
    rows = ok_rows(df)
    rows = rows[rows["impl"] == "module"]
    # Only cases that were also run exact, so `typical` fixes the other axes where exact rows are.
    key = [c for c in AXIS_NAMES if c != "varlen"] + ["machine"]
    exact_keys = rows.loc[rows["varlen"] == "exact", key].drop_duplicates()
    rows = typical(rows.merge(exact_keys, on=key), vary=["batch_size", "seq_len", "varlen"])
    grids = []
    for other in ("packed", "padded"):
        p = pairs(rows, "varlen", "exact", other)
        if not p.empty and p["batch_size"].nunique() * p["seq_len"].nunique() > 1:
            grids += [(other, model, g) for model, g in p.groupby("model", sort=True)]
    if not grids:
        how = "--varlen padded,packed,exact --batch-size 8,32 --seq-len 32,128"
        return [Paragraph(missing_note("exact, packed and padded runs over several sizes", how))]
    # Two panels a row: four side by side left cell labels too small to read.
    nrows = (len(grids) + 1) // 2
    ncols = min(2, len(grids))
    fig, axes = new_figure(ncols=ncols, nrows=nrows, height=2.6 * nrows + 0.6)
    ratios = [g["median_ms_a"] / g["median_ms_b"] for _, _, g in grids]
    norm = ratio_norm(pd.concat(ratios))
    panels = axes.ravel().tolist()
    for ax, (other, model, g), r in zip(panels, grids, ratios, strict=False):
        grid = g.assign(ratio=r).pivot_table(index="seq_len", columns="batch_size", values="ratio")
        im = ratio_heatmap(ax, grid, norm, f"{model}: exact / {other}", lambda i, j, v: f"{v:.2f}×")
    for ax in panels[len(grids) :]:
        ax.set_visible(False)
    ratio_colorbar(fig, panels[: len(grids)], im, "time ratio (blue: exact faster)")
    file = save(fig, folder, "exact_grid", "Exact padding's time over packed and over padded time")
    first = grids[0][2].iloc[0]
    shape = f"{first['num_layers']}×{'bi' if first['bidirectional'] else 'uni'}"
    fixed = f"{shape}, {first['mode']}, lengths {first['lengths']}"
    text = f"Exact padding against packing and against plain padding, over batch and length ({fixed})."
    return [Paragraph(text), Image(file, "exact padding over batch and length")]


def _table(j: pd.DataFrame) -> Table:
    summary = j.groupby("variant").agg(
        cases=("ratio", "size"),
        median_ratio=("ratio", "median"),
        min_ratio=("ratio", "min"),
        max_ratio=("ratio", "max"),
        max_err=("err", "max"),
    )
    summary = summary.reindex([v for v in VARIANT_ORDER if v in summary.index])
    rows = [
        [
            v,
            str(int(r.cases)),
            f"{r.median_ratio:.2f}×",
            f"{r.min_ratio:.2f}× to {r.max_ratio:.2f}×",
            f"{r.max_err:.1e}",
        ]
        for v, r in summary.iterrows()
    ]
    return Table(["variant (impl·varlen)", "cases", "median time / packed module", "range", "max error"], rows)
