"""``bench profile``: why a case is slow: py-spy flame graphs and torch.profiler tables.

Each case gets ``<out>/<case_id>/`` with ``index.md`` (the case, the
environment, the command that reproduces it, links to the files), the py-spy
flame graph and speedscope profile, and the torch.profiler op table and trace.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from bench.core.cases import Case
from bench.measure import env
from bench.profiling import pyspy, torchprof
from bench.profiling.diff import op_diff
from bench.records.files import write_text_atomic
from bench.report.document import Document, Heading, Link, Paragraph, Table, to_markdown


def profile_case(case: Case, out_root: Path, use_pyspy: bool, use_torch: bool, seconds: int) -> Path:
    """Profile one case into ``out_root/<case_id>/``; returns that folder."""
    out = out_root / case.case_id
    out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    notes: list[str] = []
    if use_pyspy:
        got, problem = pyspy.record(case, out, seconds)
        files += got
        if problem:
            notes.append(problem)
            print(problem)
        else:
            notes.append(
                f"py-spy sampled {seconds} s per file of the warmed-up step loop (--native): it attached only after "
                "the child process had built the model and finished warm-up, so neither is in the flame graph."
            )
    if use_torch:
        files += torchprof.record(case, out)
        notes.append(
            f"torch.profiler: schedule wait={torchprof.WAIT}, warmup={torchprof.WARMUP}, active={torchprof.ACTIVE} "
            "steps; forward and backward are labelled ranges; ops.txt is sorted by self time."
        )
    write_index(case, out, files, notes, use_pyspy, use_torch, seconds)
    return out


def write_index(
    case: Case, out: Path, files: list[str], notes: list[str], use_pyspy: bool, use_torch: bool, seconds: int
) -> None:
    e = env.environment()
    flags = (["--py-spy"] if use_pyspy else []) + (["--torch"] if use_torch else [])
    command = shlex.join(["python", "-m", "bench", "profile", case.case_id, *flags, "--seconds", str(seconds)])
    doc = Document(f"Profile of {case.case_id}")
    doc.add(Heading("Case"), Table(["axis", "value"], [[k, str(v)] for k, v in case.columns().items()]))
    doc.add(
        Heading("Environment"),
        Table(
            ["", ""],
            [
                [k, str(e[k])]
                for k in (
                    "torch_version",
                    "cuda_version",
                    "cudnn_version",
                    "cpu_model",
                    "gpu_name",
                    "torch_threads",
                    "git_commit",
                    "host",
                )
            ],
        ),
    )
    doc.add(Heading("Reproduce"), Paragraph(command))
    doc.add(Heading("Files"), *[Link(name, name, DESCRIPTIONS.get(name, "")) for name in files])
    doc.add(Heading("How"), *[Paragraph(n) for n in notes])
    write_text_atomic(out / "index.md", to_markdown(doc))


DESCRIPTIONS = {
    "flame.svg": "py-spy flame graph (open in a browser; click to zoom)",
    "profile.speedscope.json": "the same samples for https://www.speedscope.app",
    "ops.txt": "torch.profiler top operators by self time",
    "ops.csv": "every operator: calls, self and total CPU time, device time (µs, over the active steps)",
    "trace.json": "Chrome/Perfetto trace (chrome://tracing or ui.perfetto.dev)",
}


def write_diff(a: Path, b: Path, out: Path, top: int = 25) -> Path:
    """The operators whose self time differs most between two profiled cases.

    The Markdown shows the ``top`` largest differences; the CSV holds every operator.
    """
    full = op_diff(a / "ops.csv", b / "ops.csv")
    table = full.head(top)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{a.name}--{b.name}"
    doc = Document("Profile comparison")
    doc.add(Paragraph(f"A: {a.name}"), Paragraph(f"B: {b.name}"))
    doc.add(Paragraph(f"Self CPU time per step (ms), the {top} operators whose time differs most (all in the CSV)."))
    doc.add(
        Table(
            ["operator", "A ms/step", "B ms/step", "B - A ms", "A calls", "B calls"],
            [
                [
                    r.operator,
                    f"{r.a_ms_per_step:.3f}",
                    f"{r.b_ms_per_step:.3f}",
                    f"{r.b_minus_a_ms:+.3f}",
                    str(r.a_calls),
                    str(r.b_calls),
                ]
                for r in table.itertuples()
            ],
        )
    )
    write_text_atomic(stem.with_suffix(".md"), to_markdown(doc))
    write_text_atomic(stem.with_suffix(".csv"), full.to_csv(index=False))
    return stem.with_suffix(".md")
