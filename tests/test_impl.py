"""The varlen and impl axes in a real sweep: exact rows are right, compiled rows time the compile apart."""

from __future__ import annotations

import pandas as pd
import torch

from bench.cli import main
from bench.runner import run_case
from bench.spec import Case
from bench.timer import TimerConfig

EXACT_TOL = 1e-5


def run(tmp_path, tiny_spec, *extra) -> pd.DataFrame:
    out = tmp_path / "run.csv"
    assert main(["run", "--spec", str(tiny_spec), "--out", str(out), *extra]) == 0
    return pd.read_csv(out, keep_default_na=False)


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


def test_compiled_rows_carry_compile_time(tmp_path, tiny_spec):
    df = run(tmp_path, tiny_spec, "--impl", "compiled", "--model", "gru", "--varlen", "exact")
    assert list(df["status"]) == ["ok", "ok"]  # inference and training
    assert (df["compile_s"].astype(float) > 0).all()
    assert (df["max_abs_err"].astype(float) < EXACT_TOL).all()


def test_a_compile_failure_is_an_error_row(monkeypatch):
    def broken_compile(*args, **kwargs):
        raise RuntimeError("inductor: no C++ compiler found")

    monkeypatch.setattr(torch, "compile", broken_compile)
    case = Case(
        "gru", "cpu", "float32", "inference", 2, 4, 1, False, "exact", "full", 4, 4, 10, "default", 1, "compiled"
    )
    row, measurement = run_case(case, TimerConfig(budget_s=0.01, min_samples=3), peak=1.0)
    assert measurement is None
    assert row == {"status": "error", "error": "RuntimeError: inductor: no C++ compiler found"}
