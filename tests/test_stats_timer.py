"""Statistics and the timer."""

import numpy as np
import pytest

from bench.core.stats import median_ci, summarize
from bench.core.timer import TimerConfig, measure


def test_summary_of_known_samples():
    s = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s.median_ms == 3.0 and s.min_ms == 1.0 and s.max_ms == 100.0
    assert s.iqr_ms == 2.0
    assert s.samples == 5


def test_median_ci_matches_binomial_order_statistics_and_covers():
    rng = np.random.default_rng(0)
    # Coverage: the true median of a lognormal(0, 0.5) is 1.
    hits = 0
    for _ in range(400):
        low, high = median_ci(rng.lognormal(0, 0.5, 30))
        hits += low <= 1.0 <= high
    assert 0.93 <= hits / 400 <= 0.995
    # n=10: P(Binom(10, .5) <= 1) = 0.0107 < 0.025 <= P(<= 2): ranks 2 and 9.
    x = np.arange(1.0, 11.0)
    assert median_ci(x) == (2.0, 9.0)
    # By hand: P(Binom(30, .5) <= 9) = 0.0214 < 0.025 <= P(<= 10) = 0.0494, so ranks 10 and 21;
    # P(Binom(100, .5) <= 39) = 0.0176 < 0.025 <= P(<= 40) = 0.0284, so ranks 40 and 61.
    assert median_ci(np.arange(1.0, 31.0)) == (10.0, 21.0)
    assert median_ci(np.arange(1.0, 101.0)) == (40.0, 61.0)


def test_median_ci_with_few_samples_is_the_range():
    assert median_ci(np.array([3.0, 1.0, 2.0])) == (1.0, 3.0)


def test_timer_stops_at_target_or_budget():
    steady = measure([("noop", lambda: None)], TimerConfig(target_rel_ci=0.5, budget_s=5.0, min_samples=10))
    assert steady.reached_target
    assert len(steady.phases["noop"]) >= 10

    rng = np.random.default_rng(1)

    def jittery():
        # Sleep-free busy loop whose length varies by an order of magnitude.
        n = int(rng.integers(1, 20_000))
        sum(range(n))

    noisy = measure([("jitter", jittery)], TimerConfig(target_rel_ci=0.001, budget_s=0.05, min_samples=8))
    assert not noisy.reached_target
    assert len(noisy.phases["jitter"]) >= 8


def test_timer_keeps_phases_apart_and_calls_setup_untimed():
    calls = []
    m = measure(
        [("a", lambda: calls.append("a")), ("b", lambda: calls.append("b"))],
        TimerConfig(min_samples=6, max_samples=6, budget_s=10.0, target_rel_ci=1e-12, warmup_runs=1, warmup_s=0),
        before_run=lambda: calls.append("setup"),
    )
    assert set(m.phases) == {"a", "b"}
    assert len(m.phases["a"]) == len(m.phases["b"]) == 6
    assert calls[:3] == ["setup", "a", "b"]
    assert m.total_ms.shape == (6,)


@pytest.mark.parametrize(
    "bad",
    [
        {"budget_s": 0},
        {"budget_s": float("nan")},
        {"budget_s": float("inf")},
        {"warmup_s": -1},
        {"min_samples": 1.5},
        {"max_samples": 3, "min_samples": 6},
    ],
)
def test_bad_timer_config(bad):
    from bench.core.errors import UsageError

    with pytest.raises(UsageError):
        TimerConfig.from_mapping(bad, "timer")
