"""`bench validate --calibration`: the share of reruns within the combined CI, on made and real runs."""

from __future__ import annotations

import numpy as np
import pytest
from factories import make_case, write_run

from bench.analysis.calibration import calibration
from bench.cli import main
from bench.records.reading import read_results

CASES = [make_case(batch_size=b) for b in range(1, 11)]


def run_with_medians(path, medians, half_width=0.01):
    """Rows whose medians are given and whose order-statistic CIs are about ±half_width."""
    spread = np.linspace(-2 * half_width, 2 * half_width, 21)
    return write_run(path, {c: m * (1 + spread) for c, m in zip(CASES, medians, strict=True)})


def test_the_share_counts_pairs_within_the_combined_interval(tmp_path):
    a = run_with_medians(tmp_path / "a.csv", [10.0] * 10)
    # Two cases moved by 20%, far beyond ±1% CIs; the other eight by 0.5%, within.
    b = run_with_medians(tmp_path / "b.csv", [12.0, 12.0] + [10.05] * 8)
    result = calibration(read_results(a), read_results(b))
    assert (result.cases, result.inside) == (10, 8)
    assert list(result.worst["case_id"]) == [CASES[0].case_id, CASES[1].case_id]
    assert result.median_rel_ci == pytest.approx(0.01, rel=0.5)


def test_the_command_checks_two_runs_and_fails_below_90_percent(tmp_path, capsys):
    a = run_with_medians(tmp_path / "a.csv", [10.0] * 10)
    close = run_with_medians(tmp_path / "b.csv", [10.02] * 10)
    far = run_with_medians(tmp_path / "c.csv", [11.0] * 10)
    assert main(["validate", "--calibration", "--runs", str(a), str(close)]) == 0
    assert "10 of 10 cases (100%; ideal 95%)" in capsys.readouterr().out
    assert main(["validate", "--calibration", "--runs", str(a), str(far)]) == 1
    assert "do NOT keep" in capsys.readouterr().out


def test_calibration_flags_without_calibration_are_refused(capsys):
    assert main(["validate", "--rounds", "2"]) == 2
    assert "--rounds goes with --calibration" in capsys.readouterr().err


@pytest.mark.slow
def test_a_real_calibration_runs_the_sweep_twice(tmp_path, tiny_spec, capsys):
    out = tmp_path / "calib"
    code = main(["validate", "--calibration", "--spec", str(tiny_spec), "--rounds", "2", "--out", str(out)])
    assert code in (0, 1)  # whether this busy test machine keeps the promise is not the test's to say
    printed = capsys.readouterr().out
    assert "of 8 cases" in printed and "ideal 95%" in printed
    for name in ("first.csv", "second.csv"):
        rows = read_results(out / name)
        assert len(rows) == 8 and (rows["rounds"] == 2).all()
