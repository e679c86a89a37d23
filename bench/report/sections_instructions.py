"""Instruction counts (``bench run --metric instructions``): work per step and per token, and
the packed/padded/exact ratios in instructions next to the same ratios in time.

A ratio in instructions is the work one variant does over the other's; the same ratio in
time adds what the machine makes of that work (caches, vector units, threads). Where the
two agree, the difference is work; where they part, it is the machine.
"""

from __future__ import annotations

import pandas as pd

from bench.report.document import Blocks, Heading, Paragraph, Table
from bench.report.slices import AXIS_NAMES, ok_rows, short_label

TITLE = "Instruction counts"
VARIANTS = (("packed", "padded"), ("exact", "padded"), ("exact", "packed"))


def valid_tokens(rows: pd.DataFrame) -> pd.Series:
    return rows["batch_size"] * rows["seq_len"] * (1 - rows["padding_fraction"].fillna(0.0))


def instructions(counted: pd.DataFrame, timed: pd.DataFrame) -> Blocks:
    """The instruction rows' table, and variant ratios in instructions beside time where both exist."""
    rows = ok_rows(counted)
    if rows.empty:
        return []
    rows = rows.assign(per_token=rows["instructions"] / valid_tokens(rows)).sort_values(
        ["model", "mode", "num_layers", "bidirectional", "batch_size", "seq_len", "varlen"]
    )
    out: Blocks = [
        Heading(TITLE),
        Paragraph(
            "Instructions per step (one forward call over one batch; forward and backward for training) as "
            "callgrind counted them on one thread: the median of each case's counted steps, and their spread "
            "((max - min) / median). Counts repeat exactly for the same code, torch and CPU kernel level, "
            "whatever else the machine runs; they miss what time sees of caches, memory and threads."
        ),
        Table(
            ["case", "M instructions", "per valid token", "spread", "fwd / bwd (M)", "CPU kernels"],
            [
                [
                    short_label(r),
                    f"{r['instructions'] / 1e6:.3f}",
                    f"{r['per_token']:,.0f}",
                    f"{r['instructions_spread']:.2%}",
                    ""
                    if pd.isna(r["fwd_instructions"])
                    else f"{r['fwd_instructions'] / 1e6:.3f} / {r['bwd_instructions'] / 1e6:.3f}",
                    r["cpu_capability"],
                ]
                for _, r in rows.iterrows()
            ],
        ),
    ]
    ratios = variant_ratios(rows, ok_rows(timed))
    if ratios:
        out += [
            Paragraph(
                "The same variant ratio in instructions and in time, on the same shape (time from a time run of "
                "the same cases, where one was given): a ratio that holds in both is work; one that appears only "
                "in time is the machine."
            ),
            Table(["shape", "ratio", "instructions", "time"], ratios),
        ]
    return out


def variant_ratios(counted: pd.DataFrame, timed: pd.DataFrame) -> list[list[str]]:
    """Rows of (shape, which ratio, in instructions, in time) for each pair of varlen variants."""
    shape = [a for a in AXIS_NAMES if a != "varlen"]
    found = []
    for a, b in VARIANTS:
        left, right = counted[counted["varlen"] == a], counted[counted["varlen"] == b]
        joined = left.merge(right, on=shape, suffixes=("_a", "_b"))
        for _, r in joined.iterrows():
            time_text = ""
            same = timed
            for axis in shape:
                same = same[same[axis] == r[axis]]
            ta, tb = same[same["varlen"] == a], same[same["varlen"] == b]
            if not ta.empty and not tb.empty:
                time_text = f"{ta['median_ms'].median() / tb['median_ms'].median():.2f}x"
            label = short_label(r.rename(lambda c: c.removesuffix("_a")))
            ratio = r["instructions_a"] / r["instructions_b"]
            found.append([label.replace(f" {a}", ""), f"{a} / {b}", f"{ratio:.2f}x", time_text])
    return found
