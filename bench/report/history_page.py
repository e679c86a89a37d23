"""The history page: trend plots, steps.csv, history.md and history.html (``bench history``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.analysis.history import STEP_COLUMNS, HistoryConfig
from bench.core.errors import UsageError
from bench.records.files import write_text_atomic
from bench.report.document import Document, Heading, Image, Paragraph, Table, to_html, to_markdown
from bench.report.plotting import new_figure, save
from bench.report.slices import short_label

SAME_COMMIT_NOTE = "same commit before: the machine changed, not the code"


def legend_label(row: pd.Series) -> str:
    """The case in a few words, with every axis that tells the cases of one plot apart."""
    backend = "" if row["backend"] == "default" else f" {row['backend']}"
    return f"{short_label(row)} h{row['hidden_size']} t{row['threads']}{backend}"


def trend_figure(group: pd.DataFrame, steps: pd.DataFrame, folder: Path, name: str) -> str:
    """Each case's median (95% CI) relative to its first run, against runs labelled by commit."""
    fig, axes = new_figure(height=3.4)
    ax = axes[0][0]
    for _, line in group.groupby("case_id"):
        line = line.sort_values("run_order")
        first = line["value"].iloc[0]
        ax.errorbar(
            line["run_order"],
            line["value"] / first,
            yerr=[(line["value"] - line["value_low"]) / first, (line["value_high"] - line["value"]) / first],
            marker="o",
            ms=3,
            capsize=2,
            label=legend_label(line.iloc[0]),
        )
    for run in steps["run_order"].unique():
        ax.axvline(run - 0.5, color="tab:red", ls="--", lw=0.8)
    runs = group.drop_duplicates("run_order").sort_values("run_order")
    ax.set_xticks(
        runs["run_order"],
        [f"#{r} {c}" for r, c in zip(runs["run_order"], runs["commit"], strict=True)],
        rotation=45,
        fontsize=9,
    )
    ax.set_xlabel("run (commit)")
    counted = (group["metric"] == "instructions").all()
    ax.set_ylabel("instructions / first run's" if counted else "median / first run's median (95% CI)")
    ax.legend(fontsize=9)
    return save(fig, folder, name, "Did a commit change the time?")


def _amount(ms: float, instructions: float) -> str:
    """A step's level in its unit: ms for a time line, instructions for a count line."""
    return f"{ms:.4g} ms" if pd.notna(ms) else f"{instructions:,.0f} instructions"


def write_history(df: pd.DataFrame, steps: pd.DataFrame, drift: pd.DataFrame, config: HistoryConfig, out: Path) -> None:
    """steps.csv, history.md, history.html and the trend plots into ``out``."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot create the folder ({e.strerror})") from None
    write_text_atomic(out / "steps.csv", steps[list(STEP_COLUMNS)].to_csv(index=False))
    doc = Document("rnnbench history")
    n_runs = df["run_id"].nunique()
    doc.add(
        Paragraph(
            f"{n_runs} runs, {df['case_id'].nunique()} cases, {df['machine'].nunique()} environment(s); "
            f"{len(steps)} step(s) beyond {config.threshold:.0%} in time, or {config.count_threshold:.0%} in "
            "instruction counts (PELT change points on log medians, at least two runs on each side, scaled by each "
            "line's CI and run-to-run scatter)."
        )
    )
    if n_runs < 4:
        doc.add(Paragraph("Fewer than 4 runs: steps need two runs on each side, so none can be detected yet."))
    doc.add(Heading("Steps, newest first"))
    if steps.empty:
        doc.add(Paragraph("No steps detected."))
    else:
        doc.add(
            Table(
                ["commit", "case", "before", "after", "ratio", "direction", "note", "environment"],
                [
                    [
                        r.commit,
                        r.case_id,
                        _amount(r.before_ms, r.before_instructions),
                        _amount(r.after_ms, r.after_instructions),
                        f"{r.ratio:.3f}",
                        r.direction,
                        SAME_COMMIT_NOTE if r.same_commit else "",
                        r.machine,
                    ]
                    for r in steps.itertuples()
                ],
            )
        )
    doc.add(Heading("Largest drift over the window"))
    doc.add(Paragraph("Median of the last two runs over the median of the first two, per case."))
    doc.add(
        Table(
            ["case", "runs", "first", "last", "ratio", "environment"],
            [
                [
                    r.case_id,
                    str(r.runs),
                    *(
                        f"{v:,.0f} instructions" if r.metric == "instructions" else f"{v:.4g} ms"
                        for v in (r.first, r.last)
                    ),
                    f"{r.ratio:.3f}",
                    r.machine,
                ]
                for r in drift.head(10).itertuples()
            ],
        )
    )
    doc.add(Heading("Trends"))
    # Groups with a step first, so the plots that matter come first.
    keys = df.groupby(["machine", "model", "mode"]).groups
    with_steps = set(steps["case_id"])
    ordered = sorted(keys, key=lambda k: not (set(df.loc[keys[k], "case_id"]) & with_steps))
    for i, key in enumerate(ordered):
        group = df.loc[keys[key]]
        file = trend_figure(group, steps[steps["case_id"].isin(group["case_id"])], out, f"trend_{i}")
        doc.add(Heading(f"{key[1]} {key[2]} on {key[0]}", level=3), Image(file, f"trend {key[1]} {key[2]}"))
    write_text_atomic(out / "history.md", to_markdown(doc))
    write_text_atomic(out / "history.html", to_html(doc, out))
