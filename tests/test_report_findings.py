"""The report's key findings: a number, a CI and a link per question the run can answer,
and the flags to add for the questions it cannot."""

from __future__ import annotations

import itertools
import re

import factories
import numpy as np
import pytest
from factories import make_case

from bench.cli import main
from bench.report.document import anchor

# time factor of each variant, by (mode, padding): packing pays at 50% padding, not at 10%
PACKED = {
    ("inference", "pad:0.1"): 1.2,
    ("inference", "pad:0.5"): 0.8,
    ("training", "pad:0.1"): 1.5,
    ("training", "pad:0.5"): 0.9,
}
THREADS = {1: 1.0, 2: 1 / 1.8}  # 1.8x faster on two threads


def samples(median: float, rng: np.random.Generator) -> np.ndarray:
    return median * rng.lognormal(0, 0.01, 12)


def test_findings_answer_packing_per_padding_and_threads_with_a_ci_and_a_link(tmp_path):
    rng = np.random.default_rng(0)
    outcomes = {}
    for mode, lengths, threads, varlen, batch in itertools.product(
        ("inference", "training"), ("pad:0.1", "pad:0.5"), (1, 2), ("padded", "packed"), (8, 16, 32)
    ):
        case = make_case(mode=mode, lengths=lengths, threads=threads, varlen=varlen, batch_size=batch)
        factor = PACKED[(mode, lengths)] if varlen == "packed" else 1.0
        outcomes[case] = samples(10.0 * batch * factor * THREADS[threads], rng)
    run = factories.write_run(tmp_path / "run.csv", outcomes)
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    findings = md.split("## Key findings", 1)[1].split("\n## ", 1)[0]
    # The padding matrix: a row per model and mode, a column per padding fraction.
    assert "| packed / padded time at controlled padding | 10% padding | 50% padding |" in findings
    for mode in ("inference", "training"):
        row = re.search(rf"^\| lstm {mode} \| ([\d.]+)× \(([\d.]+)–([\d.]+)\) \| ([\d.]+)× \(([\d.]+)–([\d.]+)\) \|$",
                        findings, re.M)  # fmt: skip
        assert row, findings
        for k, lengths in ((1, "pad:0.1"), (4, "pad:0.5")):
            ratio, low, high = (float(row.group(k + i)) for i in range(3))
            assert abs(ratio - PACKED[(mode, lengths)]) < 0.02 and low <= ratio <= high and high - low < 0.1
    assert "packing pays for lstm inference from 50% padding; lstm training from 50% padding" in findings
    threads = re.search(
        r"^\| time at 2 threads / at 1 thread \| .*? \| all cases \| ([\d.]+)× \| ([\d.]+)–([\d.]+) \| .*"
        r"\[Threads\]\(#threads\) \|$",
        findings,
        re.M,
    )
    assert threads and abs(float(threads.group(1)) - 1 / 1.8) < 0.02
    html = (tmp_path / "rep" / "report.html").read_text()
    for section in ("Packed vs padded", "Threads", "Key findings"):
        assert f"id='{anchor(section)}'" in html and f"href='#{anchor(section)}'" in html
    assert (tmp_path / "rep" / "threads.png").exists() and "![Threads](threads.png)" in md
    # The packing section's curve over the controlled padding fraction.
    assert (tmp_path / "rep" / "packing_padding.png").exists()
    assert re.search(r"packed lstm inference: 1\.[12]\d× at 10% to 0\.[78]\d× at 50% \(faster than padded at 50%\)", md)
    assert re.search(r"packed lstm training: 1\.[45]\d× at 10% to 0\.[89]\d× at 50% \(faster than padded at 50%\)", md)


def test_questions_the_run_cannot_answer_say_which_flags_add_them(tmp_path):
    run = factories.write_run(tmp_path / "run.csv", {make_case(): [1.0] * 10, make_case(batch_size=8): [2.0] * 10})
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    findings = md.split("## Key findings", 1)[1].split("\n## ", 1)[0]
    assert "Scope: devices cpu; dtypes float32; batch sizes 4, 8" in findings
    for question, flag in (
        ("packed / padded time", "--varlen padded,packed"),
        ("time at most threads / at 1 thread", "--threads 1,2"),
        ("GRU / LSTM time", "--model lstm,gru"),
    ):
        assert re.search(rf"^\| {re.escape(question)} \| not in this run \(add `{re.escape(flag)}", findings, re.M), (
            question
        )


def test_markdown_contents_link_every_section_as_github_names_them(tmp_path):
    run = factories.write_run(tmp_path / "run.csv", {make_case(): [1.0] * 10})
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    headings = re.findall(r"^## (.+)$", md, re.M)
    contents = re.findall(r"^\d+\. \[(.+)\]\(#(.+)\)$", md, re.M)
    assert [h for h, _ in contents] == headings
    assert ("Backend: cuDNN/oneDNN vs native kernels", "backend-cudnnonednn-vs-native-kernels") in contents


def test_the_variant_table_has_a_row_per_shape_sorted_by_value_and_a_column_per_variant(tmp_path):
    outcomes = {}
    for batch in (128, 8, 32):  # written out of order: the table sorts by value
        outcomes[make_case(batch_size=batch, varlen="padded")] = [2.0 * batch] * 10
        outcomes[make_case(batch_size=batch, varlen="packed")] = [3.0 * batch] * 10
    outcomes[make_case(batch_size=8, varlen="exact")] = [8.0] * 10
    run = factories.write_run(tmp_path / "run.csv", outcomes)
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    table = md.split("## Variants side by side", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| lstm")]
    # Shapes run with the same variants share a table: no column left empty.
    assert "| shape | padded | packed | exact |" in table and "| shape | padded | packed |" in table
    assert [r.split(" b")[1].split(" ")[0] for r in rows] == ["8", "32", "128"]
    assert rows[0].endswith("| 16 ±0% (2.00×) | 24 ±0% (3.00×) | 8 ±0% (best) |")
    assert rows[2].endswith("| 256 ±0% (best) | 384 ±0% (1.50×) |")
    assert md.rindex("## Every case") > md.index("## Variants side by side")  # every case last


def test_a_question_with_fewer_than_three_cases_names_each_case_even_when_it_varies_the_model(tmp_path):
    lstm, gru = make_case(model="lstm", batch_size=8), make_case(model="gru", batch_size=8)
    run = factories.write_run(tmp_path / "run.csv", {lstm: [2.0] * 10, gru: [3.0] * 10})
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert re.search(r"^\| GRU / LSTM time \| GRU slower \| all cases \| 1\.50× \| 1\.50–1\.50 \| "
                     r"one case \(gru b8 L16\) \| 1 \|", md, re.M)  # fmt: skip


@pytest.mark.slow
def test_ratio_plots_carry_bootstrap_cis_from_the_raw_samples_and_say_when_they_cannot(tmp_path):
    rng = np.random.default_rng(1)
    outcomes = {}
    for batch in (4, 8, 16):
        outcomes[make_case(model="lstm", batch_size=batch)] = samples(10.0 * batch, rng)
        outcomes[make_case(model="gru", batch_size=batch)] = samples(15.0 * batch, rng)
    run = factories.write_run(tmp_path / "run.csv", outcomes)
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    section = md.split("## LSTM vs GRU", 1)[1].split("\n## ", 1)[0]
    found = re.search(
        r"Bars: 95% CI of each case's ratio from the raw samples \(3 of 3 cases; "
        r"the narrowest ±([\d.]+)%, the widest ±([\d.]+)%\)",
        section,
    )
    assert found and 0 < float(found.group(1)) <= float(found.group(2)) < 5  # 1% noise per side
    # A filtered copy without its samples file still renders, without bars, and says so.
    bare = tmp_path / "bare" / "run.csv"
    bare.parent.mkdir()
    bare.write_text(run.read_text())
    assert main(["report", str(bare), "--out", str(tmp_path / "rep2")]) == 0
    assert "No bars: the runs' raw samples files are missing." in (tmp_path / "rep2" / "report.md").read_text()


def test_the_variant_table_shades_cells_by_their_ratio_to_the_best_in_html(tmp_path):
    outcomes = {
        make_case(varlen="padded"): [10.0] * 10,
        make_case(varlen="packed"): [20.0] * 10,
        make_case(varlen="exact"): [14.0] * 10,
    }
    run = factories.write_run(tmp_path / "run.csv", outcomes)
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "<td style='background:#d1e5f0'>10 ±0% (best)</td>" in html
    assert "<td style='background:#f4a582'>20 ±0% (2.00×)</td>" in html  # 2x: full red
    assert re.search(r"<td style='background:#[0-9a-f]{6}'>14 ±0% \(1\.40×\)</td>", html)
