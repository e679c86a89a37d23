"""The compare page: ``bench compare``'s terminal table, Markdown summary, CSV and ratio plot."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table as RichTable

from bench.analysis.compare import VERDICTS, CompareConfig, compare_runs
from bench.core.errors import UsageError
from bench.records.files import write_text_atomic
from bench.report.document import Document, Image, Paragraph, Table, to_markdown
from bench.report.plotting import new_figure, save

COLOURS = {"regression": "tab:red", "improvement": "tab:green", "unchanged": "tab:gray"}


def metric_of(result: pd.DataFrame) -> str:
    """time or instructions: what the compared runs measured (one metric per comparison)."""
    return str(result["metric"].iloc[0]) if not result.empty else "time"


def amounts(r: tuple, metric: str) -> list[str]:
    """A result row's baseline and current value, in its unit."""
    if metric == "instructions":
        return ["" if pd.isna(v) else f"{v:,.0f}" for v in (r.baseline_instructions, r.current_instructions)]
    return [f"{r.baseline_ms:.4g}", f"{r.current_ms:.4g}"]


def ratio_plot(result: pd.DataFrame, threshold: float, folder: Path) -> str | None:
    rows = result.dropna(subset=["ratio"]).sort_values("ratio")
    if rows.empty:
        return None
    fig, axes = new_figure(height=max(2.5, 0.2 * len(rows) + 1))
    ax = axes[0][0]
    y = np.arange(len(rows))
    err = [rows["ratio"] - rows["ratio_ci_low"], rows["ratio_ci_high"] - rows["ratio"]]
    for verdict, colour in COLOURS.items():
        hit = (rows["verdict"] == verdict).to_numpy()
        if hit.any():
            ax.errorbar(
                rows["ratio"][hit],
                y[hit],
                xerr=[e[hit] for e in err],
                fmt="o",
                ms=3,
                color=colour,
                capsize=2,
                label=verdict,
            )
    for x in (1 - threshold, 1, 1 + threshold):
        ax.axvline(x, color="k", lw=0.8 if x == 1 else 0.5, ls="-" if x == 1 else "--")
    ax.set_yticks(y, rows["case_id"], fontsize=9)
    if metric_of(result) == "instructions":
        ax.set_xlabel("current instructions / baseline instructions")
    else:
        ax.set_xlabel("current median / baseline median (95% CI)")
    ax.legend()
    return save(fig, folder, "compare", "Which cases changed between the runs?")


def markdown(
    result: pd.DataFrame, changes: list[str], baseline: Path, current: Path, config: CompareConfig, plot: str | None
) -> str:
    counts = result["verdict"].value_counts()
    metric = metric_of(result)
    threshold = config.threshold_for(metric)
    doc = Document(f"rnnbench compare: {baseline.name} -> {current.name}")
    if metric == "instructions":
        how = f"instruction counts under callgrind, 1 thread; threshold {threshold:.1%} of the count, no test needed"
    else:
        how = (
            f"threshold {threshold:.1%}, tests at alpha {config.alpha}: Welch's t on round medians for runs in "
            "rounds, t on per-round block ratios for runs against another tree, Mann–Whitney U for runs of one round"
        )
    doc.add(Paragraph(", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS) + f" ({how})."))
    if changes:
        doc.add(Paragraph("WARNING: the runs come from different environments: " + "; ".join(changes)))
    order = {v: i for i, v in enumerate(("regression", "failed", "missing", "improvement", "unchanged", "unsupported"))}
    shown = result.assign(o=result["verdict"].map(order)).sort_values(["o", "case_id"])
    counted = metric == "instructions"

    def ratio_text(r: tuple) -> str:
        if pd.isna(r.ratio):
            return ""
        return f"{r.ratio:.4f}" if counted else f"{r.ratio:.3f} ({r.ratio_ci_low:.3f}-{r.ratio_ci_high:.3f})"

    table = [[r.case_id, *amounts(r, metric), ratio_text(r), r.verdict, r.why] for r in shown.itertuples()]
    unit = "instructions" if counted else "ms"
    ratio = "ratio" if counted else "ratio (95% CI)"
    doc.add(Table(["case", f"baseline {unit}", f"current {unit}", ratio, "verdict", "why"], table))
    if plot:
        doc.add(Image(plot, "ratio per case"))
    return to_markdown(doc)


def terminal_table(result: pd.DataFrame) -> None:
    metric = metric_of(result)
    unit = "instructions" if metric == "instructions" else "ms"
    table = RichTable("case", f"baseline {unit}", f"current {unit}", "ratio", "verdict")
    style = {"regression": "bold red", "improvement": "green", "failed": "red", "missing": "yellow"}
    for r in result.itertuples():
        ratio = "" if pd.isna(r.ratio) else f"{r.ratio:.4f}"
        table.add_row(r.case_id, *amounts(r, metric), ratio, r.verdict, style=style.get(r.verdict, ""))
    console = Console(stderr=True)
    if not console.is_terminal:
        console.width = 160
    console.print(table)


@dataclass(frozen=True)
class Comparison:
    """Two runs compared: the verdict per case, and what differs between their environments."""

    result: pd.DataFrame
    changes: list[str]

    @property
    def counts_text(self) -> str:
        counts = self.result["verdict"].value_counts()
        return ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)

    @property
    def regressions(self) -> int:
        return int((self.result["verdict"] == "regression").sum())


def default_out(baseline: Path, current: Path) -> Path:
    return Path("reports") / "compare" / f"{baseline.stem}--{current.stem}"


def write_comparison(
    baseline: Path, current: Path, config: CompareConfig, out: Path, allow_env_change: bool = False
) -> Comparison:
    """Compare two runs; write compare.md, summary.md (no plot, for a CI job summary), compare.csv
    and the plot into ``out``. Runs from different environments are refused unless allowed."""
    result, changes = compare_runs(baseline, current, config)
    if changes and not allow_env_change:
        # Timings from two machines or builds say nothing about the code: point at
        # the fixes that measure both sides here before the override.
        raise UsageError(
            f"the runs come from different environments ({'; '.join(changes)}): measure both sides here "
            "with `python -m bench ci --against REF`, or refresh the baseline on this machine "
            "(`nox -s baseline`); --allow-env-change compares anyway"
        )
    out.mkdir(parents=True, exist_ok=True)
    plot = ratio_plot(result, config.threshold_for(metric_of(result)), out)
    write_text_atomic(out / "compare.md", markdown(result, changes, baseline, current, config, plot))
    write_text_atomic(out / "summary.md", markdown(result, changes, baseline, current, config, None))
    write_text_atomic(out / "compare.csv", result.to_csv(index=False))
    return Comparison(result, changes)


def show(found: Comparison, out: Path) -> None:
    """The comparison on the terminal: what differs between the environments, the table, the
    counts, where the page is."""
    for line in found.changes:
        print(f"ENVIRONMENT CHANGED: {line}", file=sys.stderr)
    terminal_table(found.result)
    print(found.counts_text)
    print(f"summary: {out / 'compare.md'}")
