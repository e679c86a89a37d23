"""``bench report``: plots plus report.md and a self-contained report.html, from CSVs only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bench.core.errors import UsageError
from bench.records.files import write_text_atomic
from bench.report import sections_fastest, sections_gpu, sections_stream
from bench.report import sections_impl as impl
from bench.report import sections_instructions as counts
from bench.report import sections_roofline as roofline
from bench.report import sections_scaling as scaling
from bench.report import sections_tables as tables
from bench.report import sections_versus as versus
from bench.report.answers import precision
from bench.report.document import Blocks, Document, Paragraph, to_html, to_markdown
from bench.report.findings import findings
from bench.report.load import load_many


def build_report(paths: Sequence[Path], out_dir: Path) -> tuple[Path, Path]:
    """Write the report for ``paths`` into ``out_dir``; returns (report.md, report.html)."""
    df = load_many(paths)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {out_dir}: cannot create the folder ({e.strerror})") from None
    machines = sorted(df["machine"].unique())
    doc = Document("rnnbench report")
    ok = int((df["status"] == "ok").sum())
    # Instruction rows have their own section; the time sections read times alone.
    counted, timed = df[df["metric"] == "instructions"], df[df["metric"] == "time"]
    # Stream rows time one call, not a whole batch: they have their own section and findings and
    # are never pooled with the others (the summary table lists every case).
    streamed, batches = timed[timed["mode"] == "stream"], timed[timed["mode"] != "stream"]
    precise = f" {precision(batches)[0]}." if (batches["status"] == "ok").any() else ""
    doc.add(
        Paragraph(
            f"{len(df)} cases ({ok} ok) from {', '.join(sorted(df['source'].unique()))}, on {'; '.join(machines)}."
            f"{precise} Times and counts are per step, one forward call over one batch (forward and backward for "
            "training; a stream's: one call): medians with their 95% confidence interval; tokens/s counts valid "
            "tokens only."
        )
    )
    doc.add(*findings(batches, streamed))
    doc.add(*tables.environment(df))
    doc.add(*counts.instructions(counted, timed))
    if not batches.empty or (counted.empty and streamed.empty):
        doc.add(*time_sections(batches, out_dir))
    doc.add(*sections_stream.streaming(streamed, out_dir))
    doc.add(*tables.pivot(batches))
    doc.add(*tables.problems(df))
    if not timed.empty:
        doc.add(*tables.summary(timed))  # every case, last
    md, page = out_dir / "report.md", out_dir / "report.html"
    write_text_atomic(md, to_markdown(doc))
    write_text_atomic(page, to_html(doc, out_dir))
    return md, page


def time_sections(df: pd.DataFrame, out_dir: Path) -> Blocks:
    """The sections drawn from timed rows, in reading order."""
    return [
        *scaling.scaling(df, out_dir, "batch_size", "seq_len"),
        *scaling.scaling(df, out_dir, "seq_len", "batch_size"),
        *scaling.packing(df, out_dir),
        *scaling.threads(df, out_dir),
        *impl.implementations(df, out_dir),
        *sections_fastest.fastest(df),
        *scaling.depth_direction(df, out_dir),
        *versus.lstm_vs_gru(df, out_dir),
        *versus.user_models(df, out_dir),
        *versus.cpu_vs_gpu(df, out_dir),
        *versus.across_machines(df, out_dir),
        *roofline.roofline(df, out_dir),
        *versus.training_split(df, out_dir),
        *versus.backend(df, out_dir),
        *sections_gpu.gpu(df),
        *tables.profiles(df, out_dir.parent / "profiles", out_dir),
    ]
