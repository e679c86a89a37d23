"""The varlen and impl axes in a real sweep: exact rows are right, compiled rows time the compile apart."""

from __future__ import annotations

import contextlib
import time

import pandas as pd
import pytest
import torch
from factories import make_case

from bench.cli import main
from bench.core.cases import Case
from bench.core.timer import TimerConfig
from bench.execution.runner import run_case
from bench.records.outcomes import Failed, Measured

EXACT_TOL = 1e-5


def run(tmp_path, tiny_spec, *extra) -> pd.DataFrame:
    out = tmp_path / "run.csv"
    assert main(["run", "--spec", str(tiny_spec), "--out", str(out), *extra]) == 0
    return pd.read_csv(out, keep_default_na=False)


@pytest.mark.slow
def test_every_variant_records_its_error_against_packed_module(tmp_path, tiny_spec):
    df = run(
        tmp_path,
        tiny_spec,
        "--varlen",
        "padded,packed,exact",
        "--impl",
        "module,cells",
        "--bidirectional",
        "true",
        "--num-layers",
        "2",
    )
    assert len(df) == 2 * 2 * 3 * 2 and set(df["status"]) == {"ok"}
    assert (df["packed"] == (df["varlen"] == "packed")).all()
    assert (df["compile_s"] == "").all()  # only compiled rows have a compile time
    right = df[df["varlen"] != "padded"]
    assert (right["max_abs_err"] < EXACT_TOL).all() and (right["state_max_abs_err"] < EXACT_TOL).all()
    padded = df[df["varlen"] == "padded"]
    assert (padded["max_abs_err"] > 1e-3).all()  # bidirectional: the reverse direction reads the padding
    assert (padded["state_max_abs_err"] > 1e-3).all()
    assert set(df[df["impl"] == "cells"]["case_id"].str.rsplit("-", n=1).str[1]) == {"cells"}
    assert not df[df["impl"] == "module"]["case_id"].str.endswith("-module").any()  # ids as before impl


@pytest.mark.slow
def test_compiled_rows_carry_compile_time(tmp_path, tiny_spec):
    df = run(tmp_path, tiny_spec, "--impl", "compiled", "--model", "gru", "--varlen", "exact")
    assert list(df["status"]) == ["ok", "ok"]  # inference and training
    assert (df["compile_s"].astype(float) > 0).all()
    assert (df["max_abs_err"].astype(float) < EXACT_TOL).all()


def test_a_compile_failure_is_an_error_row(monkeypatch):
    def broken_compile(*args, **kwargs):
        raise RuntimeError("inductor: no C++ compiler found")

    monkeypatch.setattr(torch, "compile", broken_compile)
    case = make_case(model="gru", batch_size=2, seq_len=4, varlen="exact", embedding_dim=4, hidden_size=4)
    case = Case(**(case.axes() | {"impl": "compiled"}))
    outcome = run_case(case, TimerConfig(budget_s=0.01, min_samples=6), peak=1.0)
    assert outcome == Failed("error", "RuntimeError: inductor: no C++ compiler found")


@pytest.mark.slow
def test_side_by_side_measures_each_variant_group_together(tmp_path, tiny_spec):
    df = run(tmp_path, tiny_spec, "--model", "gru", "--mode", "inference", "--varlen", "padded,exact", "--side-by-side")
    assert len(df) == 2 and set(df["status"]) == {"ok"}
    assert df["note"].str.contains("side by side with 1 other variant").all()
    assert (df["samples"] >= 6).all()


def test_side_by_side_keeps_going_past_a_failing_variant(monkeypatch):
    from bench.execution.runner import run_group

    def broken_compile(*args, **kwargs):
        raise RuntimeError("inductor: no C++ compiler found")

    monkeypatch.setattr(torch, "compile", broken_compile)
    base = make_case(model="gru", batch_size=2, seq_len=4, varlen="exact", embedding_dim=4, hidden_size=4)
    compiled = Case(**(base.axes() | {"impl": "compiled"}))
    config = TimerConfig(budget_s=0.01, min_samples=6, warmup_s=0.0)
    (case_a, out_a), (case_b, out_b) = run_group([base, compiled], config, {base: 1.0, compiled: 1.0})
    assert (case_a, case_b) == (base, compiled) and isinstance(out_a, Measured)
    assert out_b == Failed("error", "RuntimeError: inductor: no C++ compiler found")


def test_side_by_side_and_isolate_exclude_each_other(tmp_path, tiny_spec, capsys):
    code = main(["run", "--spec", str(tiny_spec), "--out", str(tmp_path / "x.csv"), "--side-by-side", "--isolate"])
    assert code == 2 and "exclude each other" in capsys.readouterr().err


class StubWork:
    """Just what bench.measure.variants uses of a Workload: a case, phases, a context."""

    def __init__(self, seconds: float) -> None:
        self.case = make_case(model="gru", batch_size=1, seq_len=1, embedding_dim=1, hidden_size=1, vocab_size=2)
        self.phases = [("fwd", lambda: time.sleep(seconds))]

    def before_sample(self) -> None:
        pass

    @contextlib.contextmanager
    def context(self):
        yield


def test_a_fast_variant_at_max_samples_does_not_cut_the_slow_ones_short():
    from bench.measure.variants import MIN_TURNS, measure_together

    config = TimerConfig(min_samples=6, max_samples=40, budget_s=0.01, warmup_runs=1, warmup_s=0.0)
    results, rounds = measure_together([StubWork(0.0), StubWork(0.06)], config)
    (_, fast), (_, slow) = results
    assert len(fast.phases["fwd"]) == 40  # capped
    assert len(slow.phases["fwd"]) >= 6 and rounds >= MIN_TURNS


class LoggingWork(StubWork):
    """A stub whose every run leaves its name in a shared log."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__(0.001)
        self.phases = [("fwd", lambda: (log.append(name), time.sleep(0.001)))]


def test_side_by_side_reverses_the_order_every_turn():
    """A B C, C B A, A B C, ...: drift in one direction hits every variant alike."""
    from bench.measure.variants import measure_together

    log: list[str] = []
    config = TimerConfig(min_samples=6, max_samples=400, budget_s=0.06, warmup_runs=1, warmup_s=0.0)
    measure_together([LoggingWork(n, log) for n in "ABC"], config)
    turns = [name for k, name in enumerate(log) if k == 0 or log[k - 1] != name]  # one entry per block
    measured = turns[3:]  # after the warm-up's A B C
    assert measured[:7] == list("ABCBABC"), measured[:12]  # C's two blocks in a row read as one
