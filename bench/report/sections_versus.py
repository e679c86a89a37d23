"""Report sections that compare: LSTM/GRU, CPU/GPU, backends, efficiency, training split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.answers import (
    BACKEND,
    DEVICES,
    MODELS,
    Answer,
    answer,
    sides,
    wrong_outputs,
)
from bench.report.document import Blocks, Heading, Image, Paragraph
from bench.report.plotting import MACHINE_SEP, new_figure, outside_legend, save
from bench.report.samples import SampleStore, ratio_cis
from bench.report.slices import missing_note, ok_rows, pairs, short_label


def ratio_section(
    p: pd.DataFrame,
    folder: Path,
    name: str,
    ylabel: str,
    title: str,
    sentence: str,
    question: str | None = None,
    colour: tuple[str, ...] = ("mode",),
) -> Blocks:
    """A strip of per-case ratios ``a / b`` against the ``a`` side's work, one colour per value of
    ``colour`` (the factors that split the ratio), under ``sentence``."""
    if p.empty:
        return [Heading(title), Paragraph(sentence)]
    low, high = ratio_cis(p, SampleStore())
    p = p.assign(ratio=p["median_ms_a"] / p["median_ms_b"], low=low, high=high)
    fig, axes = new_figure()
    ax = axes[0][0]
    machine = "machine_a" if "machine_a" in p else "machine"
    split = [c for c in colour if c in p.columns]
    for keys, g in p.groupby([*split, machine], sort=True):
        *values, where = keys
        # Bars: 95% CI of each pair's ratio from the raw samples (none where they are missing).
        yerr = [(g["ratio"] - g["low"]).fillna(0).clip(lower=0), (g["high"] - g["ratio"]).fillna(0).clip(lower=0)]
        ax.errorbar(
            g["gflop_a"],
            g["ratio"],
            yerr=yerr,
            fmt="o",
            ms=3.5,
            capsize=1.5,
            elinewidth=0.8,
            label=f"{' '.join(map(str, values))}{MACHINE_SEP}{where}",
        )
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("work per step (GFLOP, useful)")
    ax.set_ylabel(ylabel)
    outside_legend(fig, ax)
    file = save(fig, folder, name, question)
    with_ci = p.dropna(subset=["low"])
    ci_note = (
        f" Bars: 95% CI of each case's ratio from the raw samples ({len(with_ci)} of {len(p)} cases; "
        f"the narrowest ±{((with_ci['high'] - with_ci['low']) / 2 / with_ci['ratio']).min():.1%}, "
        f"the widest ±{((with_ci['high'] - with_ci['low']) / 2 / with_ci['ratio']).max():.1%})."
        if not with_ci.empty
        else " No bars: the runs' raw samples files are missing."
    )
    return [Heading(title), Paragraph(sentence + ci_note), Image(file, title)]


def answered(
    p: pd.DataFrame, folder: Path, found: Answer, name: str, ylabel: str, question: str | None = None, **kw
) -> Blocks:
    """``ratio_section`` for a question's answer: the pairs it counts (right outputs), its sentence."""
    right = p[~(wrong_outputs(p, "_a") | wrong_outputs(p, "_b"))]
    return ratio_section(right, folder, name, ylabel, found.question.section, found.sentence(), question, **kw)


def ratio_summary(ratio: pd.Series, what: str) -> str:
    """``what: median 0.83× over 40 matched cases (range 0.09× to 1.97×).``"""
    return (
        f"{what}: median {ratio.median():.2f}× over {len(ratio)} matched cases "
        f"(range {ratio.min():.2f}× to {ratio.max():.2f}×)."
    )


def lstm_vs_gru(df: pd.DataFrame, folder: Path) -> Blocks:
    found = answer(df, "model")
    p = pairs(df, "model", "gru", "lstm")
    if p.empty:
        return [Heading(MODELS), Paragraph(missing_note("both models on the same cases", "--model lstm,gru"))]
    return answered(
        p, folder, found, "lstm_vs_gru", "GRU time / LSTM time", "Is a GRU step faster than an LSTM step?",
        colour=("varlen", "mode"),
    )  # fmt: skip


def cpu_vs_gpu(df: pd.DataFrame, folder: Path) -> Blocks:
    # Thread counts differ between machines and do not make a case different here.
    p = pairs(df, "device", "cuda", "cpu", ignore=["threads"])
    if p.empty:
        return [Heading(DEVICES), Paragraph(missing_note("the same cases on CPU and GPU", "--device cpu,cuda"))]
    return answered(p, folder, answer(df, "device"), "cpu_vs_gpu", "GPU time / CPU time")


def across_machines(df: pd.DataFrame, folder: Path) -> Blocks:
    """The same cases on two machines (or more, each against the first), as time ratios."""
    found = answer(df, "machine")
    if not found.found:
        return []  # one machine, or machines with no case in common: nothing to say
    a, b = sides(found.question, ok_rows(df))[0]
    p = pairs(df, "machine", a, b)
    return answered(p, folder, found, "machines", f"time on {a} / on {b}", colour=("model", "mode"))


def backend(df: pd.DataFrame, folder: Path) -> Blocks:
    p = pairs(df, "backend", "native", "default")
    if p.empty:
        return [
            Heading(BACKEND),
            Paragraph(missing_note("default and native backends on the same cases", "--backend default,native")),
        ]
    return answered(
        p, folder, answer(df, "native"), "backend", "native time / default time",
        "What do cuDNN/oneDNN kernels save? Native time / default time", colour=("model", "mode"),
    )  # fmt: skip


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
            sentence = ratio_summary(p["median_ms_a"] / p["median_ms_b"], what)
            blocks += ratio_section(p, folder, name, what, f"{model} vs {suite}", sentence)[1:]
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
