"""Pick comparable rows out of a mixed results frame.

A plot varies a few axes and must hold every other axis fixed; ``typical``
fixes each of those at its most common value among the ok rows, so a plot reads
the biggest consistent slice of whatever sweep was run.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bench.spec import AXES

# Axes that tell series apart in every plot rather than being fixed.
SERIES = ("model", "device", "machine")
AXIS_NAMES = [a.name for a in AXES]
# Fixed at this value where present, whatever is most common: the other
# sections are about the nn.LSTM/nn.GRU modules, not the naive or compiled variants,
# and about float32 as float32.
PREFERRED = {"impl": "module", "tf32": "off"}
# Below this a result counts as right against packing: float32 sums in another order
# differ by ~1e-7, while reading the padding drifts by ~1e-2 and up.
EXACT_TOL = 1e-4


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "ok"]


def typical(df: pd.DataFrame, vary: Sequence[str], keep: Sequence[str] = SERIES) -> pd.DataFrame:
    """Ok rows where every axis not in ``vary``/``keep`` has its most common value."""
    rows = ok_rows(df)
    for axis in AXIS_NAMES:
        if axis in vary or axis in keep or rows.empty:
            continue
        value = PREFERRED.get(axis)
        if value is None or not (rows[axis] == value).any():
            value = rows[axis].mode().iloc[0]
        rows = rows[rows[axis] == value]
    return rows


def pairs(df: pd.DataFrame, axis: str, a: object, b: object, ignore: Sequence[str] = ()) -> pd.DataFrame:
    """Ok rows with ``axis == a`` joined to those with ``axis == b``, all else equal.

    Columns of the two sides get suffixes ``_a`` and ``_b``; ``ignore`` lists
    axes that may differ too (e.g. ``threads`` between a CPU and a GPU machine).
    """
    rows = ok_rows(df)
    on = [c for c in AXIS_NAMES if c not in (axis, *ignore)]
    if axis != "device":
        on.append("machine")
    left = rows[rows[axis] == a]
    right = rows[rows[axis] == b]
    return left.merge(right, on=on, suffixes=("_a", "_b"))


def ratio_bounds(p: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The widest interval of a/b that the two medians' 95% CIs allow, for ``pairs`` rows."""
    return p["ci_low_ms_a"] / p["ci_high_ms_b"], p["ci_high_ms_a"] / p["ci_low_ms_b"]


def short_label(row: pd.Series) -> str:
    """A compact case name for axis labels: ``lstm b32 L64 2×bi packed train``."""
    parts = [row["model"], f"b{row['batch_size']}", f"L{row['seq_len']}"]
    parts.append(f"{row['num_layers']}×{'bi' if row['bidirectional'] else 'uni'}")
    parts.append(row["varlen"])
    if row["impl"] != "module":
        parts.append(row["impl"])
    if row["mode"] == "training":
        parts.append("train")
    return " ".join(str(p) for p in parts)


def missing_note(what: str, how: str) -> str:
    return (
        f"Not shown: the data lacks {what}. To get it, add `{how}` to `python -m bench run` "
        "(or merge CSVs that have it)."
    )
