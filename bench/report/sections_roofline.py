"""The roofline section: what bounds each case, drawn against the machine's measured roofs.

A point per case (log arithmetic intensity against attained GFLOP/s), coloured by model,
shaped by mode, sized by batch; the compute roof and each memory level's bandwidth roof
drawn and named (``bench.core.roofline``). Older CSVs without the roofline columns get
the old picture: GFLOP/s against the measured matmul peak.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.core.roofline import BOUNDS
from bench.report.answers import EFFICIENCY, efficiency_text
from bench.report.document import Blocks, Heading, Image, Paragraph
from bench.report.plotting import MACHINE_SEP, new_figure, outside_legend, save
from bench.report.slices import ok_rows

MODE_MARKERS = {"inference": "o", "training": "^"}
LEVEL_ORDER = {"L1": 0, "L2": 1, "L3": 2, "DRAM": 3, "HBM": 3}


def placed_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Ok time rows the roofline placed (rows of older CSVs have no ``bound``). Wrong results are
    kept: what bounds a case's time does not depend on its outputs being right."""
    rows = ok_rows(df)
    if "bound" not in rows.columns:
        return rows.iloc[0:0]
    return rows[(rows["bound"].fillna("") != "") & rows["intensity_flop_per_byte"].notna()]


def leaves_memory_bound(rows: pd.DataFrame) -> str:
    """For one model's cases: the batch size from which most cases of every larger batch are
    no longer memory-bound."""
    share = rows.assign(memory=rows["bound"] == "memory").groupby("batch_size")["memory"].mean().sort_index()
    if not (share >= 0.5).any():
        return "no batch size mostly memory-bound"
    mostly = share >= 0.5
    last_memory = mostly[mostly].index.max()
    larger = share[share.index > last_memory]
    if larger.empty:
        return f"memory-bound up to batch {last_memory}, the largest run"
    return f"memory-bound up to batch {last_memory}, no longer from batch {larger.index.min()}"


# The roofs differ by these: a figure, and a "leaves the memory-bound region" claim, holds one of each.
ROOF_KEYS = ["machine", "device", "dtype", "tf32"]


def bounds_text(df: pd.DataFrame) -> str:
    """How many cases each bound holds, and where each model leaves the memory-bound region
    (per machine, device, dtype and TF32 where the run has several: their ridges differ)."""
    rows = placed_rows(df)
    if rows.empty:
        return ""
    counts = rows["bound"].value_counts()
    text = ", ".join(f"{counts.get(b, 0)} {b}-bound" for b in BOUNDS) + f" of {len(rows)} cases"
    several = rows.groupby(ROOF_KEYS).ngroups > 1
    parts = []
    for (machine, device, dtype, tf32, model), g in rows.groupby([*ROOF_KEYS, "model"]):
        where = f" ({device} {dtype}{' TF32' if tf32 == 'on' else ''} on {machine})" if several else ""
        parts.append(f"{model.upper()}{where}: {leaves_memory_bound(g)}")
    return text + "; " + "; ".join(parts)


def roofs_text(rows: pd.DataFrame) -> str:
    """The roofs the cases were placed under, per machine, device and threads."""
    parts = []
    for (machine, device, dtype, tf32, threads), g in rows.groupby([*ROOF_KEYS, "threads"]):
        compute = g["peak_gflop_per_s"].median()
        engine = g["peak_engine"].mode().iloc[0] if g["peak_engine"].ne("").any() else "measured"
        levels = g.groupby("weights_level")["level_gb_per_s"].median()
        levels = levels.sort_index(key=lambda idx: idx.map(lambda n: LEVEL_ORDER.get(n, 9)))
        bw = ", ".join(f"{name} {gb:.0f} GB/s" for name, gb in levels.items())
        tf = " TF32" if tf32 == "on" else ""
        parts.append(
            f"{machine} {device} {dtype}{tf}, {threads} thread(s): compute {compute:.0f} GFLOP/s ({engine}); {bw}"
        )
    return "; ".join(parts)


def measured_levels(rows: pd.DataFrame) -> dict[str, float]:
    """Each memory level's bandwidth (GB/s) for these rows' device and threads: every level the
    run measured (its JSON), else the levels the rows' weights fall in."""
    device, threads = rows["device"].iloc[0], int(rows["threads"].iloc[0])
    found: dict[str, list[float]] = {}
    for (source, key), levels in rows.attrs.get("bandwidth", {}).items():
        if key == f"{device}/threads={threads}" and source in set(rows["source_path"]):
            for level in levels:
                found.setdefault(level["level"], []).append(float(level["gb_per_s"]))
    if not found:
        found = {n: [float(g)] for n, g in rows.groupby("weights_level")["level_gb_per_s"].median().items()}
    ordered = sorted(found, key=lambda n: LEVEL_ORDER.get(n, 9))
    return {name: float(np.median(found[name])) for name in ordered}


def roofline_figure(rows: pd.DataFrame, folder: Path, name: str, machine: str) -> str:
    """One device's cases against its roofs (one thread count: the roofs depend on it)."""
    fig, axes = new_figure(height=4.2)
    ax = axes[0][0]
    sizes = {b: 10 + 12 * np.log2(b) for b in sorted(rows["batch_size"].unique())}
    colours = {m: f"C{i}" for i, m in enumerate(sorted(rows["model"].unique()))}
    for (model, mode), g in rows.groupby(["model", "mode"]):
        ax.scatter(
            g["intensity_flop_per_byte"],
            g["gflop_per_s"],
            s=g["batch_size"].map(sizes),
            marker=MODE_MARKERS.get(mode, "o"),
            color=colours[model],
            alpha=0.7,
            edgecolors="none",
            label=f"{model} {mode}",
        )
    for batch, size in sizes.items():  # the size key: batch sizes read off the marker size
        ax.scatter([], [], s=size, color="0.5", label=f"batch {batch}")
    compute = rows["peak_gflop_per_s"].median()
    x = rows["intensity_flop_per_byte"]
    lo, hi = x.min() / 2, x.max() * 2
    # Roofs named in the legend: labels on the lines overlapped where two levels' bandwidths are close.
    ax.axhline(compute, color="k", lw=1.0, label=f"compute roof {compute:.0f} GFLOP/s")
    styles = ["--", ":", "-.", (0, (10, 3)), (0, (1, 1))]
    for (level, gb), style in zip(measured_levels(rows).items(), styles * 2, strict=False):
        xs = np.array([lo, min(compute / gb, hi)])  # up to the ridge, where the compute roof takes over
        ax.plot(xs, gb * xs, color="0.3", lw=1.0, ls=style, label=f"{level} roof {gb:.0f} GB/s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity (FLOP per byte moved, modelled)")
    ax.set_ylabel("attained GFLOP/s")
    outside_legend(fig, ax)
    threads = int(rows["threads"].iloc[0])
    what = f"{rows['dtype'].iloc[0]}{' TF32' if rows['tf32'].iloc[0] == 'on' else ''}, {threads} thread(s)"
    return save(fig, folder, name, f"What bounds each case? ({what}{MACHINE_SEP}{machine})")


def roofline(df: pd.DataFrame, folder: Path) -> Blocks:
    """The efficiency section against the roofline; the matmul-peak picture for older CSVs."""
    rows = placed_rows(df)
    if rows.empty:
        return efficiency_by_peak(df, folder)
    blocks: Blocks = [
        Heading(EFFICIENCY),
        Paragraph(
            f"What bounds the cases: {bounds_text(df)}. Roofs: {roofs_text(rows)}. "
            "A case is memory-bound when its weights' level cannot feed the compute roof at its intensity, "
            "overhead-bound when its fixed per-step cost (measured on a tiny copy) alone takes longer than "
            "the roofs allow. The traffic is modelled (docs/architecture.md, bench/core/roofline.py)."
        ),
        Paragraph(f"Efficiency: {efficiency_text(df)}."),
    ]
    for i, ((machine, device, dtype, tf32), g) in enumerate(rows.groupby(ROOF_KEYS)):
        threads = g["threads"].value_counts().idxmax()  # the roofs depend on the threads: the most common
        one = g[g["threads"] == threads]
        file = roofline_figure(one, folder, f"roofline_{i}", machine)
        what = f"{device} {dtype}{' TF32' if tf32 == 'on' else ''}"
        blocks.append(Image(file, f"roofline of {what} on {machine}"))
        others = sorted(set(g["threads"]) - {threads})
        if others:
            blocks.append(
                Paragraph(
                    f"The plot of {what} shows its {len(one)} cases at {threads} thread(s); "
                    f"{len(g) - len(one)} more at {', '.join(map(str, others))} thread(s) have other roofs "
                    "(their rows carry them)."
                )
            )
    above = rows[rows["roof_fraction"] > 1]
    if not above.empty:
        blocks.append(Paragraph(f"{len(above)} case(s) above their roofline bound; their notes say which roof."))
    return blocks


def efficiency_by_peak(df: pd.DataFrame, folder: Path) -> Blocks:
    """Achieved GFLOP/s per case against the measured peak (runs from before the roofline)."""
    rows = ok_rows(df).dropna(subset=["gflop_per_s", "peak_gflop_per_s"])
    if rows.empty:
        return [Heading(EFFICIENCY), Paragraph("No rows with GFLOP/s and a measured peak.")]
    fig, axes = new_figure()
    ax = axes[0][0]
    for (machine, model, mode), g in rows.groupby(["machine", "model", "mode"]):
        marker = MODE_MARKERS.get(mode, "o")
        ax.scatter(g["gflop"], g["gflop_per_s"], s=12, marker=marker, label=f"{model} {mode}{MACHINE_SEP}{machine}")
    for (machine, dtype), g in rows.groupby(["machine", "dtype"]):
        peak = g["peak_gflop_per_s"].median()
        # Named in the legend: a label on the line sat under the points near it.
        label = f"matmul peak {dtype}: {peak:.0f} GFLOP/s{MACHINE_SEP}{machine}"
        ax.axhline(peak, ls="--", lw=0.8, color="k", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("useful work per step (GFLOP)")
    ax.set_ylabel("achieved GFLOP/s")
    outside_legend(fig, ax)
    file = save(fig, folder, "efficiency", "How close do the cases come to the machine's matmul peak?")
    sentence = (
        f"Efficiency: {efficiency_text(df)}. This run has no roofline columns (written before schema 5): "
        "rerun it to see what bounds each case."
    )
    return [Heading(EFFICIENCY), Paragraph(sentence), Image(file, EFFICIENCY)]
