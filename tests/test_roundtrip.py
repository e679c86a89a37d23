"""A results CSV that pandas read and wrote back (what users do to filter a run) reads as the original.

report, compare, history and merge all read through ``bench.records.files``; each is
checked on the original and on pandas' copy, whole and filtered.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import make_case, write_run

from bench.cli import main
from bench.records.files import run_paths
from bench.records.reading import read_results, read_samples

CASES = [make_case(batch_size=b, bidirectional=bi) for b in (4, 8) for bi in (False, True)]


def pandas_copy(path: Path, out: Path, keep=lambda df: df) -> Path:
    """``pd.read_csv(p).to_csv(q, index=False)`` (optionally filtered), samples too."""
    keep(pd.read_csv(path)).to_csv(out, index=False)
    pd.read_csv(run_paths(path)[0]).to_csv(run_paths(out)[0], index=False)
    return out


@pytest.fixture
def run(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    outcomes = {c: 10 * rng.lognormal(0, 0.02, 20) for c in CASES}
    outcomes[CASES[-1]] = "oom"  # a failed row: empty numbers, which pandas reads as NaN
    return write_run(tmp_path / "run.csv", outcomes)


def test_pandas_copy_reads_as_the_original(run, tmp_path):
    copy = pandas_copy(run, tmp_path / "copy.csv")
    text = copy.read_text()
    assert "True" in text and "False" in text and "1.0" not in text.split("\n")[0]  # pandas' own spelling
    original, again = read_results(run), read_results(copy)
    columns = [c for c in original.columns if c != "source"]
    pd.testing.assert_frame_equal(original[columns], again[columns], check_dtype=False)
    pd.testing.assert_frame_equal(read_samples(run), read_samples(copy), check_dtype=False)


def test_integers_written_as_floats_and_bools_as_numbers_are_read(run, tmp_path):
    df = pd.read_csv(run)
    df["batch_size"] = df["batch_size"].astype(float)  # 4.0
    df["bidirectional"] = df["bidirectional"].astype(int)  # 1 / 0
    df.to_csv(tmp_path / "odd.csv", index=False)
    pd.read_csv(run_paths(run)[0]).to_csv(run_paths(tmp_path / "odd.csv")[0], index=False)
    again = read_results(tmp_path / "odd.csv")
    assert list(again["batch_size"]) == [c.batch_size for c in CASES]
    assert list(again["bidirectional"]) == [c.bidirectional for c in CASES]


def test_report_compare_and_merge_accept_a_filtered_pandas_copy(run, tmp_path, capsys):
    copy = pandas_copy(run, tmp_path / "copy.csv", keep=lambda df: df[df["batch_size"] == 4])
    assert main(["report", str(copy), "--out", str(tmp_path / "rep")]) == 0
    assert main(["compare", str(run), str(copy), "--out", str(tmp_path / "cmp")]) == 0
    verdicts = pd.read_csv(tmp_path / "cmp" / "compare.csv").set_index("case_id")["verdict"]
    assert (verdicts[[c.case_id for c in CASES if c.batch_size == 4]] == "unchanged").all()
    assert (verdicts[[c.case_id for c in CASES if c.batch_size == 8]] == "missing").all()
    rest = pandas_copy(run, tmp_path / "rest.csv", keep=lambda df: df[df["batch_size"] == 8])
    assert main(["merge", str(copy), str(rest), "--out", str(tmp_path / "merged.csv")]) == 0
    merged = read_results(tmp_path / "merged.csv")
    original = read_results(run)
    columns = [c for c in original.columns if c != "source"]
    pd.testing.assert_frame_equal(
        original[columns].sort_values("case_id").reset_index(drop=True),
        merged[columns].sort_values("case_id").reset_index(drop=True),
        check_dtype=False,
    )


def test_history_reads_pandas_copies_like_the_originals(tmp_path, capsys):
    rng = np.random.default_rng(1)
    originals, copies = tmp_path / "orig", tmp_path / "copies"
    copies.mkdir()
    for i in range(6):
        slower = 1.3 if i >= 3 else 1.0
        path = write_run(
            originals / f"run{i}.csv",
            {c: 10 * slower * rng.lognormal(0, 0.01, 20) for c in CASES},
            run_id=f"r{i}",
            timestamp=f"2026-11-0{i + 1}T10:00:00+00:00",
            git_commit=f"c{i}abcdef",
        )
        pandas_copy(path, copies / path.name)
    for folder in (originals, copies):
        assert main(["history", str(folder), "--out", str(tmp_path / f"h-{folder.name}")]) == 0
    steps = [pd.read_csv(tmp_path / f"h-{f}" / "steps.csv") for f in ("orig", "copies")]
    assert len(steps[0]) == len(CASES)
    pd.testing.assert_frame_equal(steps[0], steps[1])


def test_two_writers_never_share_a_results_file(tmp_path):
    from bench.core.errors import UsageError
    from bench.records.files import AppendWriter
    from bench.records.rows import COLUMNS

    path = tmp_path / "run.csv"
    first = AppendWriter(path, COLUMNS, exclusive=True)
    with pytest.raises(UsageError, match="another run is writing this file"):
        AppendWriter(path, COLUMNS, exclusive=True)
    first.close()
    again = AppendWriter(path, COLUMNS, exclusive=True)  # free once the first is closed
    again.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.csv"]  # no lock file left behind
