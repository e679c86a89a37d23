"""Report section "Fastest correct way to run it": per shape, the quickest variant whose results are right.

A shape is a case without its variant axes (``varlen``, ``impl``): model, mode, device,
batch, length and the rest, on one machine. Its candidates are the variants whose
outputs and final states agree with the packed ``module`` reference within
``EXACT_TOL`` (a variant with no recorded error is not a candidate: it cannot be
called right). The fastest candidate is named with its speed-up over plain
``nn.LSTM``/``nn.GRU`` padded and packed and the 95% CI of each ratio; a runner-up
whose ratio CI reaches 1 makes it a tie, said as such; and a less exact variant
(int8, plain padding) that is faster still is shown beside it with its error,
as an accuracy cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench.report.answers import case_ratio_ci, is_faster, is_right
from bench.report.document import Blocks, Heading, Paragraph, Table
from bench.report.slices import AXIS_NAMES, EXACT_TOL, missing_note, ok_rows

TITLE = "Fastest correct way to run it"
VARIANT_AXES = ("varlen", "impl")
SHAPE_COLUMNS = [c for c in AXIS_NAMES if c not in VARIANT_AXES] + ["machine"]
# Shown in a shape's name when they vary in the data (model, mode, device, batch and length always are).
NAME_AXES = ("num_layers", "bidirectional", "dtype", "lengths", "embedding_dim", "hidden_size", "threads", "backend")
HOW = "--impl module,compiled,onnxruntime,quantized --varlen padded,packed,exact --side-by-side (or --preset runtimes)"


@dataclass(frozen=True)
class Ratio:
    """A time ratio a/b with its 95% CI, read as a speed-up b/a."""

    ratio: float
    low: float
    high: float

    @property
    def faster(self) -> bool:
        return bool(is_faster(self.ratio, self.high))

    def speedup_text(self) -> str:
        return f"{1 / self.ratio:.2f}× ({1 / self.high:.2f}–{1 / self.low:.2f})"


@dataclass(frozen=True)
class Fastest:
    """One shape's answer."""

    shape: pd.Series  # the winner's row
    name: str
    winner: str  # impl·varlen
    over_padded: Ratio | None  # winner / module·padded time
    over_packed: Ratio | None  # winner / module·packed time
    runner_up: str | None
    tie: bool  # the runner-up's time is not told apart from the winner's
    versus_runner_up: Ratio | None  # winner / runner-up time
    inexact: str | None  # a faster variant that is not right, with its ratio and error


def right(rows: pd.DataFrame) -> pd.Series:
    """The report's "right" (outputs and states within EXACT_TOL), and only where an output error
    was recorded: a variant nobody checked is not called right here."""
    return is_right(rows) & rows["max_abs_err"].notna()


def ratio_of(a: pd.Series, b: pd.Series) -> Ratio:
    columns = ("median_ms", "ci_low_ms", "ci_high_ms")
    pair = pd.DataFrame({f"{col}_{side}": [row[col]] for col in columns for side, row in (("a", a), ("b", b))})
    r, low, high = (float(v[0]) for v in case_ratio_ci(pair))
    return Ratio(r, low, high)


def error_text(row: pd.Series) -> str:
    """How far a row is from the packed reference: outputs, and final states where recorded."""
    parts = [f"outputs off by up to {row['max_abs_err']:.1g}"] if pd.notna(row["max_abs_err"]) else []
    if pd.notna(row["state_max_abs_err"]):
        parts.append(f"final states by {row['state_max_abs_err']:.1g}")
    return ", ".join(parts)


def _name(row: pd.Series, varying: list[str]) -> str:
    parts = [str(row["model"]), str(row["mode"]), str(row["device"]), f"b{row['batch_size']}", f"L{row['seq_len']}"]
    parts += [f"{axis}={row[axis]}" for axis in varying]
    return " ".join(parts)


def fastest_by_shape(df: pd.DataFrame) -> list[Fastest]:
    """Each shape with a right variant and a plain module to compare with, answered."""
    rows = ok_rows(df)
    if rows.empty:
        return []
    rows = rows.assign(variant=rows["impl"] + "·" + rows["varlen"])
    varying = [a for a in NAME_AXES if rows[a].nunique() > 1]
    answers = []
    for _, g in rows.groupby(SHAPE_COLUMNS, sort=True, dropna=False):
        module = g[g["impl"] == "module"]
        padded = module[module["varlen"] == "padded"]
        packed = module[module["varlen"] == "packed"]
        good = g[right(g)].sort_values("median_ms")
        if good.empty or (padded.empty and packed.empty) or g["variant"].nunique() < 2:
            continue
        win = good.iloc[0]
        up = good.iloc[1] if len(good) > 1 else None
        versus_up = ratio_of(win, up) if up is not None else None
        recorded = g["max_abs_err"].notna() | g["state_max_abs_err"].notna()
        quicker = g[recorded & ~right(g) & (g["median_ms"] < win["median_ms"])].sort_values("median_ms")
        inexact = None
        if not quicker.empty:
            q = quicker.iloc[0]
            r = ratio_of(q, win)
            if r.faster:
                inexact = f"{q['variant']}: {r.speedup_text()} faster still; {error_text(q)}"
        answers.append(
            Fastest(
                shape=win,
                name=_name(win, varying),
                winner=win["variant"],
                over_padded=_over(win, padded, "module·padded"),
                over_packed=_over(win, packed, "module·packed"),
                runner_up=up["variant"] if up is not None else None,
                tie=versus_up is not None and not versus_up.faster,
                versus_runner_up=versus_up,
                inexact=inexact,
            )
        )
    return answers


def _over(win: pd.Series, base: pd.DataFrame, name: str) -> Ratio | None:
    """The winner's time over a plain module's (None: not run, or the winner is it)."""
    return ratio_of(win, base.iloc[0]) if not base.empty and win["variant"] != name else None


def _speedup(r: Ratio | None, same: bool) -> str:
    if same:
        return "(it is this)"
    return r.speedup_text() if r is not None else "not run"


def _table(answers: list[Fastest]) -> Table:
    rows = []
    for a in answers:
        w = a.shape
        ci = f"{w['median_ms']:.3g} ms ({w['ci_low_ms']:.3g}–{w['ci_high_ms']:.3g})"
        if a.runner_up is None:
            second = "no other right variant"
        else:
            verdict = "tied with" if a.tie else "ahead of"
            second = f"{verdict} {a.runner_up}: {a.versus_runner_up.speedup_text()}"  # type: ignore[union-attr]
        rows.append(
            [
                a.name,
                a.winner,
                ci,
                _speedup(a.over_padded, a.winner == "module·padded"),
                _speedup(a.over_packed, a.winner == "module·packed"),
                second,
                a.inexact or "none",
            ]
        )
    header = [
        "shape",
        "fastest right variant",
        "median (95% CI)",
        "speed-up over padded module (95% CI)",
        "over packed module (95% CI)",
        "next right variant",
        "faster but not exact",
    ]
    return Table(header, rows, sortable=True, wrap=True)


def strata_lines(answers: list[Fastest]) -> list[tuple[str, str]]:
    """(label, text) per model, mode and device: which variants won how many of the shapes with two
    or more right variants, and the range of the winners' speed-ups over the packed module there
    (every shape's own CI is in the table)."""
    out = []
    keyed: dict[tuple, list[Fastest]] = {}
    for a in answers:
        keyed.setdefault((a.shape["model"], a.shape["mode"], a.shape["device"]), []).append(a)
    for (model, mode, device), every in sorted(keyed.items()):
        # A shape with one right variant is no contest (plain padding beside packing, say): it is
        # counted apart, so that "won 31 of 37" never stands for shapes where nothing else ran right.
        group = [a for a in every if a.runner_up is not None]
        alone = len(every) - len(group)
        alone_text = f" ({alone} more shape(s) had one right variant only)" if alone else ""
        if not group:
            out.append(
                (f"fastest correct way ({model}, {mode}, {device})", f"no shape had two right variants{alone_text}")
            )
            continue
        wins: dict[str, int] = {}
        for a in group:
            wins[a.winner] = wins.get(a.winner, 0) + 1
        counted = ", ".join(f"{v} in {n}" for v, n in sorted(wins.items(), key=lambda kv: (-kv[1], kv[0])))
        ties = sum(a.tie for a in group)
        tie_text = f" ({ties} of them tied with the next right variant)" if ties else ""
        text = f"fastest of two or more right variants: {counted} of {len(group)} shapes{tie_text}{alone_text}"
        over = [a.over_packed for a in group if a.over_packed is not None]
        if over:
            speedups = [1 / r.ratio for r in over]
            text += (
                f"; where the winner is not packed {model} itself ({len(over)} shapes), its speed-up over it: "
                f"{min(speedups):.2f}× to {max(speedups):.2f}×"
            )
        inexact = sum(a.inexact is not None for a in every)
        if inexact:
            text += f"; a less exact variant is faster still in {inexact}"
        out.append((f"fastest correct way ({model}, {mode}, {device})", text))
    return out


def fastest(df: pd.DataFrame) -> Blocks:
    answers = fastest_by_shape(df)
    if not answers:
        return [Heading(TITLE), Paragraph(missing_note("several variants of one shape beside a plain module", HOW))]
    intro = (
        f"Per shape, the fastest variant whose outputs and final states agree with packed nn.LSTM/nn.GRU (the "
        f"same weights and inputs) within {EXACT_TOL:g}, its speed-up over the plain module padded and packed "
        "with the 95% CI of each ratio, the next right variant (a tie when the CI of their ratio reaches 1), and "
        "any variant that is faster still but not exact, with its largest error (int8 quantization, plain "
        "padding's final states): an accuracy cost to weigh, not a failure. Variants with no recorded error are "
        "not called right."
    )
    lines = [Paragraph(f"{label}: {text}.") for label, text in strata_lines(answers)]
    return [Heading(TITLE), Paragraph(intro), *lines, _table(answers)]
