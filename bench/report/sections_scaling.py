"""Report sections on how time scales: sizes, packing, depth and direction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import NullLocator, ScalarFormatter

from bench.report import answers
from bench.report.answers import answer, case_ratio_ci, is_faster, matrix_blocks
from bench.report.document import Blocks, Heading, Image, Paragraph
from bench.report.plotting import (
    MACHINE_SEP,
    new_figure,
    outside_legend,
    ratio_colorbar,
    ratio_heatmap,
    ratio_norm,
    save,
)
from bench.report.slices import EXACT_TOL, missing_note, ok_rows, pairs, typical


def _series(df: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """One line per model and machine: (model, machine, rows)."""
    return [(m, mach, g) for (m, mach), g in df.groupby(["model", "machine"], sort=True)]


def scaling(df: pd.DataFrame, folder: Path, x: str, line: str) -> Blocks:
    """Latency and tokens/s against ``x`` (batch_size or seq_len), a line per ``line`` value."""
    title = f"Latency and throughput against {x.replace('_', ' ')}"
    rows = typical(df, vary=[x, line])
    if rows[x].nunique() < 2:
        flag = "--" + x.replace("_", "-")
        return [Heading(title), Paragraph(missing_note(f"two or more {x} values", f"{flag} 1,8,32,128"))]
    fig, axes = new_figure(ncols=2)
    lat, thr = axes[0]
    # Colour says the `line` value, line style the model and machine.
    colours = {v: f"C{i % 10}" for i, v in enumerate(sorted(rows[line].unique()))}
    styles = ["-", "--", ":", "-."]
    for k, (model, machine, g) in enumerate(_series(rows)):
        for value, h in g.groupby(line):
            h = h.sort_values(x)
            kw = dict(color=colours[value], ls=styles[k % 4], marker="o", ms=3)
            name = f"{model}, {line.replace('_', ' ')} {value}{MACHINE_SEP}{machine}"
            yerr = [h["median_ms"] - h["ci_low_ms"], h["ci_high_ms"] - h["median_ms"]]
            lat.errorbar(h[x], h["median_ms"], yerr=yerr, capsize=2, label=name, **kw)
            thr.plot(h[x], h["tokens_per_s"], label=name, **kw)
    for ax, ylabel in ((lat, "median latency (ms, 95% CI)"), (thr, "throughput (valid tokens/s)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sorted(rows[x].unique()))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(x.replace("_", " "))
        ax.set_ylabel(ylabel)
    # Outside the axes: a legend inside covered the lines it names.
    outside_legend(fig, thr)
    file = save(fig, folder, f"scaling_{x}", f"How do latency and throughput grow with {x.replace('_', ' ')}?")
    best = rows.loc[rows["tokens_per_s"].idxmax()]
    # The growth sentence follows the largest line value, in the series (model, machine)
    # with the most points there: never an empty series, whatever the mix of machines.
    top = rows[rows[line] == rows[line].max()]
    model, machine = top.groupby(["model", "machine"]).size().idxmax()
    widest = top[(top["model"] == model) & (top["machine"] == machine)].sort_values(x)
    lo, hi = widest.iloc[0], widest.iloc[-1]
    growth = (
        ""
        if len(widest) < 2
        else (
            f"From {x.replace('_', ' ')} {lo[x]} to {hi[x]} ({lo['model']}, {line.replace('_', ' ')} {lo[line]}), "
            f"latency grows {hi['median_ms'] / lo['median_ms']:.3g}× for {hi[x] / lo[x]:.3g}× the work. "
        )
    )
    sentence = growth + (
        f"Highest throughput: {best['tokens_per_s']:.3g} tokens/s for {best['model']} on {best['machine']} "
        f"at batch {best['batch_size']}, length {best['seq_len']} ({best['median_ms']:.3g} ms a step); "
        f"fixed axes: {fixed_axes(rows, [x, line])}, lengths={rows['lengths'].iloc[0]}."
    )
    pad = rows["padding_fraction"].dropna()
    if not pad.empty and pad.max() - pad.min() > 0.02:
        # Drawn lengths give each cell its own padding: say so, it moves padded times too.
        sentence += (
            f" The padding is not held fixed: it varies from {pad.min():.0%} to {pad.max():.0%} of the positions "
            "across these cases (controlled lengths, `--lengths pad:F`, hold it)."
        )
    return [Heading(title), Paragraph(sentence), Image(file, title)]


def fixed_axes(rows: pd.DataFrame, vary: list[str]) -> str:
    keys = ["mode", "num_layers", "bidirectional", "varlen", "impl", "dtype", "backend", "hidden_size"]
    first = rows.iloc[0]
    return ", ".join(f"{k}={first[k]}" for k in keys if k not in vary)


def packing(df: pd.DataFrame, folder: Path) -> Blocks:
    """Packed/padded time ratio over batch x length, with the padding behind it."""
    title = answers.PACKING
    found = answer(df, "packing")
    curve = [*matrix_blocks(found.matrix), *padding_curve(df, folder)]
    rows = typical(df[~df["lengths"].str.startswith("pad:")], vary=["batch_size", "seq_len", "varlen"])
    p = pairs(rows, "varlen", "packed", "padded")
    said = [Paragraph(found.sentence())] if found.strata else []
    if p.empty or p["batch_size"].nunique() * p["seq_len"].nunique() < 2:
        if found.found:
            return [Heading(title), *said, *curve, *drift(df)]
        return [
            Heading(title),
            Paragraph(missing_note("packed and padded runs of the same cases", "--varlen padded,packed")),
        ]
    p["ratio"] = p["median_ms_a"] / p["median_ms_b"]
    groups = list(p.groupby(["model", "machine"], sort=True))
    fig, axes = new_figure(ncols=len(groups), height=3.2)
    norm = ratio_norm(p["ratio"])
    for ax, ((model, machine), g) in zip(axes[0], groups, strict=True):
        grid = g.pivot_table(index="seq_len", columns="batch_size", values="ratio")
        pad = g.pivot_table(index="seq_len", columns="batch_size", values="padding_fraction_b")
        im = ratio_heatmap(
            ax,
            grid,
            norm,
            f"{model}{MACHINE_SEP}{machine}",
            lambda i, j, v, pad=pad: f"{v:.2f}×\npad {pad.values[i, j]:.0%}",
        )
    ratio_colorbar(fig, axes[0].tolist(), im, "packed / padded time (blue: packing faster)")
    file = save(fig, folder, "packing", "When does packing pay? Packed time / padded time")
    first = p.iloc[0]
    shape = f"{first['num_layers']}×{'bi' if first['bidirectional'] else 'uni'}, {first['mode']}"
    sentence = (
        f"The grid: packed / padded time over batch and length ({shape}, lengths {first['lengths']}; each cell "
        "names its own padding). Red: packing is slower; blue: packing pays."
    )
    return [Heading(title), *said, Paragraph(sentence), Image(file, title), *curve, *drift(df)]


def padding_curve(df: pd.DataFrame, folder: Path) -> Blocks:
    """Packed and exact time over padded time against the batch's padding fraction, from runs
    with controlled lengths (``--lengths pad:F``): when does packing pay?"""
    rows = ok_rows(df)
    rows = typical(rows[rows["lengths"].str.startswith("pad:")], vary=["varlen", "lengths", "mode"])
    found = [
        (variant, p)
        for variant in ("packed", "exact")
        if not (p := pairs(rows, "varlen", variant, "padded")).empty and p["lengths"].nunique() >= 2
    ]
    if not found:
        return [Paragraph(missing_note("runs over controlled padding", "--lengths pad:0,pad:0.25,pad:0.5,pad:0.75"))]
    fig, axes = new_figure(height=3.4)
    ax = axes[0][0]
    styles = {"packed": "-", "exact": "--"}
    said = []
    for variant, p in found:
        # x is the F of --lengths pad:F: the stratified draws put each batch within a few thousandths of it.
        p = p.assign(ratio=p["median_ms_a"] / p["median_ms_b"], pad=p["lengths"].str[4:].astype(float))
        for (model, mode, machine), g in p.groupby(["model", "mode", "machine"], sort=True):
            g = g.sort_values("pad")
            _, low, high = case_ratio_ci(g)
            ax.errorbar(
                g["pad"] * 100,
                g["ratio"],
                yerr=[g["ratio"] - low, high - g["ratio"]],
                ls=styles[variant],
                marker="o",
                ms=4,
                capsize=2,
                label=f"{variant}: {model} {mode}{MACHINE_SEP}{machine}",
            )
            pays = g["pad"][is_faster(g["ratio"], high)]  # the findings' rule: its CI below 1, by more than 3%
            when = f"faster than padded at {', '.join(f'{f:.0%}' for f in pays)}" if len(pays) else "never faster"
            ends = f"{g['ratio'].iloc[0]:.2f}× at {g['pad'].iloc[0]:.0%}"
            ends += f" to {g['ratio'].iloc[-1]:.2f}× at {g['pad'].iloc[-1]:.0%}"
            said.append(f"{variant} {model} {mode}: {ends} ({when})")
    ax.axhline(1, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("padding in the batch (% of positions: F of --lengths pad:F)")
    ax.set_ylabel("time / padded time (95% CI)")
    ax.legend(ncols=2)
    file = save(fig, folder, "packing_padding", "At what padding does packing pay? Time over padded time")
    sentence = "Against the batch's padding (controlled lengths, `--lengths pad:F`): " + "; ".join(said) + "."
    return [Paragraph(sentence), Image(file, "packing against padding fraction")]


def drift(df: pd.DataFrame) -> Blocks:
    """How far padded outputs stray from packed ones, from the run's max_abs_err column."""
    rows = ok_rows(df)
    rows = rows[(rows["varlen"] == "padded") & (rows["impl"] == "module") & rows["max_abs_err"].notna()]
    if rows.empty:
        return [Paragraph("No padded rows with max_abs_err: the drift of padded results is not shown.")]
    table = rows.groupby(["model", "num_layers", "bidirectional"])["max_abs_err"].max().reset_index()
    table["shape"] = [f"{r.model} {r.num_layers}×{'bi' if r.bidirectional else 'uni'}" for r in table.itertuples()]
    exact = table[table["max_abs_err"] < EXACT_TOL]
    drifting = table[table["max_abs_err"] >= EXACT_TOL]
    text = (
        "Padded results against packed ones: the largest |difference| of outputs at valid positions, recorded by "
        "the run (max_abs_err) from the models' own outputs with the same weights and inputs. "
    )
    if not exact.empty:
        text += f"Exact (below {EXACT_TOL:g}) for {', '.join(exact['shape'])}. "
    if not drifting.empty:
        text += "Drifting for " + ", ".join(f"{r.shape} (up to {r.max_abs_err:.2g})" for r in drifting.itertuples())
        text += ": the reverse direction starts in the padding. "
    text += "In every padded model the final states of shorter sequences are taken after the padding."
    return [Paragraph(text)]


STRUCTURES = [(1, False), (1, True), (2, False), (2, True)]


def depth_direction(df: pd.DataFrame, folder: Path) -> Blocks:
    """Time of each structure over 1 layer one-way, on packed or exact input (padded input
    gives a bidirectional model wrong outputs, so its time would answer nothing)."""
    title = answers.DEPTH
    right = df[df["varlen"].isin(("packed", "exact"))]
    rows = typical(right, vary=["num_layers", "bidirectional", "mode"])
    depth, direction = answer(df, "depth"), answer(df, "direction")
    said = " ".join(a.sentence() for a in (depth, direction) if a.found)
    if rows["num_layers"].nunique() < 2 and rows["bidirectional"].nunique() < 2:
        how = "--num-layers 1,2 --bidirectional false,true --varlen packed"
        return [Heading(title), Paragraph(said or missing_note("more than one layer count or direction", how))]
    keys = ["model", "machine", "mode"]
    base = rows[(rows["num_layers"] == 1) & ~rows["bidirectional"]].set_index(keys)
    fig, axes = new_figure()
    ax = axes[0][0]
    groups = [k for k in rows.groupby(keys).groups if k in base.index]
    width = 0.8 / max(len(groups), 1)
    for gi, key in enumerate(groups):
        g = rows.set_index(keys).loc[[key]]
        b = base.loc[key]
        rel, low, high = [], [], []
        for layers, bi in STRUCTURES:
            hit = g[(g["num_layers"] == layers) & (g["bidirectional"] == bi)]
            if hit.empty:
                rel.append(np.nan), low.append(0.0), high.append(0.0)
                continue
            pair = pd.DataFrame(
                {f"{c}_{side}": [r[c]] for side, r in (("a", hit.iloc[0]), ("b", b)) for c in _CI_COLUMNS}
            )
            r, lo, hi = case_ratio_ci(pair)
            rel.append(r[0]), low.append(r[0] - lo[0]), high.append(hi[0] - r[0])
        model, machine, mode = key
        ax.bar(
            np.arange(len(STRUCTURES)) + gi * width,
            rel,
            width,
            yerr=[low, high],
            capsize=2,
            label=f"{model} {mode}{MACHINE_SEP}{machine}",
        )
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xticks(
        np.arange(len(STRUCTURES)) + width * (len(groups) - 1) / 2,
        [f"{n} layer{'s' if n > 1 else ''}, {'bi' if b else 'uni'}" for n, b in STRUCTURES],
    )
    ax.set_ylabel("time / (1 layer, one-way), 95% CI")
    if ax.get_legend_handles_labels()[0]:  # a partial run may leave no complete group to label
        outside_legend(fig, ax)
    first = rows.iloc[0]
    shape = f"b{first['batch_size']} L{first['seq_len']} {first['varlen']}"
    file = save(fig, folder, "depth_direction", f"Cost of depth and direction, {shape}")
    return [Heading(title), Paragraph(said), Image(file, title)]


_CI_COLUMNS = ("median_ms", "ci_low_ms", "ci_high_ms")


def threads(df: pd.DataFrame, folder: Path) -> Blocks:
    """CPU time at each thread count over time at one thread, per model and mode."""
    title = answers.THREADS
    cpu = ok_rows(df)[lambda d: d["device"] == "cpu"]
    rows = typical(cpu, vary=["threads", "mode"])
    found = answer(df, "threads")
    if rows["threads"].nunique() < 2 or not (rows["threads"] == 1).any():
        return [Heading(title), Paragraph(missing_note("CPU runs at 1 and more threads", "--threads 1,2"))]
    one = rows[rows["threads"] == 1].set_index(["model", "mode", "machine"])["median_ms"]
    fig, axes = new_figure(height=3.2)
    ax = axes[0][0]
    for (model, mode, machine), g in rows.groupby(["model", "mode", "machine"], sort=True):
        if (model, mode, machine) not in one.index:
            continue
        g = g.sort_values("threads")
        speedup = one[(model, mode, machine)] / g["median_ms"]
        ax.plot(g["threads"], speedup, marker="o", ms=4, label=f"{model} {mode}{MACHINE_SEP}{machine}")
    top = int(rows["threads"].max())
    ax.plot([1, top], [1, top], color="0.6", ls=":", label="linear")
    ax.set_xticks(sorted(rows["threads"].unique()))
    ax.set_xlabel("intra-op threads")
    ax.set_ylabel("speed-up over 1 thread")
    outside_legend(fig, ax)
    file = save(fig, folder, "threads", "How much do more threads help?")
    plot = f"The plot: speed-up (time at 1 / time at t) with {fixed_axes(rows, ['threads', 'mode'])}."
    return [Heading(title), Paragraph(found.sentence()), Paragraph(plot), Image(file, title)]
