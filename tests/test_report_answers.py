"""Honest answers: findings never pool unlike cases, never crown a wrong result, never contradict
their sections, and every section with data in the run shows it (on every preset's case list)."""

from __future__ import annotations

import re
from pathlib import Path

import factories
import numpy as np
import pandas as pd
import pytest
from factories import make_case

from bench.cli import main
from bench.core.spec import expand, load_spec, preset_names
from bench.report.answers import AGREE, answer
from bench.report.load import load_many

REPO = Path(__file__).resolve().parent.parent
REFERENCE = [REPO / "results" / "reference" / f"{name}-cpu.csv" for name in ("default", "padding")]
HEADER = "| question | verdict | cases compared | ratio | measurement 95% CI | spread over cases | n | section |"


def report_md(runs: list[Path], out: Path) -> str:
    assert main(["report", *map(str, runs), "--out", str(out)]) == 0
    return (out / "report.md").read_text(encoding="utf-8")


def section(md: str, title: str) -> str:
    return md.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def findings_rows(md: str) -> list[dict[str, str]]:
    """The findings table as dicts; a row without a question belongs to the one above it."""
    lines = section(md, "Key findings").split(HEADER, 1)[1].split("\n\n", 1)[0].strip().splitlines()[1:]
    rows, question = [], ""
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        question = cells[0] or question
        target = re.search(r"\[(.+)\]\(#", cells[7])
        rows.append(dict(zip(("question", "verdict", "where", "ratio", "ci", "spread", "n"), cells, strict=False)))
        rows[-1].update(question=question, section=target.group(1).replace("\\", "") if target else "")
    return rows


def test_native_kernels_and_gru_lstm_are_given_per_stratum_on_the_reference_runs():
    df = load_many(REFERENCE)
    native = answer(df, "native")
    assert {s.label() for s in native.strata} == {"gru", "lstm"}  # not one median of 1.0x and 3.5x
    by_model = {s.label(): s.median for s in native.strata}
    assert by_model["lstm"] > 1.5 and by_model["lstm"] / by_model["gru"] > AGREE  # oneDNN serves LSTM alone
    model = answer(df, "model")
    labels = [s.label() for s in model.strata]
    packed = [s for s in model.strata if "packed" in s.label()]
    padded = [s for s in model.strata if s.label().startswith("padded") and "native" not in s.label()]
    assert packed and padded, labels  # GRU/LSTM is given per input path
    assert max(s.median for s in packed) < 1 < min(s.median for s in padded)
    for a in (native, model):  # no stratum hides disagreeing parts: each part agrees with its stratum
        for s in a.strata:
            assert s.ratio.size >= 1 and s.ci[0] <= s.median <= s.ci[1]


@pytest.mark.slow
def test_strata_that_agree_are_pooled_and_strata_that_disagree_are_given_apart(tmp_path):
    rng = np.random.default_rng(3)
    outcomes = {}
    for model, mode, batch in [(m, mode, b) for m in ("lstm", "gru") for mode in ("inference", "training")
                               for b in (4, 8, 16)]:  # fmt: skip
        base = 10.0 * batch * (3 if mode == "training" else 1)
        native = 3.0 if model == "lstm" else 1.0  # agrees across modes, disagrees across models
        outcomes[make_case(model=model, mode=mode, batch_size=batch)] = base * rng.lognormal(0, 0.005, 12)
        outcomes[make_case(model=model, mode=mode, batch_size=batch, backend="native")] = (
            base * native * rng.lognormal(0, 0.005, 12)
        )
    run = factories.write_run(tmp_path / "run.csv", outcomes)
    a = answer(load_many([run]), "native")
    assert [(s.label(), s.cases) for s in a.strata] == [("gru", 6), ("lstm", 6)]  # modes pooled, models not
    assert abs(a.strata[1].median - 3.0) < 0.05 and abs(a.strata[0].median - 1.0) < 0.05
    rows = [r for r in findings_rows(report_md([run], tmp_path / "rep")) if r["question"].startswith("native")]
    assert [r["where"] for r in rows] == ["gru", "lstm"] and "native kernels slower for lstm" in rows[0]["verdict"]


def test_a_wrong_result_is_never_best_nor_the_base_of_a_finding(tmp_path):
    cases = [make_case(bidirectional=True, varlen=v, batch_size=b) for v in ("padded", "packed") for b in (4, 8)]
    run = factories.synthetic_run(tmp_path / "run.csv", cases)
    df = pd.read_csv(run, dtype=str, keep_default_na=False)
    df.loc[df["varlen"] == "padded", "median_ms"] = "0.001"  # the wrong variant is also the fastest
    df.loc[df["varlen"] == "padded", ["ci_low_ms", "ci_high_ms"]] = ["0.0009", "0.0011"]
    df.to_csv(run, index=False)
    md = report_md([run], tmp_path / "rep")
    table = section(md, "Variants side by side")
    assert "(best)" in table and "(wrong outputs)" in table
    for line in table.splitlines():
        if "wrong outputs" in line:
            assert re.search(r"0\.001 ±\d+% \(wrong outputs\)", line) and re.search(r"\(best\)", line)
    packing = [r for r in findings_rows(md) if r["question"] == "packed / padded time"]
    assert (
        "not in this run" not in packing[0]["verdict"]
        and "Left out: 2 pair(s) with wrong outputs" in (packing[0]["verdict"])
    )
    assert not [r for r in packing if r["ratio"]]  # nothing measured against the wrong base


def _preset_cases(name: str) -> list:
    spec = load_spec(name)
    cuda_only = set(spec.axes.get("device", ())) == {"cuda"}  # gpu, full: CUDA cases only
    cases = expand(spec, cuda_available=cuda_only, default_threads=2)
    return [c for c in cases if c.model in ("lstm", "gru")]


# A section that says "Not shown: the data lacks <what>" must not be about an axis the run varies.
SECTION_AXES = {
    ("Threads", "CPU runs at 1 and more threads"): lambda d: (
        d[d["device"] == "cpu"]["threads"].nunique() > 1 and (d["threads"] == 1).any()
    ),
    ("Packed vs padded", "packed and padded runs"): lambda d: {"packed", "padded"} <= set(d["varlen"]),
    ("Cost of depth and direction", "more than one layer count"): lambda d: (
        d[d["varlen"].isin(("packed", "exact"))][["num_layers", "bidirectional"]].drop_duplicates().shape[0] > 1
    ),
    ("LSTM vs GRU", "both models"): lambda d: d["model"].nunique() > 1,
    ("Backend: cuDNN/oneDNN vs native kernels", "default and native"): lambda d: d["backend"].nunique() > 1,
    ("Latency and throughput against batch size", "batch_size values"): lambda d: d["batch_size"].nunique() > 1,
    ("Latency and throughput against seq len", "seq_len values"): lambda d: d["seq_len"].nunique() > 1,
}


def check_report(runs: list[Path], out: Path) -> None:
    """Every finding's numbers appear in its section; no section misses an axis the run has."""
    md = report_md(runs, out)
    every = load_many(runs)
    df = every[every["mode"] != "stream"]  # stream rows have a section of their own, nothing else
    if (every["mode"] == "stream").any():
        assert "## Streaming: latency per call and its tail" in md
    for (title, what), has in SECTION_AXES.items():
        if not df.empty and has(df):
            assert f"Not shown: the data lacks {what}" not in section(md, title), title
    rows = findings_rows(md)
    assert rows and all(r["section"] for r in rows)
    for r in rows:
        text = section(md, r["section"])
        if r["ratio"].endswith("×"):
            assert f"{r['ratio']} (measurement 95% CI {r['ci']}" in text, (r, text[:400])
        if "not in this run" in r["verdict"]:
            # "not in this run" is false when the run holds every value the suggested flag adds.
            flag = re.search(r"`--([a-z-]+) ([^` ]+)", r["verdict"])
            axis = flag.group(1).replace("-", "_") if flag else ""
            if axis in df.columns and axis != "device":
                wanted = set(flag.group(2).lower().split(","))
                assert not wanted <= set(df[axis].astype(str).str.lower()), r
    if df.empty:
        return  # a stream run: no padding matrix
    packing = section(md, "Packed vs padded")
    for line in section(md, "Key findings").splitlines():
        if line.startswith("| gru ") or line.startswith("| lstm "):  # the padding matrix, shown in both
            assert line in packing


@pytest.mark.slow
@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_gets_sections_with_its_axes_and_findings_its_sections_repeat(preset, tmp_path):
    run = factories.synthetic_run(tmp_path / "run.csv", _preset_cases(preset))
    check_report([run], tmp_path / "rep")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_random_subsets_of_the_default_preset_keep_findings_and_sections_in_step(seed, tmp_path):
    cases = _preset_cases("default")
    rng = np.random.default_rng(seed)
    keep = [c for c, k in zip(cases, rng.random(len(cases)) < 0.4, strict=True) if k]
    run = factories.synthetic_run(tmp_path / "run.csv", keep, seed=seed)
    check_report([run], tmp_path / "rep")


@pytest.mark.slow
def test_the_threads_section_finds_its_rows_in_the_default_preset(tmp_path):
    run = factories.synthetic_run(tmp_path / "run.csv", _preset_cases("default"))
    md = report_md([run], tmp_path / "rep")
    assert "![Threads](threads.png)" in section(md, "Threads")
    threads = [r for r in findings_rows(md) if r["section"] == "Threads" and r["ratio"]]
    assert threads and all(abs(float(r["ratio"][:-1]) - 1 / 1.8) < 0.02 for r in threads)


@pytest.mark.slow
def test_two_machines_load_together_and_are_compared_case_by_case(tmp_path):
    df = pd.read_csv(REFERENCE[0], dtype=str, keep_default_na=False)
    other = tmp_path / "other-machine.csv"
    slower = df.copy()
    slower["cpu_model"] = "Intel Xeon (relabelled copy)"
    for col in ("median_ms", "ci_low_ms", "ci_high_ms"):
        values = pd.to_numeric(slower[col], errors="coerce") * 1.5
        slower[col] = values.map(lambda v: "" if pd.isna(v) else f"{v:.6g}")
    slower.to_csv(other, index=False)
    md = report_md([REFERENCE[0], other], tmp_path / "rep")
    rows = [r for r in findings_rows(md) if r["section"] == "Across machines"]
    assert rows and all(r["ratio"] in ("1.50×", "0.67×") for r in rows if r["ratio"])
    assert "AMD EPYC, 2 CPUs" in md and "Intel Xeon (relabelled copy)" in md
    assert "(machines.png)" in section(md, "Across machines")


def test_a_case_ratio_ci_combines_both_sides_in_quadrature_on_the_log_scale():
    from bench.report.answers import case_ratio_ci

    p = pd.DataFrame(
        {"median_ms_a": [10.0], "ci_low_ms_a": [9.0], "ci_high_ms_a": [11.0],
         "median_ms_b": [5.0], "ci_low_ms_b": [4.5], "ci_high_ms_b": [5.5]}
    )  # fmt: skip
    ratio, low, high = case_ratio_ci(p)
    assert ratio[0] == pytest.approx(2.0)
    assert low[0] == pytest.approx(2 * np.exp(-np.hypot(np.log(10 / 9), np.log(5.5 / 5))))
    assert high[0] == pytest.approx(2 * np.exp(np.hypot(np.log(11 / 10), np.log(5 / 4.5))))


def test_a_stratum_interval_is_the_median_of_its_cases_interval_ends(tmp_path):
    rng = np.random.default_rng(5)
    outcomes = {}
    for batch in (4, 8, 16):
        outcomes[make_case(batch_size=batch)] = 10.0 * batch * rng.lognormal(0, 0.05, 12)
        outcomes[make_case(batch_size=batch, backend="native")] = 20.0 * batch * rng.lognormal(0, 0.05, 12)
    df = load_many([factories.write_run(tmp_path / "run.csv", outcomes)])
    (s,) = answer(df, "native").strata
    assert s.ci[0] < s.median < s.ci[1]  # samples spread ±5%: the interval has width
    assert s.ci == (pytest.approx(float(np.median(s.low))), pytest.approx(float(np.median(s.high))))


def test_a_slice_is_where_its_axis_varies_even_off_the_preferred_values():
    from bench.report.slices import typical

    df = load_many(REFERENCE)
    # Move the thread scan off the preferred implementation; the preferred slice keeps more rows.
    scan = df["threads"] == 1
    keys = ["model", "mode", "batch_size", "seq_len"]
    at_one = df[scan][keys].merge(df, on=keys).index
    moved = df.copy()
    moved.loc[df.index.isin(at_one) | scan, "impl"] = "cells"
    moved = moved.drop_duplicates("case_id")
    rows = typical(moved[moved["impl"] == "cells"].pipe(lambda d: pd.concat([d, moved[moved["impl"] == "module"]])),
                   vary=["threads"])  # fmt: skip
    assert set(rows["threads"]) == {1, 2}


def test_findings_read_the_modules_unless_the_question_is_about_implementations(tmp_path):
    outcomes = {}
    for batch in (4, 8):
        for impl, native in (("module", 3.0), ("cells", 1.0)):  # the cell loop never uses oneDNN
            outcomes[make_case(batch_size=batch, impl=impl)] = [10.0 * batch] * 12
            outcomes[make_case(batch_size=batch, impl=impl, backend="native")] = [10.0 * batch * native] * 12
    df = load_many([factories.write_run(tmp_path / "run.csv", outcomes)])
    (s,) = answer(df, "native").strata
    assert s.cases == 2 and s.median == pytest.approx(3.0)


def test_cpu_vs_gpu_is_given_per_cpu_machine_never_pooled(tmp_path):
    gpu = [make_case(device="cuda", batch_size=b) for b in (4, 8)]
    cpu = [make_case(batch_size=b) for b in (4, 8)]
    runs = [factories.synthetic_run(tmp_path / "gpu.csv", gpu, gpu_name="H200")]
    for name, factor in (("fast", 1.0), ("slow", 3.0)):
        path = factories.synthetic_run(tmp_path / f"{name}.csv", cpu, cpu_model=f"{name} CPU")
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        for col in ("median_ms", "ci_low_ms", "ci_high_ms"):
            df[col] = (df[col].astype(float) * factor).map(lambda v: f"{v:.6g}")
        df.to_csv(path, index=False)
        runs.append(path)
    found = answer(load_many(runs), "device")
    assert sorted(s.label() for s in found.strata) == ["fast CPU on h", "slow CPU on h"]
    assert sorted(s.median for s in found.strata) == [pytest.approx(0.1 / 3, rel=0.03), pytest.approx(0.1, rel=0.03)]


def test_old_files_of_two_hosts_without_cpu_counts_are_two_machines(tmp_path):
    paths = []
    for host in ("alpha", "beta"):
        path = factories.write_run(tmp_path / f"{host}.csv", {make_case(): [1.0] * 8}, host=host)
        df = pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=["cpu_count", "mem_gib"])
        df.assign(schema_version="3").to_csv(path, index=False)
        paths.append(path)
    assert sorted(load_many(paths)["machine"]) == ["test cpu on alpha", "test cpu on beta"]


def test_a_padding_row_whose_cells_all_split_is_left_out_not_a_crash(tmp_path):
    cases = [make_case(varlen=v, lengths=f, dtype=d) for v in ("padded", "packed")
             for f in ("pad:0.25", "pad:0.5") for d in ("float32", "bfloat16")]  # fmt: skip
    run = factories.synthetic_run(tmp_path / "run.csv", cases)
    df = pd.read_csv(run, dtype=str, keep_default_na=False)
    slow = (df["varlen"] == "packed") & (df["dtype"] == "bfloat16")  # the dtypes disagree at every fraction
    for col in ("median_ms", "ci_low_ms", "ci_high_ms"):
        df.loc[slow, col] = (df.loc[slow, col].astype(float) * 1.6).map(lambda v: f"{v:.6g}")
    df.to_csv(run, index=False)
    md = report_md([run], tmp_path / "rep")
    assert "| lstm inference |" not in section(md, "Key findings")  # no empty matrix row


def test_a_stratum_with_cases_lacking_a_ci_says_so_instead_of_nan(tmp_path):
    outcomes = {}
    for batch in (4, 8, 16):
        outcomes[make_case(batch_size=batch)] = [10.0 * batch] * 8
        outcomes[make_case(batch_size=batch, backend="native")] = [20.0 * batch] * 8
    run = factories.write_run(tmp_path / "run.csv", outcomes)
    df = pd.read_csv(run, dtype=str, keep_default_na=False)
    df.loc[0, ["ci_low_ms", "ci_high_ms"]] = ["", ""]
    df.to_csv(run, index=False)
    md = report_md([run], tmp_path / "rep")
    assert "nan" not in section(md, "Key findings") and "(1 case(s) without a CI)" in md


def test_code_spans_from_csv_text_cannot_smuggle_html_into_markdown(tmp_path):
    from bench.report.document import md_inline

    assert "<script>" not in md_inline("Evil`\n\n<script>alert(1)</script>\n\n`CPU")
    assert md_inline("add `--threads 1,2` to it") == "add `--threads 1,2` to it"
    assert "|" not in md_inline("a `x|y` b").replace("\\|", "")


def test_compile_answer_is_in_its_section_even_without_packed_rows(tmp_path):
    cases = [make_case(impl=i, batch_size=b) for i in ("module", "compiled") for b in (4, 8)]
    run = factories.synthetic_run(tmp_path / "run.csv", cases)
    check_report([run], tmp_path / "rep")


def test_the_padding_curve_calls_faster_only_what_the_matrix_does(tmp_path):
    rng = np.random.default_rng(9)
    outcomes = {}
    for frac, packed in (("pad:0.25", 0.99), ("pad:0.5", 0.5)):  # 0.99x is noise, not "faster"
        outcomes[make_case(lengths=frac)] = 10.0 * rng.lognormal(0, 0.02, (3, 6))
        outcomes[make_case(lengths=frac, varlen="packed")] = 10.0 * packed * rng.lognormal(0, 0.02, (3, 6))
    md = report_md([factories.write_run(tmp_path / "run.csv", outcomes)], tmp_path / "rep")
    assert "packing pays for lstm inference from 50% padding" in md
    assert re.search(r"packed lstm inference: 0\.9\d× at 25% to 0\.5\d× at 50% \(faster than padded at 50%\)", md)
