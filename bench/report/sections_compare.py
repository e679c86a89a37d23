"""Report sections that compare: LSTM/GRU, CPU/GPU, backends, efficiency, training split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.document import Blocks, Heading, Image, Paragraph
from bench.report.plotting import MACHINE_SEP, new_figure, save
from bench.report.samples import SampleStore, ratio_cis
from bench.report.slices import missing_note, ok_rows, pairs, short_label


def ratio_section(
    p: pd.DataFrame, folder: Path, title: str, name: str, ylabel: str, what: str, question: str | None = None
) -> Blocks:
    """A strip of per-case ratios ``a / b`` against the ``a`` side's work, plus a sentence."""
    low, high = ratio_cis(p, SampleStore())
    p = p.assign(ratio=p["median_ms_a"] / p["median_ms_b"], low=low, high=high)
    fig, axes = new_figure()
    ax = axes[0][0]
    for (mode, machine), g in p.groupby(["mode", "machine_a" if "machine_a" in p else "machine"]):
        # Bars: bootstrap 95% CI of each pair's ratio from the raw samples (none where they are missing).
        yerr = [(g["ratio"] - g["low"]).fillna(0).clip(lower=0), (g["high"] - g["ratio"]).fillna(0).clip(lower=0)]
        ax.errorbar(
            g["gflop_a"],
            g["ratio"],
            yerr=yerr,
            fmt="o",
            ms=3.5,
            capsize=1.5,
            elinewidth=0.8,
            label=f"{mode}{MACHINE_SEP}{machine}",
        )
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("work per step (GFLOP, useful)")
    ax.set_ylabel(ylabel)
    ax.legend()
    file = save(fig, folder, name, question)
    with_ci = p.dropna(subset=["low"])
    ci_note = (
        f" Bars: bootstrap 95% CI of each case's ratio from the raw samples ({len(with_ci)} of {len(p)} cases; "
        f"the narrowest ±{((with_ci['high'] - with_ci['low']) / 2 / with_ci['ratio']).min():.1%}, "
        f"the widest ±{((with_ci['high'] - with_ci['low']) / 2 / with_ci['ratio']).max():.1%})."
        if not with_ci.empty
        else " No bars: the runs' raw samples files are missing."
    )
    return [Heading(title), Paragraph(ratio_summary(p["ratio"], what) + ci_note), Image(file, title)]


def ratio_summary(ratio: pd.Series, what: str) -> str:
    """``what: median 0.83× over 40 matched cases (range 0.09× to 1.97×).``"""
    return (
        f"{what}: median {ratio.median():.2f}× over {len(ratio)} matched cases "
        f"(range {ratio.min():.2f}× to {ratio.max():.2f}×)."
    )


def lstm_vs_gru(df: pd.DataFrame, folder: Path) -> Blocks:
    title = "LSTM vs GRU"
    p = pairs(df, "model", "gru", "lstm")
    if p.empty:
        return [Heading(title), Paragraph(missing_note("both models on the same cases", "--model lstm,gru"))]
    return ratio_section(
        p,
        folder,
        title,
        "lstm_vs_gru",
        "GRU time / LSTM time",
        "GRU time / LSTM time",
        "Is a GRU step faster than an LSTM step?",
    )


def cpu_vs_gpu(df: pd.DataFrame, folder: Path) -> Blocks:
    title = "CPU vs GPU"
    # Thread counts differ between machines and do not make a case different here.
    p = pairs(df, "device", "cpu", "cuda", ignore=["threads"])
    if p.empty:
        return [
            Heading(title),
            Paragraph(
                missing_note(
                    "the same cases on CPU and GPU",
                    "--device cpu,cuda",
                )
            ),
        ]
    return ratio_section(
        p, folder, title, "cpu_vs_gpu", "CPU time / GPU time (speedup)", "CPU time / GPU time (GPU speedup)"
    )


def backend(df: pd.DataFrame, folder: Path) -> Blocks:
    title = "Backend: cuDNN/oneDNN vs native kernels"
    p = pairs(df, "backend", "native", "default")
    if p.empty:
        return [
            Heading(title),
            Paragraph(missing_note("default and native backends on the same cases", "--backend default,native")),
        ]
    return ratio_section(
        p, folder, title, "backend", "native time / default time", "Native time / default (cuDNN/oneDNN) time"
    )


def efficiency(df: pd.DataFrame, folder: Path) -> Blocks:
    """Achieved GFLOP/s per case against the measured peak of its device and dtype."""
    title = "Efficiency against the measured peak"
    rows = ok_rows(df).dropna(subset=["gflop_per_s", "peak_gflop_per_s"])
    if rows.empty:
        return [Heading(title), Paragraph("No rows with GFLOP/s and a measured peak.")]
    fig, axes = new_figure()
    ax = axes[0][0]
    markers = {"inference": "o", "training": "^"}
    for (machine, model, mode), g in rows.groupby(["machine", "model", "mode"]):
        ax.scatter(
            g["gflop"],
            g["gflop_per_s"],
            s=12,
            marker=markers.get(mode, "o"),
            label=f"{model} {mode}{MACHINE_SEP}{machine}",
        )
    for (machine, dtype), g in rows.groupby(["machine", "dtype"]):
        peak = g["peak_gflop_per_s"].median()
        ax.axhline(peak, ls="--", lw=0.8, color="k")
        ax.annotate(
            f"peak {machine} {dtype}: {peak:.0f} GFLOP/s",
            (rows["gflop"].min(), peak),
            va="bottom",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("useful work per step (GFLOP)")
    ax.set_ylabel("achieved GFLOP/s")
    ax.legend(loc="lower right")
    file = save(fig, folder, "efficiency", "How close do the cases come to the machine's matmul peak?")
    best = rows.loc[rows["efficiency"].idxmax()]
    sentence = (
        f"Median efficiency {rows['efficiency'].median():.1%} of the measured matmul peak; best "
        f"{best['efficiency']:.1%} ({short_label(best)} on {best['machine']}). Small batches leave most of the "
        f"machine idle: each step is a chain of small matrix products."
    )
    return [Heading(title), Paragraph(sentence), Image(file, title)]


def training_split(df: pd.DataFrame, folder: Path, limit: int = 24) -> Blocks:
    title = "Training: forward vs backward"
    rows = ok_rows(df)
    rows = rows[(rows["mode"] == "training") & rows["fwd_median_ms"].notna()]
    if rows.empty:
        return [Heading(title), Paragraph(missing_note("training rows", "--mode inference,training"))]
    rows = rows.sort_values("median_ms").tail(limit)
    one_machine = rows["machine"].nunique() == 1  # then the title names it
    labels = [short_label(r) + ("" if one_machine else f" · {r['machine']}") for _, r in rows.iterrows()]
    fig, axes = new_figure(height=max(2.5, 0.22 * len(rows) + 0.8))
    ax = axes[0][0]
    y = np.arange(len(rows))
    ax.barh(y, rows["fwd_median_ms"], label="forward")
    ax.barh(y, rows["bwd_median_ms"], left=rows["fwd_median_ms"], label="backward")
    ax.set_yticks(y, labels, fontsize=9)
    ax.set_xlabel("median time per step (ms); stacked, so a linear axis")
    ax.legend()
    file = save(fig, folder, "training_split", "How is a training step split between forward and backward?")
    share = rows["bwd_median_ms"] / (rows["fwd_median_ms"] + rows["bwd_median_ms"])
    worst = rows.loc[share.idxmax()]
    sentence = (
        f"Backward is {share.median():.0%} of a training step (median over {len(rows)} slowest cases), "
        f"up to {share.max():.0%} for {short_label(worst)}."
    )
    return [Heading(title), Paragraph(sentence), Image(file, title)]


def user_models(df: pd.DataFrame, folder: Path) -> Blocks:
    """Each user model (``PACKAGE.MODULE:FACTORY``) against the suite's LSTM and GRU on the same cases."""
    title = "Your models against rnnbench's"
    mine = sorted(m for m in df["model"].unique() if m not in ("lstm", "gru"))
    if not mine:
        return []  # no user model in the data: nothing to say
    blocks: Blocks = [Heading(title)]
    for model in mine:
        for suite in ("lstm", "gru"):
            p = pairs(df, "model", model, suite)
            if p.empty:
                continue
            name = f"user_{model.replace(':', '_').replace('.', '_')}_vs_{suite}"
            what = f"{model} time / {suite} time"
            blocks += ratio_section(p, folder, f"{model} vs {suite}", name, what, what)[1:]
            errs = p["max_abs_err_a"].dropna()
            if not errs.empty:
                blocks.append(
                    Paragraph(
                        f"{model}: largest difference from its own packed mode {errs.max():.2g} "
                        f"({len(errs)} of {len(p)} cases compared)."
                    )
                )
        unsupported = df[(df["model"] == model) & (df["status"] == "unsupported")]
        if not unsupported.empty:
            reasons = "; ".join(sorted(set(unsupported["error"])))
            blocks.append(Paragraph(f"{model} declined {len(unsupported)} case(s): {reasons}."))
    if len(blocks) == 1:
        blocks.append(Paragraph(missing_note("a user model and rnnbench's on the same cases", "--model M:F,lstm")))
    return blocks
