"""``bench compare``: terminal table, Markdown summary, CSV and ratio plot."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table as RichTable

from bench.compare import VERDICTS, CompareConfig, compare_runs, parse_threshold
from bench.errors import UsageError
from bench.report.document import Document, Image, Paragraph, Table, to_markdown
from bench.report.plotting import new_figure, save
from bench.results import write_text_atomic

COLOURS = {"regression": "tab:red", "improvement": "tab:green", "unchanged": "tab:gray"}


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
    ax.set_yticks(y, rows["case_id"], fontsize=5)
    ax.set_xlabel("current median / baseline median (95% bootstrap CI)")
    ax.legend()
    return save(fig, folder, "compare")


def markdown(
    result: pd.DataFrame, changes: list[str], baseline: Path, current: Path, config: CompareConfig, plot: str | None
) -> str:
    counts = result["verdict"].value_counts()
    doc = Document(f"rnnbench compare: {baseline.name} -> {current.name}")
    doc.add(
        Paragraph(
            ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS) + f" (threshold {config.threshold:.1%}, "
            f"Mann–Whitney U at alpha {config.alpha}, bootstrap 95% CI of the median ratio)."
        )
    )
    if changes:
        doc.add(Paragraph("WARNING: the runs come from different environments: " + "; ".join(changes)))
    order = {v: i for i, v in enumerate(("regression", "failed", "missing", "improvement", "unchanged", "unsupported"))}
    shown = result.assign(o=result["verdict"].map(order)).sort_values(["o", "case_id"])
    table = [
        [
            r.case_id,
            f"{r.baseline_ms:.4g}",
            f"{r.current_ms:.4g}",
            "" if pd.isna(r.ratio) else f"{r.ratio:.3f} ({r.ratio_ci_low:.3f}-{r.ratio_ci_high:.3f})",
            r.verdict,
            r.why,
        ]
        for r in shown.itertuples()
    ]
    doc.add(Table(["case", "baseline ms", "current ms", "ratio (95% CI)", "verdict", "why"], table))
    if plot:
        doc.add(Image(plot, "ratio per case"))
    return to_markdown(doc)


def terminal_table(result: pd.DataFrame) -> None:
    table = RichTable("case", "baseline ms", "current ms", "ratio", "verdict")
    style = {"regression": "bold red", "improvement": "green", "failed": "red", "missing": "yellow"}
    for r in result.itertuples():
        ratio = "" if pd.isna(r.ratio) else f"{r.ratio:.3f}"
        table.add_row(
            r.case_id, f"{r.baseline_ms:.4g}", f"{r.current_ms:.4g}", ratio, r.verdict, style=style.get(r.verdict, "")
        )
    console = Console(stderr=True)
    if not console.is_terminal:
        console.width = 160
    console.print(table)


def compare(
    baseline: Path,
    current: Path,
    config: CompareConfig,
    out: Path | None = None,
    fail_on_regression: bool = False,
    allow_env_change: bool = False,
) -> int:
    """Compare two runs; write compare.md, compare.csv and the plot; 1 on a regression if asked."""
    result, changes = compare_runs(baseline, current, config)
    if changes and not allow_env_change:
        # Timings from two machines or builds say nothing about the code: point at
        # the fixes that measure both sides here before the override.
        raise UsageError(
            f"the runs come from different environments ({'; '.join(changes)}): measure both sides here "
            "with `python -m bench ci --against REF`, or refresh the baseline on this machine "
            "(`nox -s baseline`); --allow-env-change compares anyway"
        )
    for line in changes:
        print(f"ENVIRONMENT CHANGED: {line}", file=sys.stderr)
    out = out or Path("reports") / "compare" / f"{baseline.stem}--{current.stem}"
    out.mkdir(parents=True, exist_ok=True)
    plot = ratio_plot(result, config.threshold, out)
    write_text_atomic(out / "compare.md", markdown(result, changes, baseline, current, config, plot))
    # For a CI job summary: the same text without the plot, which a summary cannot show.
    write_text_atomic(out / "summary.md", markdown(result, changes, baseline, current, config, None))
    write_text_atomic(out / "compare.csv", result.to_csv(index=False))
    terminal_table(result)
    counts = result["verdict"].value_counts()
    print(", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS))
    print(f"summary: {out / 'compare.md'}")
    regressions = int(counts.get("regression", 0))
    return 1 if regressions and fail_on_regression else 0


def cmd_compare(args: argparse.Namespace) -> int:
    if not 0 < args.alpha < 1:
        raise UsageError(f"--alpha: {args.alpha} must be between 0 and 1")
    config = CompareConfig(parse_threshold(args.threshold), args.alpha)
    return compare(args.baseline, args.current, config, args.out, args.fail_on_regression, args.allow_env_change)
