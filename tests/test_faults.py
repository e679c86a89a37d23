"""Faults lose nothing: interrupts, hard kills, crashing cases, random specs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from factories import TINY_SPEC, start, wait_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.cli import main
from bench.core.errors import UsageError
from bench.records.files import AppendWriter
from bench.records.reading import read_results
from bench.records.rows import COLUMNS

REPO = Path(__file__).resolve().parent.parent
# 16 cases of ~0.3 s each: long enough to interrupt mid-sweep.
SLOW_SPEC = TINY_SPEC.replace("batch_size = [3]", "batch_size = [2, 3]").replace("budget_s = 0.02", "budget_s = 0.3")


def all_case_ids(spec: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--spec", str(spec), "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_keeps_finished_rows_then_kill_and_resume_completes(tmp_path, sig):
    spec = tmp_path / "slow.toml"
    spec.write_text(SLOW_SPEC)
    out = tmp_path / "run.csv"
    proc = start(spec, out)
    wait_rows(out, 2, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    kept = read_results(out)  # every kept row is whole and valid
    assert len(kept) >= 2 and set(kept["status"]) == {"ok"}

    # A hard kill mid-run, then a torn last line as a kill mid-write leaves it.
    proc = start(spec, out, "--resume")
    wait_rows(out, len(kept) + 1, proc)
    proc.kill()
    proc.communicate(timeout=60)
    with out.open("a") as f:
        f.write("lstm-cpu-float32-training-b3-l5-n1-uni-pa")
    proc = start(spec, out, "--resume")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    rows = read_results(out)
    assert sorted(rows["case_id"]) == sorted(all_case_ids(spec))  # each case exactly once
    assert set(rows["status"]) == {"ok"} and (rows["median_ms"] > 0).all()
    assert rows["run_id"].nunique() == 1


@pytest.mark.slow
def test_isolate_turns_a_crashing_case_into_one_error_row(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY_SPEC)
    out = tmp_path / "run.csv"
    args = ["--model", "gru", "--mode", "inference", "--isolate"]
    victim = next(c for c in all_case_ids(spec) if c.startswith("gru") and "inference" in c)
    env = os.environ | {"RNNBENCH_FAULT_CASE": victim}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--spec", str(spec), "--out", str(out), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr  # some case failed
    rows = {r["case_id"]: r for r in read_results(out).to_dict("records")}
    assert len(rows) == 2
    assert rows[victim]["status"] == "error" and "SIGABRT" in rows[victim]["error"]
    others = [r for cid, r in rows.items() if cid != victim]
    assert others and all(r["status"] == "ok" for r in others)


def test_one_writer_per_results_file(tmp_path):
    path = tmp_path / "run.csv"
    first = AppendWriter(path, COLUMNS, exclusive=True)
    try:
        with pytest.raises(UsageError, match="another run"):
            AppendWriter(path, COLUMNS, exclusive=True)
    finally:
        first.close()


AXIS_VALUES = st.one_of(
    st.integers(-5, 3000),
    st.text(max_size=8),
    st.booleans(),
    st.floats(allow_nan=True),
    st.lists(st.one_of(st.integers(-3, 64), st.sampled_from(["lstm", "gru", "cpu", "full", "uniform:3"])), max_size=3),
)
AXIS_KEYS = st.sampled_from(
    [
        "model",
        "batch_size",
        "seq_len",
        "num_layers",
        "bidirectional",
        "packed",
        "lengths",
        "dtype",
        "device",
        "vocab_size",
        "threads",
        "hidden",
        "mode",
        "backend",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    axes=st.dictionaries(AXIS_KEYS, AXIS_VALUES, max_size=4),
    timer=st.dictionaries(
        st.sampled_from(["budget_s", "min_samples", "bogus"]),
        st.one_of(st.integers(-2, 20), st.floats(allow_nan=True), st.text(max_size=3)),
        max_size=2,
    ),
)
def test_random_specs_are_expanded_or_refused_cleanly(tmp_path, capsys, axes, timer):
    def toml(value):
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return "[" + ", ".join(toml(v) for v in value) + "]"
        if isinstance(value, str):
            return '"' + value.encode("unicode_escape").decode().replace('"', '\\"') + '"'
        return "nan" if value != value else repr(value)

    text = "[axes]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in axes.items())
    text += "[timer]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in timer.items())
    spec = tmp_path / "random.toml"
    spec.write_text(text)
    code = main(["run", "--spec", str(spec), "--list"])
    err = capsys.readouterr().err.strip()
    assert code in (0, 2)
    if code == 2:
        assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_log_lines_carry_an_eta(capsys):
    from bench.execution.progress import Bar

    bar = Bar(10)
    bar._started -= 20.0  # two cases took 20 s: eight more at that pace
    bar.advance("a", "ok")
    bar.advance("b", "ok")
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("[2/10] b: ok") and lines[-1].endswith("(ETA 1 min 20 s)")
    assert Bar(1).eta() == ""  # nothing done yet: no pace to go by
