"""Rounds (bench.execution.rounds): the interval across rounds, their order, the ledger and resume, the pool."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import pytest
from factories import make_case, measured

from bench.core.cases import Case
from bench.core.stats import median_ci, rounds_interval, summarize_rounds
from bench.core.timer import TimerConfig
from bench.execution.rounds import Ledger, Progress, Unit, pool_picks, restore, run_rounds
from bench.records.outcomes import Failed, Measured
from bench.records.rows import make_row

# --- the interval across rounds, on simulated rounds with a known between-round spread -----------


def simulated_run(rng: np.random.Generator, rounds: int, between_sd: float, per_round: int = 30) -> list[np.ndarray]:
    """Rounds of a case whose true centre is 1 ms: each round shifted as a whole (a process),
    its samples jittered ±3% with rare slow outliers."""
    out = []
    for _ in range(rounds):
        x = np.exp(rng.normal(0.0, between_sd)) * np.exp(rng.normal(0.0, 0.03, per_round))
        slow = rng.random(per_round) < 0.02
        x[slow] *= 1 + rng.exponential(2.0, slow.sum())
        out.append(x)
    return out


@pytest.mark.parametrize("rounds", [3, 5])
def test_rounds_interval_covers_the_centre_about_95_percent(rounds):
    rng = np.random.default_rng(1)
    covered, one_process = [], []
    for _ in range(400):
        run = simulated_run(rng, rounds, between_sd=0.05)
        tags = np.repeat(np.arange(rounds), [r.size for r in run])
        s = summarize_rounds(np.concatenate(run), tags)
        covered.append(s.ci_low_ms <= 1.0 <= s.ci_high_ms)
        low, high = median_ci(run[0])
        one_process.append(low <= 1.0 <= high)
    assert 0.91 <= np.mean(covered) <= 0.99
    # The same data through one process's interval: the promise it cannot keep.
    assert np.mean(one_process) < 0.5


def test_a_rerun_lands_within_the_combined_interval():
    rng = np.random.default_rng(2)
    inside = []
    for _ in range(300):
        a, b = (rounds_interval([np.median(r) for r in simulated_run(rng, 3, 0.05)]) for _ in range(2))
        h = [math.log(high / low) / 2 for _, low, high in (a, b)]
        inside.append(abs(math.log(b[0] / a[0])) < math.hypot(*h))
    assert np.mean(inside) >= 0.93


def test_summary_keeps_the_two_spreads_apart():
    rng = np.random.default_rng(3)
    run = simulated_run(rng, 5, between_sd=0.10, per_round=200)
    tags = np.repeat(np.arange(5), 200)
    s = summarize_rounds(np.concatenate(run), tags)
    assert s.rounds == 5 and s.between_dominates
    assert 0.03 < s.between_round_rel_sd < 0.25 and s.within_round_rel_ci < 0.02
    quiet = summarize_rounds(np.concatenate(simulated_run(rng, 10, 0.0, 20)), np.repeat(np.arange(10), 20))
    assert not quiet.between_dominates
    few = summarize_rounds(np.concatenate(simulated_run(rng, 3, 0.0, 4)), np.repeat(np.arange(3), 4))
    assert np.isfinite(few.within_round_rel_ci)  # 4 samples a round: the range, never NaN


# --- the schedule, with a stub in place of the processes ----------------------------------------


class StubExecutor:
    """Records each round's context (a fresh process in a sweep) and each unit measured in it."""

    def __init__(self, medians: dict[str, list[float]], interrupt_at: tuple[int, str] | None = None) -> None:
        self.medians = medians  # case id -> its median in round 0, 1, 2, ... (the last repeats)
        self.calls: list[tuple[int, tuple[str, ...]]] = []
        self.contexts: list[int] = []
        self.interrupt_at = interrupt_at

    @contextlib.contextmanager
    def round(self, index: int) -> Iterator:
        self.contexts.append(index)

        def measure(cases: list[Case]):
            if self.interrupt_at == (index, cases[0].case_id):
                raise KeyboardInterrupt
            self.calls.append((index, tuple(c.case_id for c in cases)))
            out = []
            for c in cases:
                wanted = self.medians[c.case_id]
                if wanted == "fail":
                    out.append((c, Failed("error", "boom")))
                    continue
                m = wanted[min(index, len(wanted) - 1)]
                out.append((c, measured(m * np.array([0.99, 1.0, 1.01, 1.0, 0.995, 1.005, 1.0, 1.0]))))
            return out

        yield measure


CONFIG = TimerConfig(rounds=3, max_rounds=6, budget_s=1.0, target_rel_ci=0.02)


def cases(n: int) -> list[Case]:
    return [make_case(batch_size=b) for b in range(1, n + 1)]


def test_rounds_interleave_over_the_sweep_each_in_a_fresh_context(tmp_path):
    cs = cases(3)
    stub = StubExecutor({c.case_id: [1.0] for c in cs})
    out = list(run_rounds([Unit([c]) for c in cs], CONFIG, stub, Ledger(tmp_path / "l.jsonl")))
    ids = [c.case_id for c in cs]
    assert stub.calls == [(r, (i,)) for r in range(3) for i in ids]  # every case's round 1, then round 2, ...
    assert stub.contexts == [0, 1, 2]
    assert [c.case_id for c, _ in out] == ids
    assert all(o.measurement.round_count == 3 for _, o in out)


def test_side_by_side_groups_stay_together_in_every_round(tmp_path):
    a, b, c = make_case(varlen="padded"), make_case(varlen="packed"), make_case(batch_size=9)
    stub = StubExecutor({x.case_id: [1.0] for x in (a, b, c)})
    out = dict(run_rounds([Unit([a, b]), Unit([c])], CONFIG, stub, Ledger(tmp_path / "l.jsonl")))
    assert stub.calls == [(r, u) for r in range(3) for u in ((a.case_id, b.case_id), (c.case_id,))]
    # Paired: both variants carry samples of the same rounds.
    assert sorted(set(out[a].measurement.rounds)) == sorted(set(out[b].measurement.rounds)) == [0, 1, 2]


def test_resume_in_the_middle_of_a_round_measures_only_what_is_missing(tmp_path):
    cs = cases(3)
    ids = [c.case_id for c in cs]
    medians = {i: [1.0, 1.001, 0.999] for i in ids}  # precise: no pool rounds
    ledger = Ledger(tmp_path / "l.jsonl")
    first = StubExecutor(medians, interrupt_at=(1, ids[1]))
    with pytest.raises(KeyboardInterrupt):
        list(run_rounds([Unit([c]) for c in cs], CONFIG, first, ledger))
    assert first.calls == [(0, (i,)) for i in ids] + [(1, (ids[0],))]
    # A torn last line (killed mid-write) is dropped, not read.
    with ledger.path.open("a") as f:
        f.write('{"round": 1, "wall_s": 0.1, "outco')
    units = [Unit([c]) for c in cs]
    assert restore(units, ledger) == 4
    second = StubExecutor(medians)
    out = dict(run_rounds(units, CONFIG, second, ledger))
    assert second.calls == [(1, (ids[1],)), (1, (ids[2],))] + [(2, (i,)) for i in ids]
    for c in cs:  # every case has all three rounds, the restored ones with their samples
        m = out[c].measurement
        assert sorted(set(m.rounds)) == [0, 1, 2] and len(m.total_ms) == 24
    # The torn line was cut before the resume appended: a later resume reads every round.
    assert len(ledger.read()) == 9 and "outco\n" not in ledger.path.read_text()


def test_a_failed_case_is_reported_at_once_and_not_measured_again(tmp_path):
    ok, bad = cases(2)
    stub = StubExecutor({ok.case_id: [1.0], bad.case_id: "fail"})
    out = list(run_rounds([Unit([ok]), Unit([bad])], CONFIG, stub, Ledger(tmp_path / "l.jsonl")))
    assert out[0] == (bad, Failed("error", "boom"))  # before the ok case, which waits for its rounds
    assert [ids for _, ids in stub.calls].count((bad.case_id,)) == 1


def test_one_round_is_one_process_and_says_so(tmp_path):
    (c,) = cases(1)
    stub = StubExecutor({c.case_id: [1.0]})
    config = TimerConfig(rounds=1, max_rounds=6, target_rel_ci=1e-6)  # a missed target: still no more rounds
    ((_, outcome),) = run_rounds([Unit([c])], config, stub, Ledger(tmp_path / "l.jsonl"))
    assert stub.calls == [(0, (c.case_id,))]
    row = make_row(c, outcome, {}, "r")
    assert row.rounds == 1 and "the CI covers one process only" in row.note


def test_the_pool_gives_rounds_to_cases_that_can_reach_the_target(tmp_path):
    quick, close, hopeless = cases(3)
    medians = {
        quick.case_id: [1.0, 1.001, 0.999],  # precise after the planned rounds
        close.case_id: [1.0, 1.03, 0.98, 1.0, 1.01, 0.995],  # a few more rounds bring it in
        hopeless.case_id: [1.0, 1.6, 0.6],  # out of reach even at max_rounds
    }
    stub = StubExecutor(medians)
    ticks = iter(range(10_000))
    out = dict(
        run_rounds(
            [Unit([c]) for c in (quick, close, hopeless)],
            TimerConfig(rounds=3, max_rounds=12, budget_s=100.0, target_rel_ci=0.03),
            stub,
            Ledger(tmp_path / "l.jsonl"),
            clock=lambda: float(next(ticks)),  # each unit-round "takes" one second
        )
    )
    extra = [ids[0] for r, ids in stub.calls if r >= 3]
    assert extra and set(extra) == {close.case_id}
    assert out[quick].measurement.round_count == 3 and out[hopeless].measurement.round_count == 3
    assert out[close].measurement.reached_target and not out[hopeless].measurement.reached_target


def test_the_pool_stops_when_it_is_spent():
    unit = Unit([make_case()])
    unit.rounds = {r: {unit.cases[0].case_id: measured([m] * 8)} for r, m in enumerate([1.0, 1.03, 0.98])}
    unit.wall_s = [5.0, 5.0, 5.0]
    config = TimerConfig(rounds=3, max_rounds=12, target_rel_ci=0.03)
    assert pool_picks([unit], config, pool_s=10.0) == [unit]
    assert pool_picks([unit], config, pool_s=4.0) == []  # one more round would overdraw it


def test_progress_hears_of_every_round(tmp_path):
    cs = cases(2)
    seen = []
    progress = Progress(on_round=lambda unit, index, outcomes: seen.append((index, unit.cases[0].case_id)))
    list(
        run_rounds(
            [Unit([c]) for c in cs],
            CONFIG,
            StubExecutor({c.case_id: [1.0] for c in cs}),
            Ledger(tmp_path / "l"),
            progress,
        )
    )
    assert seen == [(r, c.case_id) for r in range(3) for c in cs]


def test_a_row_from_rounds_takes_its_interval_across_them():
    c = make_case()
    unit = Unit([c])
    for r, m in enumerate([1.0, 1.1, 0.9]):
        unit.rounds[r] = {c.case_id: measured(m * np.linspace(0.999, 1.001, 8))}
    outcome = unit.outcome(c, target=0.02)
    assert isinstance(outcome, Measured)
    row = make_row(c, outcome, {}, "r")
    centre, low, high = rounds_interval([1.0, 1.1, 0.9])
    assert row.median_ms == pytest.approx(centre) and row.ci_low_ms == pytest.approx(low)
    assert row.ci_high_ms == pytest.approx(high) and row.rounds == 3
    assert row.within_round_rel_ci < 0.01 < row.between_round_rel_sd
    assert "between rounds dominates" in row.note and "noisy" in row.note
