"""Readers of runs measured in rounds: compare, the report's ratio bars, history, older files."""

from __future__ import annotations

import numpy as np
import pandas as pd
from factories import make_case, write_run

from bench.analysis.compare import CompareConfig, Samples, compare_runs, judge, step_samples
from bench.core.stats import ratio_from_rounds
from bench.records.files import keep_samples, run_paths
from bench.records.reading import read_results, read_samples
from bench.records.rows import ROUND_SAMPLE_COLUMNS
from bench.report.samples import SampleStore, ratio_cis

JITTER = np.linspace(0.995, 1.005, 20)  # a tight round: ±0.5%


def rounds_of(*medians: float) -> np.ndarray:
    return np.array([m * JITTER for m in medians])


def samples(*medians: float) -> Samples:
    x = rounds_of(*medians)
    return Samples(x.ravel(), None, np.repeat(np.arange(len(medians)), x.shape[1]))


def test_compare_judges_rounds_not_the_samples_of_one_process():
    rng = np.random.default_rng(0)
    base = samples(10.0, 12.0, 8.0)  # tight within each round, far apart between them
    # 6% slower in every round: the raw samples would call that a regression; the rounds cannot.
    drifted = samples(10.6, 12.7, 8.5)
    verdict = judge(base, drifted, CompareConfig(), rng)
    assert verdict["verdict"] == "unchanged" and verdict["ratio_ci_low"] < 1 < verdict["ratio_ci_high"]
    one_process = judge(Samples(base.ms), Samples(drifted.ms), CompareConfig(), rng)
    assert one_process["p_value"] < 0.01  # Mann–Whitney on pooled samples: falsely sure
    # A steady 20% slowdown across steady rounds is found.
    steady = judge(samples(10.0, 10.1, 9.9), samples(12.0, 12.1, 11.9), CompareConfig(), rng)
    assert steady["verdict"] == "regression"
    assert 1.18 < steady["ratio"] < 1.22


def test_compare_runs_reads_round_tagged_samples(tmp_path):
    a, b = make_case(batch_size=4), make_case(batch_size=8)
    base = write_run(tmp_path / "base.csv", {a: rounds_of(10, 10.1, 9.9), b: rounds_of(5, 5.05, 4.95)})
    cur = write_run(tmp_path / "cur.csv", {a: rounds_of(13, 13.1, 12.9), b: rounds_of(5, 5.05, 4.95)})
    got = step_samples(cur)[a.case_id]
    assert got.round_medians() is not None and len(got.round_medians()[1]) == 3
    result, _ = compare_runs(base, cur, CompareConfig())
    verdicts = dict(zip(result["case_id"], result["verdict"], strict=True))
    assert verdicts == {a.case_id: "regression", b.case_id: "unchanged"}


def test_report_bars_pair_the_rounds_of_one_run(tmp_path):
    padded, packed = make_case(varlen="padded"), make_case(varlen="packed")
    # Both variants move together from round to round (one process each round): paired,
    # their ratio is steady at 2 although each side scatters by ±20%.
    path = write_run(tmp_path / "run.csv", {padded: rounds_of(10, 12, 8), packed: rounds_of(20, 24, 16)})
    pairs = pd.DataFrame(
        {
            "source_path_a": [str(path)],
            "case_id_a": [packed.case_id],
            "source_path_b": [str(path)],
            "case_id_b": [padded.case_id],
        }
    )
    low, high = ratio_cis(pairs, SampleStore())
    assert 1.99 < low[0] <= 2.0 <= high[0] < 2.01
    _, u_low, u_high, _ = ratio_from_rounds([10, 12, 8], [20, 24, 16], paired=False)
    assert u_low < 1.5 and u_high > 2.5  # unpaired, the same data says far less


def test_history_reads_runs_with_rounds_and_sees_a_step(tmp_path):
    from bench.cli import main

    case = make_case()
    folder = tmp_path / "runs"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for i in range(8):
        level = 10 * (1.3 if i >= 4 else 1.0)
        medians = level * np.exp(rng.normal(0, 0.02, 3))
        write_run(
            folder / f"run{i}.csv",
            {case: rounds_of(*medians)},
            run_id=f"r{i}",
            timestamp=f"2026-11-{1 + i:02d}T10:00:00+00:00",
            git_commit=f"c{i:02d}abcdef",
        )
    rows = read_results(folder / "run0.csv")
    assert rows["rounds"].iloc[0] == 3
    out = tmp_path / "hist"
    assert main(["history", str(folder), "--out", str(out)]) == 0
    steps = pd.read_csv(out / "steps.csv")
    assert len(steps) == 1 and steps["commit"].iloc[0].startswith("c04")


def test_older_files_read_as_one_round_and_resume_tags_their_samples(tmp_path):
    case = make_case()
    path = write_run(tmp_path / "old.csv", {case: np.linspace(1, 1.1, 10)})
    old = pd.read_csv(path, dtype=str, keep_default_na=False)
    old.drop(columns=["rounds", "within_round_rel_ci", "between_round_rel_sd"]).assign(schema_version="2").to_csv(
        path, index=False
    )
    df = read_results(path)
    assert df["rounds"].iloc[0] == 1 and np.isnan(df["between_round_rel_sd"].iloc[0])
    samples_path = run_paths(path)[0]
    assert "round" not in read_samples(path)
    keep_samples(samples_path, {case.case_id}, ROUND_SAMPLE_COLUMNS)
    again = read_samples(path)
    assert (again["round"] == 0).all() and len(again) == 10
    keep_samples(samples_path, set(), ROUND_SAMPLE_COLUMNS)
    assert read_samples(path).empty
