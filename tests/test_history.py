"""History: steps at the right commit, no steps from noise, drift, machines apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import make_case, write_run

from bench.cli import main

CASES = [make_case(model=m, batch_size=b) for m in ("lstm", "gru") for b in (4, 16)]
# Samples around a median whose order-statistic 95% CI is ±1% (ranks 6 and 16 of 21).
SPREAD = np.linspace(-0.02, 0.02, 21)


def write_history(folder: Path, factor, runs: int = 10, seed: int = 0, cpu: str = "cpu A", start: int = 0) -> Path:
    """One run CSV per run; median = 10 ms x factor(run, case) x ±2% noise, CI ±1%."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(runs):
        medians = {case: 10 * factor(i, case) * (1 + rng.uniform(-0.02, 0.02)) for case in CASES}
        write_run(
            folder / f"run{start + i:02d}-{cpu[-1]}.csv",
            {case: median * (1 + SPREAD) for case, median in medians.items()},
            run_id=f"r{start + i}-{cpu}",
            timestamp=f"2026-11-{1 + start + i:02d}T10:00:00+00:00",
            git_commit=f"c{start + i:02d}abcdef",
            cpu_model=cpu,
        )
    return folder


def history(tmp_path, *runs, extra=()):
    out = tmp_path / "hist"
    code = main(["history", *map(str, runs), "--out", str(out), *extra])
    return code, out, pd.read_csv(out / "steps.csv") if (out / "steps.csv").exists() else None


def test_a_25_percent_step_is_found_at_its_commit_for_the_affected_case_only(tmp_path):
    victim = CASES[1].case_id
    runs = write_history(tmp_path / "runs", lambda i, c: 1.25 if c.case_id == victim and i >= 5 else 1.0)
    code, out, steps = history(tmp_path, runs)
    assert code == 0
    assert list(steps["case_id"]) == [victim]
    step = steps.iloc[0]
    assert step["commit"] == "c05abcdef" and step["direction"] == "regression"
    assert step["ratio"] == pytest.approx(1.25, rel=0.04)
    md = (out / "history.md").read_text()
    assert "c05abcdef" in md and (out / "history.html").read_text().count("data:image/png") >= 1
    assert (out / "trend_0.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_two_percent_noise_alone_gives_no_step(tmp_path):
    for seed in range(3):
        runs = write_history(tmp_path / f"runs{seed}", lambda i, c: 1.0, seed=seed)
        _, _, steps = history(tmp_path, runs)
        assert steps.empty, steps


def test_slow_creep_is_reported_as_drift(tmp_path):
    creeper = CASES[2].case_id
    runs = write_history(tmp_path / "runs", lambda i, c: 1.02**i if c.case_id == creeper else 1.0, runs=8)
    _, out, _ = history(tmp_path, runs)
    md = (out / "history.md").read_text()
    drift = md.split("## Largest drift over the window")[1]
    first_row = [line for line in drift.splitlines() if line.startswith("| ") and "abcdef" not in line][1]
    assert creeper.replace("_", "\\_") in first_row.replace("-", "-")
    ratio = float(first_row.split("|")[5])
    assert 1.09 < ratio < 1.2


def test_two_machines_are_kept_apart(tmp_path):
    runs = tmp_path / "runs"
    write_history(runs, lambda i, c: 1.0, cpu="cpu A")
    write_history(runs, lambda i, c: 2.0, cpu="cpu B", seed=1, start=0)  # twice as slow, same dates
    _, out, steps = history(tmp_path, runs)
    assert steps.empty
    assert "cpu A" in (out / "history.md").read_text() and "cpu B" in (out / "history.md").read_text()


@pytest.mark.slow
def test_fail_on_regression_only_for_the_newest_runs(tmp_path):
    victim = CASES[0].case_id
    recent = write_history(tmp_path / "recent", lambda i, c: 1.3 if c.case_id == victim and i >= 7 else 1.0)
    assert history(tmp_path, recent, extra=["--fail-on-regression"])[0] == 1
    old = write_history(tmp_path / "old", lambda i, c: 1.3 if c.case_id == victim and i >= 3 else 1.0)
    assert history(tmp_path, old, extra=["--fail-on-regression"])[0] == 0


@pytest.mark.parametrize("setup", ["single", "empty", "missing"])
def test_too_little_input_is_a_clear_error(tmp_path, capsys, setup):
    target = tmp_path / "runs"
    if setup == "single":
        write_history(target, lambda i, c: 1.0, runs=1)
    elif setup == "empty":
        target.mkdir()
    code, _, _ = history(tmp_path, target)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert {"single": "at least two runs", "empty": "no run CSVs", "missing": "no such file"}[setup] in err


def test_a_step_between_runs_of_one_commit_is_blamed_on_the_machine(tmp_path, capsys):
    runs = write_history(tmp_path / "runs", lambda i, c: 1.3 if i >= 7 else 1.0)
    for f in runs.glob("run0[6-9]-A.csv"):  # runs 6..9 measured one commit
        df = pd.read_csv(f, dtype=str, keep_default_na=False).assign(git_commit="c06abcdef")
        df.to_csv(f, index=False)
    code, out, steps = history(tmp_path, runs, extra=["--fail-on-regression"])
    assert len(steps) == len(CASES) and steps["same_commit"].all()
    assert code == 0  # the machine's step gates nothing
    assert "the machine changed, not the code" in (out / "history.md").read_text()
