"""Pick comparable rows out of a mixed results frame.

A plot varies a few axes and must hold every other axis fixed; ``typical``
picks the slice in which the varied axes vary most, so a section reads the
biggest consistent slice of whatever sweep was run that shows its axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bench.core.cases import AXES

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
    """Ok rows of one slice: every axis not in ``vary``/``keep`` fixed at one value.

    The slice is the combination of fixed values under which the ``vary`` axes take the most
    distinct combinations (a section about threads finds its 1- and 2-thread rows wherever the
    run put them), then the one at the ``PREFERRED`` values, then the one with the most rows,
    then the one at the most common values.
    """
    rows = ok_rows(df)
    fixed = [a for a in AXIS_NAMES if a not in vary and a not in keep]
    if rows.empty or not fixed:
        return rows
    present = [a for a in vary if a in rows.columns]
    common = {a: rows[a].value_counts() for a in fixed}

    def score(key: tuple, g: pd.DataFrame) -> tuple:
        values = dict(zip(fixed, key, strict=True))
        coverage = len(g[present].drop_duplicates()) if present else 0
        preferred = sum(values[a] == v for a, v in PREFERRED.items() if a in values)
        commonness = sum(int(common[a].get(values[a], 0)) for a in fixed)
        return (coverage, preferred, len(g), commonness)

    groups = rows.groupby(fixed, sort=True, dropna=False)
    best = max(groups, key=lambda kg: score(kg[0] if isinstance(kg[0], tuple) else (kg[0],), kg[1]))
    return best[1]


def pairs(df: pd.DataFrame, axis: str, a: object, b: object, ignore: Sequence[str] = ()) -> pd.DataFrame:
    """Ok rows with ``axis == a`` joined to those with ``axis == b``, all else equal.

    Columns of the two sides get suffixes ``_a`` and ``_b``; ``ignore`` lists
    axes that may differ too (e.g. ``threads`` between a CPU and a GPU machine).
    """
    rows = ok_rows(df)
    on = [c for c in AXIS_NAMES if c not in (axis, *ignore)]
    if axis not in ("device", "machine"):
        on.append("machine")
    left = rows[rows[axis] == a]
    right = rows[rows[axis] == b]
    return left.merge(right, on=on, suffixes=("_a", "_b"))


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
