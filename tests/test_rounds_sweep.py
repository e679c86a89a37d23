"""Real sweeps in rounds: fresh worker processes, a crash in one, an interrupt and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from factories import TINY_SPEC

from bench.records.files import ledger_path
from bench.records.reading import read_results, read_samples

REPO = Path(__file__).resolve().parent.parent
ROUNDS_SPEC = TINY_SPEC.replace("rounds = 1", "rounds = 2")


def bench_run(spec: Path, out: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "bench", "run", "--spec", str(spec), "--out", str(out), *extra]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def rounds_spec(tmp_path: Path) -> Path:
    path = tmp_path / "rounds.toml"
    path.write_text(ROUNDS_SPEC)
    return path


def sample_rounds(out: Path) -> dict[str, set[int]]:
    s = read_samples(out)
    assert not s.duplicated(["case_id", "phase", "index"]).any()  # each run once
    return {case: set(g["round"]) for case, g in s.groupby("case_id")}


@pytest.mark.slow
def test_a_sweep_in_rounds_tags_rows_and_samples_and_cleans_up(tmp_path, rounds_spec):
    out = tmp_path / "run.csv"
    done = bench_run(rounds_spec, out, "--model", "lstm", "--side-by-side")
    assert done.returncode == 0, done.stderr
    rows = read_results(out)
    assert (rows["rounds"] >= 2).all() and rows["between_round_rel_sd"].notna().all()
    assert rows["note"].str.contains("rounds: (?:between|within) rounds dominates").all()
    assert (rows["ci_low_ms"] <= rows["median_ms"]).all() and (rows["median_ms"] <= rows["ci_high_ms"]).all()
    rounds = sample_rounds(out)
    assert all(r >= {0, 1} for r in rounds.values())
    # Side by side: padded and packed of one case were measured in the same rounds.
    by_variant = {}
    for case, r in rounds.items():
        by_variant.setdefault(case.replace("-padded-", "-X-").replace("-packed-", "-X-"), []).append(r)
    assert all(len(v) == 2 and v[0] == v[1] for v in by_variant.values())
    assert "] round 2/2: " in done.stderr
    assert json.loads(out.with_suffix(".json").read_text())["rounds"] == 2
    assert not ledger_path(out).exists()


def test_a_fresh_run_never_takes_rounds_from_an_old_ledger(tmp_path):
    from bench.execution.runner import prepare_output

    out = tmp_path / "run.csv"
    ledger_path(out).write_text('{"round": 0, "wall_s": 1.0, "outcomes": {}}\n')
    prepare_output(out, False, "r")
    assert not ledger_path(out).exists()


@pytest.mark.slow
def test_a_crash_in_a_round_worker_costs_only_that_case(tmp_path, rounds_spec):
    out = tmp_path / "run.csv"
    listed = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--spec", str(rounds_spec), "--list", "--model", "gru"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    victim = listed[1]
    done = bench_run(rounds_spec, out, "--model", "gru", env=os.environ | {"RNNBENCH_FAULT_CASE": victim})
    assert done.returncode == 1, done.stderr
    rows = read_results(out).set_index("case_id")
    assert rows.loc[victim, "status"] == "error" and "worker process died" in rows.loc[victim, "error"]
    others = rows.drop(index=victim)
    assert len(others) == 3 and (others["status"] == "ok").all() and (others["rounds"] == 2).all()


@pytest.mark.slow
def test_interrupt_mid_round_keeps_the_round_and_resume_finishes_the_rest(tmp_path, rounds_spec):
    slow = rounds_spec.read_text().replace("budget_s = 0.02", "budget_s = 0.6")
    rounds_spec.write_text(slow)
    out = tmp_path / "run.csv"
    cmd = [sys.executable, "-m", "bench", "run", "--spec", str(rounds_spec), "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ledger = ledger_path(out)
    deadline = time.monotonic() + 120
    while not (ledger.exists() and len(ledger.read_text().splitlines()) >= 3):  # inside round 1
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert ledger.name in err and "--resume" in err
    kept = len(ledger.read_text().splitlines())
    assert kept >= 3
    assert set(read_samples(out)["round"]) == {0}  # the finished rounds' samples are in the samples file
    done = subprocess.run([*cmd, "--resume"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = read_results(out)
    assert len(rows) == 8 and (rows["rounds"] >= 2).all() and (rows["status"] == "ok").all()
    assert all(r >= {0, 1} for r in sample_rounds(out).values())
    # Resuming measured only the missing rounds: fewer progress lines than the whole sweep's 16.
    assert 0 < done.stderr.count("] round ") <= 16 - kept
    assert not ledger.exists()


@pytest.mark.slow
def test_every_peak_is_measured_before_a_round_worker_starts(tmp_path, rounds_spec, monkeypatch):
    """A peak measured beside a worker importing torch reads a fraction of the machine."""
    import bench.execution.rounds
    import bench.measure.peaks
    from bench.cli import main

    events: list[str] = []
    real_worker = bench.execution.rounds.RoundWorker.__init__

    def counted(name: str):
        real = getattr(bench.measure.peaks, name)

        def measure(*args, **kwargs):
            events.append("peak")  # a roof measured, not a cached value read
            return real(*args, **kwargs)

        monkeypatch.setattr(bench.measure.peaks, name, measure)

    def worker(self, fn):
        events.append("worker")
        real_worker(self, fn)

    for name in ("compute_roof", "memory_levels", "floor_ms"):
        counted(name)
    monkeypatch.setattr(bench.execution.rounds.RoundWorker, "__init__", worker)
    assert main(["run", "--spec", str(rounds_spec), "--out", str(tmp_path / "r.csv"), "--model", "lstm"]) == 0
    assert "worker" in events and "peak" not in events[events.index("worker") :]
    assert events.count("peak") >= 3  # the compute roof, the memory levels and a floor, all before
