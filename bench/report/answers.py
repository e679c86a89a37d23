"""The answers to a reader's questions, computed once for the findings table and for the sections.

A question is a time ratio between two values of one axis (packed / padded, native /
default, ...) over pairs of cases equal in every other axis (``slices.pairs``). Three
rules keep an answer honest:

- **Correctness gates it.** A pair in which either side's outputs differ from the packed
  reference beyond ``EXACT_TOL`` is left out, and the answer says how many were: a fast
  wrong result answers nothing. Pairs whose final states are off (padding read as input)
  are kept, and counted in the answer.
- **Unlike cases are never pooled.** The factors known to change a ratio (``STRATA``: model,
  input path, mode, device, kernels, lengths, implementation, dtype, TF32) cut the pairs into
  finest cells; a set of pairs is one stratum only where its cells' medians lie within
  ``AGREE`` of each other, and is otherwise split, top down, by the factor that matters
  (``pooled``).
- **Two intervals, named apart.** A stratum's number is the median of its cases' ratios.
  Its *measurement* 95% CI runs from the median of the cases' lower CI ends to the median
  of their upper ends: the median is monotone in every case, so if each case's ratio lies
  in its own CI, the median lies in this one. Each case's ratio CI combines its two sides'
  CIs (rounds, when the run had them) in quadrature on the log scale. The *spread over
  cases* (lowest to highest ratio) is a fact about the grid, not an uncertainty.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.report.document import Blocks, Paragraph, Table
from bench.report.slices import EXACT_TOL, ok_rows, pairs, short_label

# Factors known to change a time ratio; a stratum agrees on all of those present.
STRATA = ("machine", "model", "varlen", "mode", "device", "backend", "lengths", "impl", "dtype", "tf32")
# Split on in this order where two factors part the cases equally well: the ones most likely to matter first.
SPLIT_ORDER = ("machine", "model", "varlen", "mode", "backend", "device", "lengths", "impl", "dtype", "tf32")
AGREE = 1.10  # strata medians within 10% of each other describe one answer
SAME = 1.03  # a ratio within 3% of 1 is never called faster or slower, whatever its CI
NEAR = 1.10  # a CI within ±10% of 1 (and not faster or slower) reads as "about the same"
PACKING = "Packed vs padded"
IMPLEMENTATIONS = "Implementations and exact padding"
BACKEND = "Backend: cuDNN/oneDNN vs native kernels"
THREADS = "Threads"
DEPTH = "Cost of depth and direction"
MODELS = "LSTM vs GRU"
DEVICES = "CPU vs GPU"
MACHINES = "Across machines"
EFFICIENCY = "Efficiency and what bounds each case"
PRECISION = "Noisy and failed cases"
MATRIX_TITLE = "packed / padded time at controlled padding"


@dataclass(frozen=True)
class Question:
    """What a reader asks, the axis that answers it, and where the report shows it."""

    key: str
    label: str  # "packed / padded time"
    axis: str
    a: object  # the ratio is time at a / time at b (None: resolved from the data, see sides())
    b: object
    subject: str  # what the verdict is about: "packing"
    section: str  # the heading of the section with its plot
    flags: str  # what adds the axis to a run
    inputs: tuple[str, ...] = ()  # only these varlen values
    ignore: tuple[str, ...] = ()  # axes that may differ within a pair


QUESTIONS = (
    Question("packing", "packed / padded time", "varlen", "packed", "padded", "packing", PACKING,
             "--varlen padded,packed"),
    Question("exact", "exact padding / packed time", "varlen", "exact", "packed", "exact padding",
             IMPLEMENTATIONS, "--varlen packed,exact"),
    Question("native", "native kernels / cuDNN-oneDNN time", "backend", "native", "default", "native kernels",
             BACKEND, "--backend default,native"),
    Question("threads", "time at most threads / at 1 thread", "threads", None, 1, "more threads", THREADS,
             "--threads 1,2"),
    Question("compile", "torch.compile / eager time (warm)", "impl", "compiled", "module", "torch.compile",
             IMPLEMENTATIONS, "--impl module,compiled"),
    Question("depth", "2 layers / 1 layer time (packed or exact input)", "num_layers", 2, 1, "a second layer",
             DEPTH, "--num-layers 1,2 --varlen packed", inputs=("packed", "exact")),
    Question("direction", "bidirectional / one-way time (packed or exact input)", "bidirectional", True, False,
             "the second direction", DEPTH, "--bidirectional false,true --varlen packed",
             inputs=("packed", "exact")),
    Question("model", "GRU / LSTM time", "model", "gru", "lstm", "GRU", MODELS, "--model lstm,gru"),
    Question("device", "GPU / CPU time", "device", "cuda", "cpu", "the GPU", DEVICES, "--device cpu,cuda",
             ignore=("threads",)),
    Question("machine", "time on one machine / on another", "machine", None, None, "the other machine", MACHINES,
             "(a second machine's results CSV to `python -m bench report`)"),
)  # fmt: skip
BY_KEY = {q.key: q for q in QUESTIONS}


def case_ratio_ci(p: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pair's ratio a/b and its 95% CI: the two sides' CIs combined in quadrature (log scale)."""
    ratio = (p["median_ms_a"] / p["median_ms_b"]).to_numpy(dtype=float)
    down = np.hypot(np.log(p["median_ms_a"] / p["ci_low_ms_a"]), np.log(p["ci_high_ms_b"] / p["median_ms_b"]))
    up = np.hypot(np.log(p["ci_high_ms_a"] / p["median_ms_a"]), np.log(p["median_ms_b"] / p["ci_low_ms_b"]))
    return ratio, ratio * np.exp(-down.to_numpy(dtype=float)), ratio * np.exp(up.to_numpy(dtype=float))


def is_faster(ratio, high):
    """Time ratio(s) that say "faster": the CI below 1 and the ratio more than 3% under it.
    The one rule for every verdict, table and sentence of the report."""
    return (np.asarray(high) < 1) & (np.asarray(ratio) < 1 / SAME)


def is_slower(ratio, low):
    return (np.asarray(low) > 1) & (np.asarray(ratio) > SAME)


def wrong_outputs(df: pd.DataFrame, suffix: str = "") -> pd.Series:
    """Rows whose outputs at valid positions differ from the packed reference beyond tolerance."""
    return df[f"max_abs_err{suffix}"].fillna(0) >= EXACT_TOL


def wrong_states(df: pd.DataFrame, suffix: str = "") -> pd.Series:
    """Rows whose final states differ from the packed reference (padding read as input)."""
    return df[f"state_max_abs_err{suffix}"].fillna(0) >= EXACT_TOL


def is_right(df: pd.DataFrame) -> pd.Series:
    """Rows fit to be called best or fastest: outputs and final states both right."""
    return ~wrong_outputs(df) & ~wrong_states(df)


def is_noisy(df: pd.DataFrame, suffix: str = "") -> pd.Series:
    return df[f"note{suffix}"].fillna("").str.startswith("noisy")


@dataclass
class Stratum:
    """The pairs of one stratum: their ratios, each with its measurement CI."""

    where: tuple[tuple[str, object], ...]  # (factor, value): empty when pooled over everything
    ratio: np.ndarray
    low: np.ndarray
    high: np.ndarray
    names: list[str]  # a short name per pair, for strata of one or two cases
    noisy: int = 0  # pairs with a noisy side
    states_off: int = 0  # pairs with a side whose final states are off

    @property
    def cases(self) -> int:
        return int(self.ratio.size)

    @property
    def median(self) -> float:
        return float(np.median(self.ratio))

    @property
    def ci(self) -> tuple[float, float]:
        """Median of the cases' CI ends, over the cases that have a CI (NaN where none has)."""
        known = np.isfinite(self.low) & np.isfinite(self.high)
        if not known.any():
            return math.nan, math.nan
        return float(np.median(self.low[known])), float(np.median(self.high[known]))

    def label(self) -> str:
        return " · ".join(_value_text(k, v) for k, v in self.where) or "all cases"

    def ratio_text(self) -> str:
        return f"{self.median:.2f}×"

    def ci_text(self) -> str:
        lo, hi = self.ci
        if math.isnan(lo):
            return "n/a (no CI recorded)"
        missing = int((~(np.isfinite(self.low) & np.isfinite(self.high))).sum())
        return f"{lo:.2f}–{hi:.2f}" + (f" ({missing} case(s) without a CI)" if missing else "")

    def spread_text(self) -> str:
        if self.cases == 1:
            return f"one case ({self.names[0]})"
        return f"{self.ratio.min():.2f}–{self.ratio.max():.2f}× over {self.cases} cases"

    def cases_text(self) -> str:
        text = str(self.cases)
        if self.noisy:
            text += f" ({self.noisy} noisy)"
        return text

    def state(self) -> str:
        """faster, slower, about the same (CI within ±10% of 1), or how many cases are which.

        Each case is judged by its own CI: faster or slower when the CI excludes 1 and the ratio is
        more than 3% from it; unclear when the CI spans 1 more widely than ±10%."""
        faster, slower = is_faster(self.ratio, self.high), is_slower(self.ratio, self.low)
        same = ~faster & ~slower & (self.low >= 1 / NEAR) & (self.high <= NEAR)
        unclear = ~faster & ~slower & ~same
        for name, which in (("faster", faster), ("slower", slower), ("about the same", same)):
            if which.all():
                return name
        if unclear.all():
            return "unclear (each case's CI spans 1)"
        counts = [(name, int(which.sum())) for name, which in
                  (("faster", faster), ("slower", slower), ("about the same", same), ("unclear", unclear))]  # fmt: skip
        return ", ".join(f"{name} in {n}" for name, n in counts if n) + f" of {self.cases} cases"

    def sentence(self) -> str:
        text = f"{self.ratio_text()} (measurement 95% CI {self.ci_text()}; {self.spread_text()})"
        if self.noisy:
            text += f", {self.noisy} with a noisy side"
        return text


def _value_text(factor: str, value: object) -> str:
    if factor == "lengths" and str(value).startswith("pad:"):
        return f"{float(str(value)[4:]):.0%} padding"
    if factor == "lengths":
        return f"{value} lengths"
    if factor == "backend":
        return f"{value} kernels"
    if factor == "tf32":
        return f"TF32 {value}"
    return str(value)


@dataclass
class PaddingMatrix:
    """Packed / padded time at controlled padding fractions (``--lengths pad:F``): model·mode × F."""

    rows: list[str]  # "gru inference"
    fractions: list[float]
    cells: dict[tuple[str, float], Stratum]

    def pays_from(self, row: str) -> float | None:
        """The smallest fraction from which packing is faster at every larger fraction measured."""
        start = None
        for f in self.fractions:
            s = self.cells.get((row, f))
            if s is None:
                continue
            start = (f if start is None else start) if is_faster(s.median, s.ci[1]) else None
        return start

    def verdict(self) -> str:
        said = []
        for row in self.rows:
            f = self.pays_from(row)
            top = max(f for (r, f) in self.cells if r == row)
            said.append(f"{row} from {f:.0%} padding" if f is not None else f"{row} never (up to {top:.0%})")
        return "packing pays for " + "; ".join(said) + " (controlled padding)"


@dataclass
class Answer:
    question: Question
    strata: list[Stratum] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)  # wrong-output pairs left out, by shape
    subject: str = ""  # the question's subject with its resolved values ("2 threads")
    label: str = ""
    matrix: PaddingMatrix | None = None
    unpaired: bool = False  # both values of the axis are in the run, on no two otherwise equal cases

    @property
    def found(self) -> bool:
        return bool(self.strata) or self.matrix is not None

    def missing(self) -> str:
        if self.left_out:  # the run has the axis, but no pair with right outputs on both sides
            return "no answer: every pair compared has a side with wrong outputs"
        if self.unpaired:
            return (
                f"no answer: the run has {self.question.axis} at both values, but never on cases equal in "
                f"everything else (run `{self.question.flags}` over one grid)"
            )
        return f"not in this run (add `{self.question.flags}` to `python -m bench run`)"

    def verdict(self) -> str:
        """The answer in words: which strata are faster, slower or about the same (the numbers are
        in the strata's own rows)."""
        if not self.found:
            return self.missing()
        said = [self.matrix.verdict()] if self.matrix is not None else []
        by_state: dict[str, list[str]] = {}
        for s in self.strata:
            by_state.setdefault(s.state(), []).append(s.label())
        for state, labels in by_state.items():
            who = f"{self.subject} {state}" if not state.startswith(("about", "unclear")) else state
            said.append(who if len(self.strata) == 1 else f"{who} for {', '.join(labels)}")
        return "; ".join(said)

    def left_out_text(self) -> str:
        if not self.left_out:
            return ""
        shapes = ", ".join(f"{shape} ×{n}" for shape, n in sorted(self.left_out.items()))
        return f"Left out: {sum(self.left_out.values())} pair(s) with wrong outputs ({shapes})."

    def states_text(self) -> str:
        off = sum(s.states_off for s in self.strata)
        if not off:
            return ""
        return f"In {off} pair(s) a side's final states are off (padding read as input): outputs compare, h_n does not."

    def sentence(self) -> str:
        """The section's sentence: the same numbers as the findings table, in prose."""
        if not self.strata:
            return "" if self.matrix is not None else f"{self.label}: {self.missing()}."
        parts = [f"{s.label()}: {s.sentence()}" if s.where else s.sentence() for s in self.strata]
        text = f"{self.label}: " + "; ".join(parts) + "."
        return " ".join(t for t in (text, self.left_out_text(), self.states_text()) if t)


NAME_AXES = (("model", ""), ("batch_size", "b"), ("seq_len", "L"), ("num_layers", "n"), ("threads", "t"))


def _case_names(p: pd.DataFrame) -> list[str]:
    def column(axis: str) -> str:
        return axis if axis in p.columns else f"{axis}_a"

    shown = [(a, prefix) for a, prefix in NAME_AXES if a in ("model", "batch_size", "seq_len")]
    shown += [(a, prefix) for a, prefix in NAME_AXES[3:] if p[column(a)].nunique() > 1]
    return [" ".join(f"{prefix}{r[column(a)]}" for a, prefix in shown) for _, r in p.iterrows()]


def _shape(r: pd.Series) -> str:
    side = "a" if r["max_abs_err_a"] >= EXACT_TOL else "b"
    varlen = r["varlen"] if "varlen" in r else r[f"varlen_{side}"]
    layers = r["num_layers"] if "num_layers" in r else r[f"num_layers_{side}"]
    bi = r["bidirectional"] if "bidirectional" in r else r[f"bidirectional_{side}"]
    model = r["model"] if "model" in r else r[f"model_{side}"]
    return f"{model} {varlen} {layers}×{'bi' if bi else 'uni'}"


def _agree(medians: Sequence[float]) -> bool:
    return max(medians) / min(medians) <= AGREE


def _cells(g: pd.DataFrame, factors: list[str]) -> list[float]:
    """The median ratio of each finest cell: pairs equal in every factor."""
    if not factors:
        return [float(g["ratio"].median())]
    return [float(v) for v in g.groupby(factors)["ratio"].median()]


def pooled(p: pd.DataFrame, factors: Sequence[str]) -> list[tuple[dict[str, object], pd.DataFrame]]:
    """``p`` (with a ``ratio`` column) cut into strata, top down: a set of pairs stays one stratum
    when the medians of its finest cells (pairs equal in every factor) agree within ``AGREE``;
    otherwise it is split by the factor that leaves its parts most alike (ties: ``SPLIT_ORDER``),
    and each part is judged the same way. So packed GRU/LSTM may stay one stratum over both modes
    while exact GRU/LSTM is split by mode, and every label names only the factors that matter."""
    kept = [f for f in SPLIT_ORDER if f in factors and f in p.columns and p[f].nunique() > 1]

    def split(g: pd.DataFrame, where: dict[str, object]) -> list[tuple[dict[str, object], pd.DataFrame]]:
        free = [f for f in kept if f not in where and g[f].nunique() > 1]
        if not free or _agree(_cells(g, free)):
            return [(where, g)]

        def spread(f: str) -> float:  # the worst disagreement left inside a part after splitting by f
            rest = [x for x in free if x != f]
            return max(max(c) / min(c) for c in (_cells(h, rest) for _, h in g.groupby(f)))

        f = min(free, key=spread)  # min() keeps the first of equals: SPLIT_ORDER breaks ties
        return [part for value, h in g.groupby(f, sort=True) for part in split(h, where | {f: value})]

    parts = split(p, {})
    order = {f: i for i, f in enumerate(kept)}
    return sorted(
        parts, key=lambda wg: [(order[k], str(v)) for k, v in sorted(wg[0].items(), key=lambda kv: order[kv[0]])]
    )


def strata(p: pd.DataFrame, factors: Sequence[str]) -> list[Stratum]:
    """The pairs ``p`` (from ``pairs``) in strata that never pool unlike cases."""
    ratio, low, high = case_ratio_ci(p)
    p = p.assign(ratio=ratio, low=low, high=high, _name=_case_names(p))
    return [
        Stratum(
            where=tuple(sorted(where.items(), key=lambda kv: SPLIT_ORDER.index(kv[0]))),
            ratio=g["ratio"].to_numpy(),
            low=g["low"].to_numpy(),
            high=g["high"].to_numpy(),
            names=list(g["_name"]),
            noisy=int((is_noisy(g, "_a") | is_noisy(g, "_b")).sum()),
            states_off=int((wrong_states(g, "_a") | wrong_states(g, "_b")).sum()),
        )
        for where, g in pooled(p, factors)
    ]


def main_rows(rows: pd.DataFrame, q: Question) -> pd.DataFrame:
    """The rows a question reads: the nn.LSTM/nn.GRU modules unless it is about implementations, and
    drawn lengths where the run has them (controlled padding has its own matrix, under packing)."""
    if q.axis != "impl" and (rows["impl"] == "module").any():
        rows = rows[rows["impl"] == "module"]
    controlled = rows["lengths"].str.startswith("pad:")
    if q.key != "packing" and (~controlled).any():
        rows = rows[~controlled]
    return rows


def sides(q: Question, rows: pd.DataFrame) -> list[tuple[object, object]]:
    """The (a, b) value pairs a question compares in this data."""
    if q.key == "threads":  # each machine's most threads against its 1 (machines may differ in cores)
        cpu = rows[rows["device"] == "cpu"]
        most = {
            int(g["threads"].max())
            for _, g in cpu.groupby("machine")
            if (g["threads"] == 1).any() and g["threads"].max() > 1
        }
        return [(t, 1) for t in sorted(most)]
    if q.key == "machine":
        machines = sorted(rows["machine"].unique())
        return [(m, machines[0]) for m in machines[1:]]
    return [(q.a, q.b)]


def answer(df: pd.DataFrame, key: str) -> Answer:
    """The answer to question ``key`` from the ok time rows of ``df``."""
    q = BY_KEY[key]
    rows = ok_rows(df)
    rows = rows[rows["metric"] == "time"] if "metric" in rows else rows
    if q.inputs:
        rows = rows[rows["varlen"].isin(q.inputs)]
    if q.key == "threads":
        rows = rows[rows["device"] == "cpu"]
    rows = main_rows(rows, q)
    result = Answer(q, subject=q.subject, label=q.label)
    if q.key == "packing":
        controlled = rows["lengths"].str.startswith("pad:")
        result.matrix = padding_matrix(rows[controlled])
        rows = rows[~controlled]
    compared = sides(q, rows)
    for a, b in compared:
        if q.key == "threads":
            one = len(compared) == 1
            result.subject = f"{a} threads" if one else "more threads"
            result.label = f"time at {a} threads / at 1 thread" if one else "time at most threads / at 1 thread"
        if q.key == "machine":
            one = len(compared) == 1
            result.subject = str(a) if one else "the machine"
            result.label = f"time on {a} / on {b}" if one else f"time on each machine / on {b}"
        p = pairs(rows, q.axis, a, b, ignore=q.ignore)
        if q.key == "device" and not p.empty:  # each GPU case against each CPU machine: never pooled blind
            p = p.assign(machine=p["machine_b"])
        if p.empty:
            result.unpaired = result.unpaired or {a, b} <= set(rows[q.axis])
            continue
        wrong = wrong_outputs(p, "_a") | wrong_outputs(p, "_b")
        for _, r in p[wrong].iterrows():
            shape = _shape(r)
            result.left_out[shape] = result.left_out.get(shape, 0) + 1
        p = p[~wrong]
        if not p.empty:
            found = strata(p, [f for f in STRATA if f != q.axis])
            if q.key == "machine" and len(compared) > 1:  # several machines, each against the first
                for s in found:
                    s.where = (("machine", a), *s.where)
            result.strata += found
    return result


def padding_matrix(rows: pd.DataFrame) -> PaddingMatrix | None:
    """Packed / padded time per model and mode at each controlled padding fraction."""
    p = pairs(rows, "varlen", "packed", "padded")
    if p.empty:
        return None
    p = p[~(wrong_outputs(p, "_a") | wrong_outputs(p, "_b"))]
    p = p.assign(fraction=p["lengths"].str[4:].astype(float), row=p["model"] + " " + p["mode"])
    if p["fraction"].nunique() < 2:
        return None
    cells = {}
    for (row, fraction), g in p.groupby(["row", "fraction"], sort=True):
        # One cell may hold several shapes: pooled only where they agree, like any stratum.
        found = strata(g, [f for f in STRATA if f not in ("varlen", "lengths")])
        if len(found) == 1:
            cells[(row, fraction)] = found[0]
    if not cells:
        return None
    # A row whose cells all split (unlike shapes at one fraction) is left to the strata: never an empty row.
    return PaddingMatrix(sorted({row for row, _ in cells}), sorted({f for _, f in cells}), cells)


def precision(df: pd.DataFrame) -> tuple[str, list[str]]:
    """How many timed cases reached their precision target, and how wide the others are."""
    rows = ok_rows(df)
    rows = rows[rows["metric"] == "time"]
    half = (rows["ci_high_ms"] - rows["ci_low_ms"]) / 2 / rows["median_ms"]
    noisy = is_noisy(rows)
    untargeted = rows["note"].fillna("").str.startswith("no precision target")
    reached = int((~noisy & ~untargeted).sum())
    text = f"{reached} of {len(rows)} timed cases reached their precision target"
    if noisy.any():
        text += (
            f"; {int(noisy.sum())} are noisy, their 95% CI ±{half[noisy].min():.1%} to ±{half[noisy].max():.1%} "
            "of the median (marked noisy wherever their numbers appear)"
        )
    if untargeted.any():
        text += f"; {int(untargeted.sum())} had no target (a fixed schedule)"
    spread = f"±{half.min():.1%} to ±{half.max():.1%}" if len(rows) else ""
    row = ["precision of the run", text, "all timed cases", f"±{half.median():.1%}", "", spread, str(len(rows))]
    return text, row


def efficiency_text(df: pd.DataFrame) -> str:
    """Median efficiency and the best right case (a wrong result is never the best)."""
    rows = ok_rows(df).dropna(subset=["efficiency"])
    if rows.empty:
        return ""
    right = rows[is_right(rows)]
    # Schema 5 on: the best of several engines; before, torch's n×n matmul alone.
    roof = "compute roof" if rows.get("peak_engine", pd.Series("", index=rows.index)).ne("").any() else "matmul peak"
    text = f"median {rows['efficiency'].median():.1%} of the {roof} over {len(rows)} cases"
    if not right.empty:
        top = right.loc[right["efficiency"].idxmax()]
        text += f"; at most {top['efficiency']:.1%} among right results ({short_label(top)} on {top['machine']})"
    above = int((rows["efficiency"] > 1).sum())
    if above:
        text += f"; {above} case(s) above the {roof} (each row's note says so)"
    if "roof_fraction" in rows and rows["roof_fraction"].notna().any():
        text += f"; median {rows['roof_fraction'].median():.1%} of each case's roofline bound"
    return text


def compile_text(df: pd.DataFrame) -> str:
    rows = ok_rows(df)
    compiled = rows[(rows["impl"] == "compiled") & rows["compile_s"].notna()]
    if compiled.empty:
        return ""
    s = compiled["compile_s"]
    return f"median {s.median():.1f} s over {len(compiled)} case(s) (range {s.min():.1f} to {s.max():.1f} s)"


def matrix_table(m: PaddingMatrix) -> Table:
    """Model·mode rows, a column per padding fraction: each cell the ratio with its measurement CI."""
    header = [MATRIX_TITLE, *(f"{f:.0%} padding" for f in m.fractions)]
    rows, shades = [], []
    for row in m.rows:
        cells, tones = [row], [None]
        for f in m.fractions:
            s = m.cells.get((row, f))
            noisy = " noisy" if s is not None and s.noisy else ""
            cells.append("" if s is None else f"{s.ratio_text()} ({s.ci_text()}){noisy}")
            tones.append(None if s is None else s.median)
        rows.append(cells)
        shades.append(tones)
    return Table(header, rows, shade=shades)


def matrix_blocks(m: PaddingMatrix | None) -> Blocks:
    if m is None:
        return []
    return [
        Paragraph(
            f"Packed / padded time at controlled padding (`--lengths pad:F`), with its measurement 95% CI: "
            f"{m.verdict()}. Blue: packing is faster; red: slower."
        ),
        matrix_table(m),
    ]
