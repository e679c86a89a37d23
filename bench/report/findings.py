"""The report's opening: what the run covers, and one finding per question a reader brings.

Each finding is a ratio of medians between variants measured on the same cases
(``slices.pairs``): its median over the matched cases with a 95% CI, the cases
it holds for, and the section (with its plot) that shows it. The CI is a
percentile bootstrap of the median over the cases (scipy) where there are three
or more; for fewer, the ratio of the cases' own CI ends (the widest interval
their medians allow). A question the run has no axis for says which flags add it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.compare import bootstrap_ci
from bench.report.document import Blocks, Findings, Heading, Paragraph
from bench.report.sections_scaling import THREADS_TITLE
from bench.report.slices import ok_rows, pairs, ratio_bounds

TITLE = "Key findings"
MIN_BOOTSTRAP_CASES = 3


@dataclass(frozen=True)
class Question:
    """What a reader asks, the axis that answers it, and where the report shows it."""

    label: str  # "packed / padded time"
    axis: str
    a: object  # the ratio is time at a / time at b
    b: object
    section: str  # the heading of the section with its plot
    flags: str  # what adds the axis to a run
    by: tuple[str, ...] = ()  # one finding per value of these columns
    ignore: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()  # only these varlen values (padded input misreads bidirectional models)


QUESTIONS = (
    Question(
        "packed / padded time",
        "varlen",
        "packed",
        "padded",
        "Packed vs padded",
        "--varlen padded,packed",
        by=("model", "mode", "lengths"),  # LSTM and GRU can pack in opposite directions
    ),
    Question(
        "exact padding / packed time",
        "varlen",
        "exact",
        "packed",
        "Implementations and exact padding",
        "--varlen packed,exact",
        by=("mode",),
    ),
    Question(
        "native kernels / cuDNN-oneDNN time",
        "backend",
        "native",
        "default",
        "Backend: cuDNN/oneDNN vs native kernels",
        "--backend default,native",
        by=("device",),
    ),
    Question(
        "torch.compile / eager time (warm)",
        "impl",
        "compiled",
        "module",
        "Implementations and exact padding",
        "--impl module,compiled",
    ),
    Question(
        "2 layers / 1 layer time (packed or exact input)",
        "num_layers",
        2,
        1,
        "Cost of depth and direction",
        "--num-layers 1,2 --varlen packed",
        inputs=("packed", "exact"),
    ),
    Question(
        "bidirectional / one-way time (packed or exact input)",
        "bidirectional",
        True,
        False,
        "Cost of depth and direction",
        "--bidirectional false,true --varlen packed",
        inputs=("packed", "exact"),
    ),
    Question("GRU / LSTM time", "model", "gru", "lstm", "LSTM vs GRU", "--model lstm,gru", by=("mode",)),
    Question("GPU / CPU time", "device", "cuda", "cpu", "CPU vs GPU", "--device cpu,cuda", ignore=("threads",)),
)


def ratio_ci(ratios: np.ndarray, low: np.ndarray, high: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% CI of the median ratio: bootstrap over cases, or the cases' own CI ends when few."""
    if ratios.size >= MIN_BOOTSTRAP_CASES and np.ptp(ratios) > 0:
        return bootstrap_ci((ratios,), np.median, np.random.default_rng(seed))
    return float(np.median(low)), float(np.median(high))


def _ratios(p: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    low, high = ratio_bounds(p)
    return (p["median_ms_a"] / p["median_ms_b"]).to_numpy(), low.to_numpy(), high.to_numpy()


def _group_label(keys: tuple, by: tuple[str, ...], p: pd.DataFrame) -> str:
    parts = []
    for name, value in zip(by, keys, strict=True):
        if name == "lengths" and str(value).startswith("pad:"):
            parts.append(f"{float(str(value)[4:]):.0%} padding")
        elif name == "lengths":
            parts.append(f"{value} lengths, {p['padding_fraction_b'].median():.0%} padding")
        else:
            parts.append(str(value))
    return ", ".join(parts)


def answer(df: pd.DataFrame, q: Question) -> list[str]:
    """The question's findings: one sentence per group, or what to add to the run."""
    rows = df[df["varlen"].isin(q.inputs)] if q.inputs else df
    p = pairs(rows, q.axis, q.a, q.b, ignore=q.ignore)
    if p.empty:
        return [f"{q.label}: not in this run (add `{q.flags}` to `python -m bench run`)."]
    # pairs() suffixes the varied axis; the by-columns are kept unless they are the axis.
    by = tuple(b for b in q.by if b in p.columns)
    groups = p.groupby(list(by), sort=True) if by else [((), p)]
    found = []
    for keys, g in groups:
        keys = keys if isinstance(keys, tuple) else (keys,)
        where = f" ({_group_label(keys, by, g)})" if by else ""
        found.append(f"{q.label}{where}: {_summary(g)}.")
    return found


def _summary(p: pd.DataFrame) -> str:
    """Pooled over three or more cases (median, bootstrap CI, range); fewer are given one by one,
    each with its own interval: a median of two unlike cases would describe neither."""
    ratio, low, high = _ratios(p)
    if len(p) >= MIN_BOOTSTRAP_CASES:
        lo, hi = ratio_ci(ratio, low, high)
        return (
            f"{np.median(ratio):.2f}× (95% CI {lo:.2f}–{hi:.2f}) over {len(p)} cases, "
            f"range {ratio.min():.2f}× to {ratio.max():.2f}×"
        )
    names = [_case_name(r, p) for _, r in p.iterrows()]
    return "; ".join(
        f"{name} {r:.2f}× (95% CI {a:.2f}–{b:.2f})" for name, r, a, b in zip(names, ratio, low, high, strict=True)
    )


NAME_AXES = (("model", ""), ("batch_size", "b"), ("seq_len", "L"), ("num_layers", "n"), ("threads", "t"), ("dtype", ""))


def _case_name(row: pd.Series, group: pd.DataFrame) -> str:
    """A short name for one matched pair: model, batch and length, and any other axis on which
    the group's pairs differ (the varied axis is read from its ``a`` side)."""

    def column(axis: str) -> str:
        return axis if axis in group.columns else f"{axis}_a"

    shown = [(a, prefix) for a, prefix in NAME_AXES[:3]]
    shown += [(a, prefix) for a, prefix in NAME_AXES[3:] if group[column(a)].nunique() > 1]
    return " ".join(f"{prefix}{row[column(a)]}" for a, prefix in shown)


def threads_finding(df: pd.DataFrame) -> list[str]:
    """Speed-up from 1 thread to the most threads measured, on the same CPU cases."""
    cpu = ok_rows(df)[lambda d: d["device"] == "cpu"]
    most = int(cpu["threads"].max()) if not cpu.empty else 0
    if most <= 1 or not (cpu["threads"] == 1).any():
        return ["threads: not in this run (add `--threads 1,2` or more to `python -m bench run`)."]
    p = pairs(cpu, "threads", 1, most)
    if p.empty:
        return ["threads: not in this run (add `--threads 1,2` or more to `python -m bench run`)."]
    return [f"{most} threads speed-up over 1 (time at 1 / time at {most}): {_summary(p)}."]


def compile_time_finding(df: pd.DataFrame) -> list[str]:
    rows = ok_rows(df)
    compiled = rows[(rows["impl"] == "compiled") & rows["compile_s"].notna()]
    if compiled.empty:
        return []
    return [
        f"torch.compile's first (compiling) step: median {compiled['compile_s'].median():.1f} s over "
        f"{len(compiled)} case(s) (range {compiled['compile_s'].min():.1f} to {compiled['compile_s'].max():.1f} s)."
    ]


def efficiency_finding(df: pd.DataFrame) -> list[str]:
    rows = ok_rows(df).dropna(subset=["efficiency"])
    if rows.empty:
        return []
    top = rows.loc[rows["efficiency"].idxmax()]
    above = int((rows["efficiency"] > 1).sum())
    caveat = (
        f" {above} case(s) exceed 100%: on this machine torch's n×n matmul, the peak measured, is slower "
        "than the RNN kernels themselves, so the percentage is against that matmul, not the hardware."
        if above
        else ""
    )
    return [
        f"efficiency against the measured matmul peak: median {rows['efficiency'].median():.1%} over "
        f"{len(rows)} cases, at most {top['efficiency']:.1%} ({top['model']} {top['mode']}, batch "
        f"{top['batch_size']}, length {top['seq_len']}, on {top['machine']}).{caveat}"
    ]


def scope(df: pd.DataFrame) -> str:
    """One sentence on what the run covers."""

    def values(column: str, fmt: Callable[[object], str] = str) -> str:
        found = sorted(df[column].dropna().unique(), key=lambda v: (str(type(v)), v))
        return ", ".join(fmt(v) for v in found)

    machines = sorted(
        {f"{r['cpu_model']}" + (f" + {r['gpu_name']}" if r["gpu_name"] else "") for _, r in df.iterrows()}
    )
    return (
        f"Scope: devices {values('device')}; dtypes {values('dtype')}; batch sizes {values('batch_size')}; "
        f"lengths {values('seq_len')} (distributions {values('lengths')}); threads {values('threads')}; "
        f"torch {values('torch_version')}; on {'; '.join(machines)}."
    )


def findings(df: pd.DataFrame) -> Blocks:
    """The scope and the findings, each linked to its section."""
    rows = ok_rows(df)
    if rows.empty:
        return []
    items: list[tuple[str, str]] = []
    for q in QUESTIONS:
        items += [(text, q.section) for text in answer(rows, q)]
    items += [(text, THREADS_TITLE) for text in threads_finding(rows)]
    items += [(text, "Implementations and exact padding") for text in compile_time_finding(rows)]
    items += [(text, "Efficiency against the measured peak") for text in efficiency_finding(rows)]
    return [Heading(TITLE), Paragraph(scope(rows)), Findings(items)]
