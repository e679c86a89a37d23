"""Report section "Streaming": the latency of a call and its tail, per implementation.

Stream rows (``mode=stream``) time one call each: every stream's next chunk, the state
carried. Their percentiles come with distribution-free 95% CIs (``bench.core.stats``); a
percentile with too few calls for one is left empty, and said so. The plot draws each
implementation's latency against the percentile from the raw calls; the table gives every
stream row; the findings name the tail at one stream and the fastest implementation there,
judged on p99, among implementations whose streamed outputs equal a whole-sequence forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.core.stats import PERCENTILES
from bench.report.document import Blocks, Heading, Image, Paragraph, Table
from bench.report.plotting import MACHINE_SEP, new_figure, outside_legend, save
from bench.report.samples import SampleStore
from bench.report.slices import AXIS_NAMES, EXACT_TOL, ok_rows

TITLE = "Streaming: latency per call and its tail"
# What makes two stream rows the same shape: every axis but the implementation, and the machine.
SHAPE = [a for a in AXIS_NAMES if a != "impl"] + ["machine"]
# The shape the findings and the plot read, per model, device and machine: one stream (or the
# fewest), the largest hidden size, the smallest chunk; every other axis at its most common value.
PICK = {"batch_size": min, "hidden_size": max, "chunk": min}
# The plot's x axis: -log10(1 - q) puts p50, p90, p99 and p99.9 evenly apart.
TICKS = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p99.9": 0.999}
CURVE_Q = np.concatenate([np.linspace(0.5, 0.9, 21), 1 - np.logspace(-1, -3, 41)[1:]])


def stream_rows(df: pd.DataFrame) -> pd.DataFrame:
    return ok_rows(df)[ok_rows(df)["mode"] == "stream"]


def ci_text(row: pd.Series, name: str, digits: int = 3) -> str:
    """``0.172 (0.16–0.19)`` for a percentile with its CI; ``–`` where too few calls gave none."""
    value = row.get(f"{name}_ms")
    if value is None or pd.isna(value):
        return "–"
    low, high = row[f"{name}_ci_low_ms"], row[f"{name}_ci_high_ms"]
    return f"{value:.{digits}g} ({low:.{digits}g}–{high:.{digits}g})"


def headline_shape(group: pd.DataFrame) -> pd.DataFrame:
    """The rows of one shape (``PICK``; other axes at their most common value): its implementations."""
    for axis in SHAPE:
        if axis in ("model", "device", "machine") or group[axis].nunique() < 2:
            continue
        pick = PICK.get(axis)
        value = pick(group[axis]) if pick is not None else group[axis].value_counts().index[0]
        group = group[group[axis] == value]
    return group.drop_duplicates("impl")


def is_right(row: pd.Series) -> bool:
    """Streamed outputs and final states equal a whole-sequence forward (a recorded error only)."""
    errors = [row.get("max_abs_err"), row.get("state_max_abs_err")]
    return all(e is not None and not pd.isna(e) and e <= EXACT_TOL for e in errors)


@dataclass(frozen=True)
class Fastest:
    """The fastest right implementation of a shape at p99, and whether the next one is told apart."""

    winner: pd.Series
    runner_up: pd.Series | None
    tie: bool  # the two p99 CIs overlap: not told apart
    faster_inexact: pd.Series | None  # an implementation with a lower p99 whose outputs are not right


def fastest_at_p99(shape: pd.DataFrame) -> Fastest | None:
    """Among a shape's rows with a p99 and right outputs, the lowest p99; a tie where the
    runner-up's CI overlaps the winner's (a conservative test: overlapping CIs are never called
    different)."""
    with_p99 = shape[shape["p99_ms"].notna()]
    if with_p99.empty:
        return None
    right_mask = pd.Series([is_right(r) for _, r in with_p99.iterrows()], index=with_p99.index, dtype=bool)
    right = with_p99[right_mask].sort_values("p99_ms")
    if right.empty:
        return None
    winner = right.iloc[0]
    runner_up = right.iloc[1] if len(right) > 1 else None
    tie = runner_up is not None and runner_up["p99_ci_low_ms"] <= winner["p99_ci_high_ms"]
    # Faster and wrong, by a recorded error (a row never checked is neither right nor shown as wrong).
    errors = with_p99["max_abs_err"].notna()
    inexact = with_p99[~right_mask & errors & (with_p99["p99_ci_high_ms"] < winner["p99_ci_low_ms"])]
    faster = inexact.sort_values("p99_ms").iloc[0] if not inexact.empty else None
    return Fastest(winner, runner_up, bool(tie), faster)


def shape_name(row: pd.Series, device: bool = True) -> str:
    streams = "stream" if row["batch_size"] == 1 else "streams"
    model = row["model"].upper() if row["model"] in ("lstm", "gru") else row["model"]
    name = f"{model} H{row['hidden_size']}, {row['batch_size']} {streams}, chunk {row['chunk']}"
    where = f"{row['device']}, {row['threads']} thread{'s' if row['threads'] != 1 else ''}"
    return f"{name}, {where}" if device else name


def finding_lines(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(label, text) per model and device: the tail at one stream, for the largest hidden size and
    the smallest chunk run there, and the fastest right implementation at p99."""
    rows = stream_rows(df)
    out = []
    for (model, device, machine), group in rows.groupby(["model", "device", "machine"], sort=True):
        one = headline_shape(group)
        best = fastest_at_p99(one)
        module = one[one["impl"] == "module"]
        base = module.iloc[0] if not module.empty else (best.winner if best else one.iloc[0])
        name = shape_name(base)
        if pd.isna(base["p99_ms"]):
            calls = int(base["samples"])
            text = f"{name}: too few calls for a p99 with a CI ({calls} calls); p50 {ci_text(base, 'p50')} ms"
        else:
            text = (
                f"{name}, {base['impl']}: p99 per call {ci_text(base, 'p99')} ms (95% CI), p50 "
                f"{ci_text(base, 'p50')} ms, p99/p50 {base['p99_ms'] / base['p50_ms']:.2f}"
            )
            if pd.notna(base.get("stream_overhead")):
                text += f"; streaming a whole sequence took {base['stream_overhead']:.2f}× one forward over it"
        if best is not None and len(one) > 1:
            w = best.winner
            text += f"; fastest at p99 of {len(one)} implementations: {w['impl']} ({w['p99_ms']:.3g} ms)"
            if best.runner_up is not None:
                r = best.runner_up
                verdict = "a tie (their CIs overlap)" if best.tie else "told apart (their CIs do not overlap)"
                text += f", next {r['impl']} ({r['p99_ms']:.3g} ms), {verdict}"
            if best.faster_inexact is not None:
                f = best.faster_inexact
                text += f"; {f['impl']} is faster still but off by {f['max_abs_err']:.1g}"
        out.append((f"streaming tail ({model}, {device}, {machine})", text))
    return out


def percentile_plot(rows: pd.DataFrame, out_dir: Path) -> list[Image]:
    """Per model, latency against percentile at the findings' shape, one line per implementation,
    from the raw calls; the rows' percentiles with their CIs as bars."""
    store = SampleStore()
    panels = []
    for (_, _, machine), group in rows.groupby(["model", "device", "machine"], sort=True):
        one = headline_shape(group)
        panels.append((shape_name(one.iloc[0], device=False), machine, one))
    if not panels:
        return []
    fig, axes = new_figure(ncols=len(panels), height=4.0)
    tail = lambda q: -np.log10(1 - np.asarray(q))  # noqa: E731
    machines = sorted({machine for _, machine, _ in panels})
    for ax, (title, machine, one) in zip(axes[0], panels, strict=True):
        for _, row in one.sort_values("impl").iterrows():
            samples = store.steps(row["source_path"], row["case_id"])
            if samples is None or samples.ms.size < 2:
                continue
            reach = 1 - 1 / samples.ms.size  # no further than the calls reach
            qs = CURVE_Q[reach >= CURVE_Q]
            (line,) = ax.plot(tail(qs), np.quantile(samples.ms, qs), label=row["impl"], linewidth=1.4)
            for name, q in PERCENTILES.items():
                if pd.notna(row[f"{name}_ms"]):
                    low, high = row[f"{name}_ci_low_ms"], row[f"{name}_ci_high_ms"]
                    ax.errorbar(
                        tail(q),
                        row[f"{name}_ms"],
                        yerr=[[row[f"{name}_ms"] - low], [high - row[f"{name}_ms"]]],
                        fmt="o",
                        markersize=3,
                        color=line.get_color(),
                        capsize=2,
                    )
        ax.set_yscale("log")
        ax.set_xticks(tail(list(TICKS.values())), list(TICKS))
        ax.set_xlabel("percentile of calls")
        ax.set_ylabel("latency per call (ms)")
        ax.set_title(title if len(machines) == 1 else f"{title}{MACHINE_SEP}{machine}")
    outside_legend(fig, axes[0][0])
    question = "How long does a call take, up to its tail?"
    file = save(fig, out_dir, "stream_percentiles", f"{question} ({machines[0]})" if len(machines) == 1 else question)
    alt = "latency per call against percentile, log scale, one line per implementation"
    return [Image(file, alt)]


def table(rows: pd.DataFrame) -> Table:
    header = [
        "shape",
        "impl",
        "calls",
        "p50 ms (CI)",
        "p90 ms (CI)",
        "p99 ms (CI)",
        "p99.9 ms (CI)",
        "p99/p50",
        "tokens/s",
        "cold call ms",
        "stream/forward",
        "max err",
    ]
    body = []
    for _, r in rows.sort_values([*SHAPE, "impl"]).iterrows():
        ratio = r["p99_ms"] / r["p50_ms"] if pd.notna(r["p99_ms"]) else np.nan
        body.append(
            [
                shape_name(r),
                r["impl"],
                f"{int(r['samples'])}",
                ci_text(r, "p50"),
                ci_text(r, "p90"),
                ci_text(r, "p99"),
                ci_text(r, "p99_9"),
                "–" if pd.isna(ratio) else f"{ratio:.2f}",
                f"{r['tokens_per_s']:.3g}",
                "–" if pd.isna(r["cold_call_ms"]) else f"{r['cold_call_ms']:.3g}",
                "–" if pd.isna(r["stream_overhead"]) else f"{r['stream_overhead']:.2f}×",
                "–" if pd.isna(r["max_abs_err"]) else f"{r['max_abs_err']:.1g}",
            ]
        )
    return Table(header, body, sortable=True)


def streaming(df: pd.DataFrame, out_dir: Path) -> Blocks:
    rows = stream_rows(df)
    if rows.empty:
        return []
    intro = (
        "Each stream is fed its sequence a chunk at a time, the state carried from call to call; a call feeds "
        "every stream its next chunk and is one sample. Percentiles are over every call of every round, each "
        "with a distribution-free 95% CI from order statistics, widened to the rounds' own interval where every "
        "round had the calls for one. A percentile needs 1 - q^n >= 97.5% for its CI (p90: 36 calls, p99: 368, "
        "p99.9: 3688); with fewer calls it is left empty (–). tokens/s is every stream's tokens over the mean "
        "call. The cold call is the first after the model was built (a compiled step compiles in it). "
        "stream/forward is the time to stream a whole sequence (mean call × calls per sequence) over one eager "
        "nn.LSTM/nn.GRU forward over the same sequences. Every stream's outputs, concatenated, are checked "
        f"against that forward (max err; right within {EXACT_TOL:g})."
    )
    lines = [Paragraph(f"{label}: {text}.") for label, text in finding_lines(rows)]
    return [Heading(TITLE), Paragraph(intro), *lines, *percentile_plot(rows, out_dir), table(rows)]
