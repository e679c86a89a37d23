"""The report's opening: what the run covers, how precise it is, and a table with a row per
question a reader brings, each answered in words and numbers and linked to its section.

The numbers are the ones the sections print (``bench.report.answers``): a row per stratum
of cases that agree on every factor known to change the ratio, its median ratio, its
measurement 95% CI and its spread over cases, named apart.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from bench.report import answers
from bench.report.answers import QUESTIONS, Answer, answer, compile_text, efficiency_text, matrix_blocks, precision
from bench.report.document import Blocks, Findings, Heading, Paragraph
from bench.report.sections_fastest import TITLE as FASTEST
from bench.report.sections_fastest import fastest_by_shape, strata_lines
from bench.report.sections_roofline import bounds_text
from bench.report.sections_stream import TITLE as STREAM
from bench.report.sections_stream import finding_lines
from bench.report.slices import ok_rows

TITLE = "Key findings"
HEADER = ["question", "verdict", "cases compared", "ratio", "measurement 95% CI", "spread over cases", "n"]


def _rows(a: Answer) -> list[list[str]]:
    """A question's rows: the first carries the question and its verdict, one per stratum."""
    verdict = a.verdict()
    extra = " ".join(t for t in (a.left_out_text(), a.states_text()) if t)
    if extra:
        verdict += ". " + extra
    if not a.found:
        return [[a.label, verdict, "", "", "", "", ""]]
    out = []
    if a.matrix is not None:
        out.append([a.label, verdict, "controlled padding: the matrix below", "", "", "", ""])
    for s in a.strata:
        out.append(["", "", s.label(), s.ratio_text(), s.ci_text(), s.spread_text(), s.cases_text()])
    if a.matrix is None:
        out[0][:2] = [a.label, verdict]
    return out


def scope(df: pd.DataFrame) -> str:
    """One sentence on what the run covers."""

    def values(column: str, fmt: Callable[[object], str] = str) -> str:
        found = sorted(df[column].dropna().unique(), key=lambda v: (str(type(v)), v))
        return ", ".join(fmt(v) for v in found)

    return (
        f"Scope: devices {values('device')}; dtypes {values('dtype')}; batch sizes {values('batch_size')}; "
        f"lengths {values('seq_len')} (distributions {values('lengths')}); threads {values('threads')}; "
        f"torch {values('torch_version')}; on {'; '.join(sorted(df['machine'].unique()))}."
    )


def findings(df: pd.DataFrame, streamed: pd.DataFrame | None = None) -> Blocks:
    """The scope, the run's precision, and the findings table with the padding matrix; the
    streaming tail's rows from ``streamed`` (stream rows, never pooled with ``df``'s)."""
    rows = ok_rows(df)
    stream_lines = finding_lines(streamed) if streamed is not None else []
    if rows.empty and not stream_lines:
        return []
    if rows.empty:
        table = [[label, text, "", "", "", "", ""] for label, text in stream_lines]
        scope_rows = ok_rows(streamed) if streamed is not None else rows
        return [Heading(TITLE), Paragraph(scope(scope_rows)), Findings(HEADER, table, [STREAM] * len(table))]
    table: list[list[str]] = []
    sections: list[str] = []
    matrix = None
    for q in QUESTIONS:
        a = answer(rows, q.key)
        if q.key == "machine" and not a.found:
            continue  # one machine: nothing to compare, nothing to add
        matrix = a.matrix if q.key == "packing" else matrix
        got = _rows(a)
        table += got
        sections += [q.section] * len(got)
    for label, text in strata_lines(fastest_by_shape(rows)):
        table.append([label, text, "", "", "", "", ""])
        sections.append(FASTEST)
    for label, text, section in (
        ("torch.compile's first (compiling) step", compile_text(rows), answers.IMPLEMENTATIONS),
        ("what bounds the cases", bounds_text(rows), answers.EFFICIENCY),
        ("efficiency", efficiency_text(rows), answers.EFFICIENCY),
    ):
        if text:
            table.append([label, text, "", "", "", "", ""])
            sections.append(section)
    for label, text in stream_lines:
        table.append([label, text, "", "", "", "", ""])
        sections.append(STREAM)
    _, row = precision(rows)
    table.append(row)
    sections.append(answers.PRECISION)
    note = (
        "Each ratio is a median over the cases compared. Cases are pooled only where the ratio agrees within 10% "
        "across every factor known to change it (model, input path, mode, device, kernels, lengths, "
        "implementation, dtype, TF32); otherwise they are split by the factor that matters. The measurement "
        "CI comes from the cases' own intervals; the spread is how far the cases lie apart. Pairs with wrong "
        "outputs are left out."
    )
    return [
        Heading(TITLE),
        Paragraph(scope(rows)),
        Paragraph(note),
        Findings(HEADER, table, sections),
        *matrix_blocks(matrix),
    ]
