"""`bench validate` on tiny cases (rounds shortened): both timers run, paired ratio reported."""

from __future__ import annotations

import math

import pytest
from factories import make_case

from bench.cli import main
from bench.core.timer import TimeBudget, TimerConfig
from bench.measure import validation as validate

TINY = make_case(model="gru", batch_size=2, seq_len=8, varlen="packed", lengths="uniform", vocab_size=20)


def shorten(monkeypatch):
    monkeypatch.setattr(validate, "ROUNDS", 4)
    monkeypatch.setattr(validate, "ROUND_S", 0.02)
    monkeypatch.setattr(validate, "ROUND_WARMUP", TimerConfig(warmup_s=0.0))
    monkeypatch.setattr(validate, "ROUND_STOP", TimeBudget(0.02, min_runs=6))


def test_compare_case_measures_with_both_timers(monkeypatch):
    shorten(monkeypatch)
    ours, ref, ratio, ours_s, ref_s = validate.compare_case(TINY)
    assert ours > 0 and ref > 0 and ours_s > 0 and ref_s > 0
    assert math.isfinite(ratio) and 0.2 < ratio < 5  # the same step, timed twice


def test_validate_command_reports_every_case(monkeypatch, capsys):
    shorten(monkeypatch)
    monkeypatch.setattr(validate, "validation_cases", lambda device, threads: [TINY])
    code = main(["validate", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code in (0, 1)  # agreement depends on the machine; the report must be there either way
    assert TINY.case_id in out and "worst |ratio - 1|" in out and "per-sample timer overhead" in out


@pytest.mark.parametrize(("ratio", "code", "verdict"), [(1.049, 0, "agree"), (0.951, 0, "agree"),
                                                        (1.051, 1, "DISAGREE"), (0.94, 1, "DISAGREE")])  # fmt: skip
def test_validate_fails_beyond_the_5_percent_the_docs_promise(ratio, code, verdict, monkeypatch, capsys):
    monkeypatch.setattr(validate, "validation_cases", lambda device, threads: [TINY])
    monkeypatch.setattr(validate, "timer_overhead_us", lambda cuda: 1.0)
    monkeypatch.setattr(validate, "compare_case", lambda case: (1.0, 1.0, ratio, 1.0, 1.0))
    assert main(["validate", "--device", "cpu"]) == code
    assert f"the two timers {verdict} (limit 5%)" in capsys.readouterr().out
