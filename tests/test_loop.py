"""The measuring loop and its stop rules, on counters and fake clocks (no torch, no sleeping)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from factories import make_case

from bench.core.timer import (
    AtLeast,
    FixedCount,
    Measurement,
    PrecisionTarget,
    TimeBudget,
    TimerConfig,
    measure,
    rel_ci,
    run_loop,
)
from bench.records.outcomes import Measured, WorkFacts
from bench.records.rows import make_row

PHASES = [("fwd", lambda: None)]


def fake_clock(values):
    """A clock that returns the given times (ms), one per run."""
    it = iter(values)
    return lambda phases: [next(it)]


def test_fixed_count_runs_exactly_that_often():
    calls = []
    samples = run_loop(PHASES, fake_clock(itertools.count(1.0)), FixedCount(7), before_run=lambda: calls.append(1))
    assert [s[0] for s in samples] == [1, 2, 3, 4, 5, 6, 7] and len(calls) == 7


def test_the_loop_runs_at_least_once_and_continues_a_list():
    held = [[5.0]] * 3
    samples = run_loop(PHASES, fake_clock([1.0]), TimeBudget(0.0, max_runs=2), into=held)
    assert samples is held and len(held) == 4  # one run even though the cap was already reached


def test_time_budget_respects_its_bounds():
    rule = TimeBudget(1.0, min_runs=3, max_runs=10)
    assert not rule.done([[1.0]] * 2, elapsed_s=5.0)  # too few
    assert rule.done([[1.0]] * 3, elapsed_s=1.0)
    assert not rule.done([[1.0]] * 3, elapsed_s=0.5)
    assert rule.done([[1.0]] * 10, elapsed_s=0.0)  # the cap


def test_at_least_needs_both_runs_and_seconds():
    rule = AtLeast(2, 0.2)
    assert not rule.done([[1.0]], 1.0) and not rule.done([[1.0]] * 5, 0.1) and rule.done([[1.0]] * 2, 0.2)


def test_precision_target_stops_on_a_tight_ci_and_not_on_a_wide_one():
    config = TimerConfig(target_rel_ci=0.02, min_samples=10, max_samples=100, budget_s=1e9)
    rule = PrecisionTarget(config)
    steady = [[10.0 + 0.001 * i] for i in range(10)]
    wide = [[v] for v in np.geomspace(1, 100, 10)]
    assert rule.done(steady, 0.0) and rule.reached(steady)
    assert not rule.done(wide, 0.0) and not rule.reached(wide)
    assert rule.done(wide, 2e9)  # out of budget
    assert not rule.done(steady[:9], 0.0)  # below min_samples
    assert rule.done(wide * 10, 0.0)  # max_samples


def test_rel_ci_needs_six_runs():
    assert rel_ci([[1.0]] * 5) == np.inf
    assert rel_ci([[1.0]] * 6) == 0.0


def test_measure_keeps_warmup_out_and_reports_no_target_for_fixed_schedules():
    clock = fake_clock([1000.0, 1000.0, *([2.0] * 50)])  # two slow warm-up runs
    config = TimerConfig(warmup_runs=2, warmup_s=0.0)
    m = measure(PHASES, config, clock, stop=FixedCount(6))
    assert m.phases["fwd"] == [2.0] * 6 and m.warmup_runs == 2 and m.reached_target is None


def test_a_row_claims_no_target_that_was_not_set():
    m = Measurement({"fwd": [1.0] * 6}, warmup_runs=1, sampling_s=0.1, reached_target=None)
    row = make_row(make_case(), Measured(m, WorkFacts(10, 0.0, 0.1), 200.0), {}, "r")
    assert row.note.startswith("no precision target") and "noisy" not in row.note
    missed = Measurement({"fwd": [1.0, 9.0] * 3}, warmup_runs=1, sampling_s=0.1, reached_target=False)
    row = make_row(make_case(), Measured(missed, WorkFacts(10, 0.0, 0.1), 200.0, target_rel_ci=0.02), {}, "r")
    assert row.note.startswith("noisy") and "target ±2%" in row.note


@pytest.mark.parametrize("bad", [{"min_samples": 2}, {"min_samples": 5, "rounds": 1}, {"check_every": 0}])
def test_timer_config_refuses_what_the_loop_cannot_use(bad):
    from bench.core.errors import UsageError

    with pytest.raises(UsageError):
        TimerConfig.from_mapping(bad, "timer")
