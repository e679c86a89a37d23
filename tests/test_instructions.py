"""Instruction counts (`--metric instructions`): the refusals, the row and samples contract,
compare/history/report on counted runs, and real counts under callgrind where valgrind is."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import factories
import numpy as np
import pandas as pd
import pytest
from factories import PROVENANCE, make_case

from bench.analysis.compare import CompareConfig, compare_runs
from bench.analysis.history import HistoryConfig, analyse, collect
from bench.cli import main
from bench.core.cases import Case
from bench.core.errors import UsageError
from bench.execution.counting import INSTALL_HINT, count_cases
from bench.records.files import AppendWriter, run_paths
from bench.records.outcomes import Counted, Failed, WorkFacts
from bench.records.reading import read_results, read_samples
from bench.records.rows import COLUMNS, COUNT_SAMPLE_COLUMNS, SCHEMA_VERSION, make_row, sample_rows

needs_valgrind = pytest.mark.skipif(
    shutil.which("valgrind") is None, reason="needs valgrind (apt-get install valgrind)"
)
FACTS = WorkFacts(valid_tokens=64, padding_fraction=0.0, gflop=0.01)
COUNT_ENV = {"cpu_capability": "AVX512", "python_version": "3.11.7"}


def counted(total: int, training: bool = False) -> Counted:
    """Five counted steps around ``total`` (training: a forward and a backward each)."""
    steps = [total - 2, total, total + 1, total - 1, total + 2]
    if training:
        return Counted({"fwd": [s // 3 for s in steps], "bwd": [s - s // 3 for s in steps]}, FACTS, "")
    return Counted({"fwd": steps}, FACTS, "")


def write_counts(path: Path, totals: dict[Case, int | str], run_id: str | None = None, **provenance: str) -> Path:
    """An instruction run's results and samples, through the results module's own writer."""
    rows, raw = AppendWriter(path, COLUMNS), AppendWriter(run_paths(path)[0], COUNT_SAMPLE_COLUMNS)
    for case, total in totals.items():
        outcome = Failed(total, "boom") if isinstance(total, str) else counted(total, case.mode == "training")
        rows.write(make_row(case, outcome, PROVENANCE | COUNT_ENV | provenance, run_id or path.stem))
        if isinstance(outcome, Counted):
            raw.write_many(sample_rows(case.case_id, outcome))
    rows.close()
    raw.close()
    return path


# --- refusals: one line, exit 2, before anything runs ---------------------------------------------


def test_missing_valgrind_exits_2_with_the_install_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no valgrind on it
    out = tmp_path / "r.csv"
    code = main(["run", "--preset", "ci-instructions", "--metric", "instructions", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "apt-get install valgrind" in err and "Traceback" not in err
    assert not out.exists()  # refused before the results file was made
    assert main(["ci", "--metric", "instructions", "--out", str(tmp_path / "ci")]) == 2
    assert INSTALL_HINT in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--device", "cuda"], "use --device cpu"),
        (["--threads", "2"], "use --threads 1"),
        (["--impl", "compiled"], "impl=compiled is not counted"),
        (["--side-by-side"], "drop --side-by-side"),
    ],
)
def test_what_cannot_be_counted_is_refused_in_one_line(tmp_path, capsys, monkeypatch, flags, says):
    monkeypatch.setattr("bench.execution.runner.valgrind", lambda: "/usr/bin/valgrind")  # the refusals come first
    code = main(["run", "--preset", "ci-instructions", "--metric", "instructions", *flags, "--list"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and says in err and len(err.splitlines()) == 1


def test_instruction_runs_count_one_thread_on_the_cpu(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("bench.execution.runner.valgrind", lambda: "/usr/bin/valgrind")
    assert main(["run", "--preset", "quick", "--metric", "instructions", "--device", "auto", "--list"]) == 0
    ids = capsys.readouterr().out.split()
    assert ids and all(Case.from_id(i).threads == 1 and Case.from_id(i).device == "cpu" for i in ids)


# --- the column contract --------------------------------------------------------------------------


def test_an_instruction_row_has_counts_and_no_times(tmp_path):
    path = write_counts(tmp_path / "c.csv", {make_case(mode="training"): 3_000_000, make_case(): 1_000_000})
    df = read_results(path).set_index("mode")
    train, infer = df.loc["training"], df.loc["inference"]
    assert (df["metric"] == "instructions").all() and (df["schema_version"] == SCHEMA_VERSION).all()
    assert train["instructions"] == 3_000_000 and train["fwd_instructions"] + train["bwd_instructions"] == 3_000_000
    assert pd.isna(infer["fwd_instructions"]) and infer["instructions_spread"] == pytest.approx(4 / 1_000_000)
    for column in ("median_ms", "ci_low_ms", "tokens_per_s", "gflop_per_s", "efficiency"):
        assert df[column].isna().all(), column
    assert (df["cpu_capability"] == "AVX512").all() and (df["python_version"] == "3.11.7").all()
    samples = read_samples(path)
    assert list(samples.columns[:4]) == list(COUNT_SAMPLE_COLUMNS) and samples["instructions"].dtype == np.int64
    assert len(samples) == 5 * 3  # five steps: two phases for training, one for inference


def test_a_time_row_keeps_its_times_and_says_time(tmp_path):
    path = factories.write_run(tmp_path / "t.csv", {make_case(): [1.0] * 10})
    df = read_results(path)
    assert (df["metric"] == "time").all() and df["instructions"].isna().all() and (df["median_ms"] > 0).all()


def test_a_version_1_file_reads_as_time_rows(tmp_path):
    path = factories.write_run(tmp_path / "t.csv", {make_case(): [1.0] * 10})
    old = pd.read_csv(path, dtype=str, keep_default_na=False)
    new_columns = ["metric", "instructions", "fwd_instructions", "bwd_instructions", "instructions_spread"]
    old.drop(columns=[*new_columns, "cpu_capability", "python_version"]).assign(schema_version="1").to_csv(
        path, index=False
    )
    df = read_results(path)
    assert (
        (df["metric"] == "time").all()
        and df["instructions"].isna().all()
        and (df["schema_version"] == SCHEMA_VERSION).all()
    )


def test_an_ok_instruction_row_without_a_count_is_refused(tmp_path):
    path = write_counts(tmp_path / "c.csv", {make_case(): 1_000_000})
    pd.read_csv(path, dtype=str, keep_default_na=False).assign(instructions="").to_csv(path, index=False)
    with pytest.raises(UsageError, match="no positive instructions count"):
        read_results(path)


# --- compare, history, report ---------------------------------------------------------------------


def test_compare_judges_counts_against_a_one_percent_threshold(tmp_path):
    cases = [make_case(batch_size=b) for b in (1, 2, 3, 4)]
    base = write_counts(tmp_path / "a.csv", dict.fromkeys(cases, 1_000_000))
    changed = [1_020_000, 1_005_000, 970_000, 1_000_000]  # +2%, +0.5%, -3%, same
    cur = write_counts(tmp_path / "b.csv", dict(zip(cases, changed, strict=True)))
    result, changes = compare_runs(base, cur, CompareConfig())
    assert not changes
    assert list(result["verdict"]) == ["regression", "unchanged", "improvement", "unchanged"]
    assert result["ratio"].tolist() == pytest.approx([1.02, 1.005, 0.97, 1.0])
    assert result["baseline_ms"].isna().all() and (result["baseline_instructions"] == 1_000_000).all()
    loose, _ = compare_runs(base, cur, CompareConfig(threshold=0.05))
    assert set(loose["verdict"]) == {"unchanged"}


def test_compare_of_counts_refuses_another_build_or_instruction_set(tmp_path, capsys):
    case = make_case()
    base = write_counts(tmp_path / "a.csv", {case: 1_000_000})
    for field, value in (("cpu_capability", "AVX2"), ("python_version", "3.12.3"), ("torch_version", "2.14.0")):
        cur = write_counts(tmp_path / f"{field}.csv", {case: 1_000_000}, **{field: value})
        assert main(["compare", str(base), str(cur), "--out", str(tmp_path / field)]) == 2
        assert field in capsys.readouterr().err
        assert main(["compare", str(base), str(cur), "--allow-env-change", "--out", str(tmp_path / "ok")]) == 0


def test_compare_refuses_counts_against_times(tmp_path, capsys):
    case = make_case()
    counts = write_counts(tmp_path / "c.csv", {case: 1_000_000})
    times = factories.write_run(tmp_path / "t.csv", {case: [1.0] * 10})
    assert main(["compare", str(times), str(counts), "--out", str(tmp_path / "x")]) == 2
    assert "compare runs of one metric" in capsys.readouterr().err


def test_compare_cli_fails_on_a_count_regression_and_writes_counts(tmp_path, capsys):
    case = make_case()
    base = write_counts(tmp_path / "a.csv", {case: 1_000_000})
    cur = write_counts(tmp_path / "b.csv", {case: 1_015_000})
    out = tmp_path / "cmp"
    assert main(["compare", str(base), str(cur), "--fail-on-regression", "--out", str(out)]) == 1
    md = (out / "compare.md").read_text()
    assert "baseline instructions" in md and "1,015,000" in md and "+1.50% instructions" in md


def test_history_finds_a_one_percent_step_in_counts(tmp_path):
    steady, moved = make_case(batch_size=1), make_case(batch_size=2)
    for i in range(6):
        total = 1_000_000 if i < 3 else 1_012_000  # +1.2% from run 3 on: far below time's 5%
        write_counts(
            tmp_path / f"run{i}.csv",
            {steady: 2_000_000, moved: total},
            run_id=f"r{i}",
            git_commit=f"c{i}",
        )
        frame = pd.read_csv(tmp_path / f"run{i}.csv", dtype=str, keep_default_na=False)
        frame.assign(timestamp=f"2026-11-0{i + 1}T00:00:00").to_csv(tmp_path / f"run{i}.csv", index=False)
    steps, _ = analyse(collect([tmp_path]), HistoryConfig())
    assert list(steps["case_id"]) == [moved.case_id]
    step = steps.iloc[0]
    assert step["metric"] == "instructions" and step["ratio"] == pytest.approx(1.012)
    assert step["before_instructions"] == pytest.approx(1_000_000) and pd.isna(step["before_ms"])
    assert step["commit"] == "c3"
    assert main(["history", str(tmp_path), "--out", str(tmp_path / "h")]) == 0


def test_report_shows_counts_beside_times_of_the_same_cases(tmp_path):
    shape = dict(batch_size=4, seq_len=8)
    padded, packed = make_case(varlen="padded", **shape), make_case(varlen="packed", **shape)
    counts = write_counts(tmp_path / "c.csv", {padded: 1_000_000, packed: 1_500_000})
    times = factories.write_run(tmp_path / "t.csv", {padded: [2.0] * 10, packed: [5.0] * 10})
    assert main(["report", str(counts), str(times), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Instruction counts" in md
    assert "| lstm b4 L8 1×uni | packed / padded | 1.50x | 2.50x |" in md
    assert "## Packed vs padded" in md  # the time sections still read the time rows
    assert main(["report", str(counts), "--out", str(tmp_path / "only")]) == 0
    only = (tmp_path / "only" / "report.md").read_text()
    assert "## Packed vs padded" not in only and "Every case was counted; none failed." in only


def test_merge_keeps_instruction_samples(tmp_path):
    a = write_counts(tmp_path / "parts" / "a.csv", {make_case(batch_size=1): 1_000_000})
    b = write_counts(tmp_path / "parts" / "b.csv", {make_case(batch_size=2): 2_000_000})
    assert a.exists() and b.exists()
    out = tmp_path / "merged.csv"
    assert main(["merge", str(tmp_path / "parts"), "--out", str(out)]) == 0
    assert set(read_samples(out)["instructions"]) >= {1_000_000, 2_000_000}


# --- real counts under callgrind ------------------------------------------------------------------


@pytest.mark.slow
@needs_valgrind
def test_counts_repeat_exactly_across_processes_and_rows_say_so(tmp_path):
    """Two valgrind processes count one tiny training case at the same time: equal counts."""
    case = make_case(mode="training", batch_size=2, seq_len=4, embedding_dim=8, hidden_size=8)
    results: list[tuple[Case, object]] = []

    def count() -> None:
        results.extend(count_cases([case], jobs=1))

    threads = [threading.Thread(target=count) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [c for c, _ in results] == [case, case]
    first, second = (outcome for _, outcome in results)
    assert isinstance(first, Counted) and isinstance(second, Counted), (first, second)
    assert dict(first.counts) == dict(second.counts)  # every step of every phase, to the instruction
    row = make_row(case, first, PROVENANCE, "r")
    assert row.metric == "instructions" and row.samples == 5 and row.median_ms is None
    assert row.instructions > 0 and row.fwd_instructions > 0 and row.bwd_instructions > 0
    assert row.instructions_spread < 0.05


@pytest.mark.slow
@needs_valgrind
def test_a_case_that_fails_under_callgrind_is_an_error_row_and_the_rest_still_count():
    bad = make_case(model="nosuch.module:factory")
    good = make_case(batch_size=2, seq_len=4)
    outcomes = dict(count_cases([bad, good], jobs=1))
    assert isinstance(outcomes[bad], Failed) and "nosuch" in outcomes[bad].error
    assert isinstance(outcomes[good], Counted)


def test_a_process_that_dies_fails_its_cases_not_the_run(tmp_path, monkeypatch):
    """No valgrind needed: a stand-in that exits at once leaves error rows for its cases."""
    fake = tmp_path / "valgrind"
    fake.write_text("#!/bin/sh\necho 'valgrind: cannot start' >&2\nexit 7\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    cases = [make_case(batch_size=b) for b in (1, 2, 3)]
    outcomes = dict(count_cases(cases, jobs=2))
    assert set(outcomes) == set(cases)
    assert all(isinstance(o, Failed) and "exited with 7: valgrind: cannot start" in o.error for o in outcomes.values())


def test_the_gate_counts_a_snapshot_of_the_working_tree_and_leaves_git_alone(tmp_path, monkeypatch):
    import subprocess

    from bench.execution import trees

    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=repo, capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "root")
    (repo / "model.py").write_text("old\n")
    git("add", "model.py")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "model")
    (repo / "model.py").write_text("changed\n")  # not staged
    (repo / "new.py").write_text("untracked\n")
    status = git("status", "--porcelain")
    monkeypatch.setattr(trees, "REPO_ROOT", repo)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "t")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "t@t")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "t")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "t@t")
    commit = trees.snapshot()
    assert git("show", f"{commit}:model.py") == "changed\n" and git("show", f"{commit}:new.py") == "untracked\n"
    assert git("status", "--porcelain") == status  # index and files as they were
    assert git("rev-parse", "HEAD").strip() != commit  # no branch moved
    monkeypatch.setattr(trees, "COUNT_TREE", tmp_path / "count-tree")
    with trees.counting_tree(None) as tree:
        assert (tree / "model.py").read_text() == "changed\n" and (tree / "new.py").exists()
    assert not (tmp_path / "count-tree").exists()
