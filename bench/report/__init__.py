"""``bench report``: plots plus report.md and a self-contained report.html, from CSVs only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.errors import UsageError
from bench.report import sections_compare as compare
from bench.report import sections_gpu
from bench.report import sections_impl as impl
from bench.report import sections_scaling as scaling
from bench.report import sections_tables as tables
from bench.report.document import Document, Paragraph, to_html, to_markdown
from bench.report.load import load_many
from bench.results import write_text_atomic


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
    doc.add(
        Paragraph(
            f"{len(df)} cases ({ok} ok) from {', '.join(sorted(df['source'].unique()))}, on {', '.join(machines)}. "
            "Times are per step, one forward call over one batch (forward and backward for training): medians "
            "of raw samples with their 95% confidence interval; tokens/s counts valid tokens only."
        )
    )
    doc.add(*scaling.scaling(df, out_dir, "batch_size", "seq_len"))
    doc.add(*scaling.scaling(df, out_dir, "seq_len", "batch_size"))
    doc.add(*scaling.packing(df, out_dir))
    doc.add(*impl.implementations(df, out_dir))
    doc.add(*scaling.depth_direction(df, out_dir))
    doc.add(*compare.lstm_vs_gru(df, out_dir))
    doc.add(*compare.user_models(df, out_dir))
    doc.add(*compare.cpu_vs_gpu(df, out_dir))
    doc.add(*compare.efficiency(df, out_dir))
    doc.add(*compare.training_split(df, out_dir))
    doc.add(*compare.backend(df, out_dir))
    doc.add(*sections_gpu.gpu(df))
    doc.add(*tables.profiles(df, out_dir.parent / "profiles", out_dir))
    doc.add(*tables.problems(df))
    doc.add(*tables.summary(df))
    doc.add(*tables.environment(df))
    md, page = out_dir / "report.md", out_dir / "report.html"
    write_text_atomic(md, to_markdown(doc))
    write_text_atomic(page, to_html(doc, out_dir))
    return md, page
