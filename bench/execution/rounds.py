"""Rounds: each case measured in several fresh processes, interleaved over the sweep.

One process's samples cannot see what changes between processes (memory layout and
alignment, allocator state, where threads land) or what drifts over minutes: on a
2-vCPU VM a rerun's median moved by 2-16% while one process's CI said ±2%. So a
sweep measures each case in ``rounds`` rounds. Round k runs in a fresh worker
process that builds every case anew, and the rounds are interleaved over the sweep
(every case's round 1, then every case's round 2, ...), so slow drift spreads over
all cases instead of landing on a few, as asv's rounds and pyperf's worker
processes do. The row's interval is then taken across the rounds
(``bench.core.stats.summarize_rounds``).

Each round's budget is the case's ``budget_s / rounds``. After the planned rounds,
the sampling time the cases did not use is a *pool*: cases whose interval misses
the target get further rounds from it, the cheapest to bring to the target first,
until it is spent (or ``max_rounds``). A case that looks out of reach even at
``max_rounds`` gets none: its time would buy nothing.

Every finished round of a case goes to a ledger (``<run>.rounds.jsonl``, one JSON
line per case or side-by-side group and round) before anything else, so an
interrupt keeps it and ``--resume`` goes on with the rounds that are missing; the
ledger is removed once every row is written.

This module schedules; what measures a unit (one case, or a group side by side) is
handed in (``Executor``), so the order, the pool and resuming are tested without torch.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import signal
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bench.core.cases import Case
from bench.core.errors import UsageError
from bench.core.stats import rounds_interval, rounds_needed
from bench.core.timer import Measurement, TimerConfig, freeze_imports
from bench.execution import messages
from bench.execution.isolate import FAULT_ENV
from bench.records.files import repair_torn_tail
from bench.records.outcomes import Failed, Measured, Outcome, WorkFacts

# Columns of ``extra`` that merge by their largest value over the rounds (an error, a
# memory peak, contention: the worst round is the honest report); the rest by the median.
MERGE_BY_MAX = ("max_abs_err", "state_max_abs_err", "peak_mem_mb", "other_cpu_cores", "load_avg_1m")

MeasureUnit = Callable[[list[Case], TimerConfig, dict[Case, float]], list[tuple[Case, Outcome]]]


# --- executors: where one unit's round runs ---------------------------------------------------


MeasureOne = Callable[[list[Case]], list[tuple[Case, Outcome]]]  # one unit's round, in a round's context


class Executor(Protocol):
    def round(self, index: int) -> contextlib.AbstractContextManager[MeasureOne]:
        """A context for round ``index`` giving a function that measures one unit in it."""
        ...


def _serve(fn: MeasureUnit, conn: Any) -> None:
    """A round worker's loop: measure each unit it is sent, until it is sent None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends its workers
    # A SLURM job's time-limit and preemption signals (submitit's USR2, USR1) are the job's to
    # handle: a worker they killed would turn the round in flight into a false error row.
    for name in ("SIGUSR1", "SIGUSR2"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    freeze_imports()  # fn's module (and torch) came in with the request's unpickling of fn
    while True:
        request = conn.recv()
        if request is None:
            break
        cases, config, peaks = messages.parse_round_request(request)
        if os.environ.get(FAULT_ENV) in {c.case_id for c in cases}:
            os.abort()  # tests: a crash in native code, in the middle of a round
        conn.send(messages.round_reply(fn(cases, config, peaks)))
    conn.close()


class RoundWorker:
    """One spawned process that measures the units of one round, one after another.

    Spawned, never forked: forking a process whose torch thread pools run can deadlock.
    """

    def __init__(self, fn: MeasureUnit) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(fn, child), daemon=True)
        self._proc.start()
        child.close()  # so that recv() sees EOF when the worker dies

    def measure(self, cases: list[Case], config: TimerConfig, peaks: dict[Case, float]) -> list[tuple[Case, Outcome]]:
        try:
            self._conn.send(messages.round_request(cases, config, peaks))
            return messages.parse_round_reply(self._conn.recv())
        except (EOFError, BrokenPipeError, ConnectionResetError):
            self._proc.join()
            code = self._proc.exitcode or 0
            if code == -signal.SIGTERM:
                # Stopped, not crashed: scancel signals every process of a SLURM job, and so may a
                # user. The sweep is interrupted (its finished rounds kept), never the case failed.
                raise KeyboardInterrupt from None
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            return [(c, Failed("error", f"crashed: the round's worker process died ({how})")) for c in cases]

    @property
    def alive(self) -> bool:
        return self._proc.is_alive()

    def close(self, wait_s: float = 10) -> None:
        """Ask the worker to end; terminate it if it has not after ``wait_s``."""
        with contextlib.suppress(OSError, BrokenPipeError):
            if self._proc.is_alive() and wait_s > 0:
                self._conn.send(None)
        self._proc.join(timeout=wait_s)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join()
        self._conn.close()


class WorkerPerRound:
    """Every round in a fresh worker process (a crashed worker is replaced for the next unit)."""

    def __init__(self, fn: MeasureUnit, config: TimerConfig, peaks: Callable[[Case], float]) -> None:
        self.fn, self.config, self.peaks = fn, config, peaks

    @contextlib.contextmanager
    def round(self, index: int) -> Iterator[MeasureOne]:
        # Started before the first unit is timed: its start (an interpreter, torch) is not the unit's.
        worker: RoundWorker | None = RoundWorker(self.fn)

        def measure(cases: list[Case]) -> list[tuple[Case, Outcome]]:
            nonlocal worker
            if worker is None or not worker.alive:
                if worker is not None:
                    worker.close()
                worker = RoundWorker(self.fn)
            return worker.measure(cases, self.config, {c: self.peaks(c) for c in cases})

        try:
            yield measure
        except BaseException:  # an interrupt: the worker may be mid-case, do not wait for it
            if worker is not None:
                worker.close(wait_s=0)
            raise
        if worker is not None:
            worker.close()


class Direct:
    """Each unit measured by a plain call: in this process, or through ``call`` (``--isolate``)."""

    def __init__(
        self,
        fn: MeasureUnit,
        config: TimerConfig,
        peaks: Callable[[Case], float],
        call: Callable[[MeasureUnit, tuple, str], Any] | None = None,
    ) -> None:
        self.fn, self.config, self.peaks, self.call = fn, config, peaks, call

    @contextlib.contextmanager
    def round(self, index: int) -> Iterator[MeasureOne]:
        def measure(cases: list[Case]) -> list[tuple[Case, Outcome]]:
            args = (cases, self.config, {c: self.peaks(c) for c in cases})
            if self.call is None:
                return self.fn(*args)
            got = self.call(self.fn, args, cases[0].case_id)
            return [(c, got) for c in cases] if isinstance(got, Failed) else got

        yield measure


# --- the ledger: finished rounds, kept across interrupts ----------------------------------------


def outcome_to_json(outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, Failed):
        return {"status": outcome.status, "error": outcome.error}
    assert isinstance(outcome, Measured)
    m = outcome.measurement
    return {
        "phases": m.phases,
        "warmup_runs": m.warmup_runs,
        "sampling_s": m.sampling_s,
        "reached_target": m.reached_target,
        "facts": asdict(outcome.facts),
        "peak_gflop_per_s": outcome.peak_gflop_per_s,
        "target_rel_ci": outcome.target_rel_ci,
        "extra": dict(outcome.extra),
        "schedule": outcome.schedule,
        "kernel_settings": outcome.kernel_settings,
    }


def outcome_from_json(data: dict[str, Any]) -> Outcome:
    if "status" in data:
        return Failed(data["status"], data["error"])
    m = Measurement(data["phases"], data["warmup_runs"], data["sampling_s"], data["reached_target"])
    return Measured(
        m,
        WorkFacts(**data["facts"]),
        data["peak_gflop_per_s"],
        data["target_rel_ci"],
        data["extra"],
        data["schedule"],
        data["kernel_settings"],
    )


def _json_number(value: Any) -> Any:
    """NaN and infinities as None: the ledger is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_number(v) for v in value]
    return value


LEDGER_VERSION = 1  # 0: lines without "v" (the same fields); 1: each line has "v"


class Ledger:
    """``<run>.rounds.jsonl``: one line per finished unit-round, flushed to disk at once.

    Each line carries ``v`` (``LEDGER_VERSION``); a line of a newer version than this
    rnnbench knows is refused in one line rather than guessed at."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[dict[str, Any]]:
        """The finished unit-rounds; a torn last line (a hard kill mid-write) is cut off first,
        so that the next line appended starts on a line of its own."""
        if not self.path.is_file():
            return []
        repair_torn_tail(self.path)
        entries = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # not ours to read (a line from a crashed write that ended in a newline)
            version = entry.get("v", 0) if isinstance(entry, dict) else 0
            if not isinstance(version, int) or version > LEDGER_VERSION:
                raise UsageError(f"{self.path}: written by a newer rnnbench (ledger version {version!r})")
            entries.append(entry)
        return entries

    def append(self, index: int, outcomes: Sequence[tuple[Case, Outcome]], wall_s: float) -> None:
        entry = {
            "v": LEDGER_VERSION,
            "round": index,
            "wall_s": wall_s,
            "outcomes": {c.case_id: _json_number(outcome_to_json(o)) for c, o in outcomes},
        }
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


# --- one unit's rounds --------------------------------------------------------------------------


@dataclass
class Unit:
    """A case alone, or a side-by-side group, with the rounds it has."""

    cases: list[Case]
    rounds: dict[int, dict[str, Outcome]] = field(default_factory=dict)  # round -> case id -> outcome
    wall_s: list[float] = field(default_factory=list)
    finished: bool = False  # every row of it is out
    emitted: set[str] = field(default_factory=set)  # case ids whose row is out (failures go at once)

    @property
    def label(self) -> str:
        extra = f" (+{len(self.cases) - 1} side by side)" if len(self.cases) > 1 else ""
        return self.cases[0].case_id + extra

    def failures(self) -> dict[str, Failed]:
        """Case id -> the failure of a case that failed in any round (it is not measured again)."""
        out: dict[str, Failed] = {}
        for outcomes in self.rounds.values():
            for case_id, o in outcomes.items():
                if isinstance(o, Failed):
                    out.setdefault(case_id, o)
        return out

    def live(self) -> list[Case]:
        failed = self.failures()
        return [c for c in self.cases if c.case_id not in failed]

    def round_medians(self, case: Case) -> list[float]:
        medians = []
        for outcomes in self.rounds.values():
            o = outcomes.get(case.case_id)
            if isinstance(o, Measured):
                medians.append(float(np.median(o.measurement.total_ms)))
        return medians

    def rel_ci(self, case: Case) -> float:
        """The CI half-width across rounds over the centre; inf below two rounds."""
        medians = self.round_medians(case)
        if len(medians) < 2:
            return math.inf
        centre, low, high = rounds_interval(medians)
        return (high - low) / 2 / centre

    def spent_s(self) -> float:
        """Sampling time of its rounds (what the budget counts); a group side by side shares one
        window per round, which each member's measurement reports whole."""
        spent = 0.0
        for outcomes in self.rounds.values():
            times = [o.measurement.sampling_s for o in outcomes.values() if isinstance(o, Measured)]
            spent += max(times, default=0.0)
        return spent

    def precise(self, target: float) -> bool:
        return all(self.rel_ci(c) <= target for c in self.live())

    def outcome(self, case: Case, target: float) -> Outcome:
        """The case's outcome over all its rounds (a failure in any round is its outcome)."""
        failed = self.failures().get(case.case_id)
        if failed is not None:
            return failed
        parts = sorted((r, o[case.case_id]) for r, o in self.rounds.items() if case.case_id in o)
        measured = [o for _, o in parts if isinstance(o, Measured)]
        first = measured[0]
        if len(parts) == 1:  # one round: as measured, its own CI and target check
            return first
        reached = self.rel_ci(case) <= target if first.target_rel_ci is not None else None
        m = Measurement.merged([(r, o.measurement) for r, o in parts], reached)
        return Measured(
            m,
            first.facts,
            first.peak_gflop_per_s,
            first.target_rel_ci,
            merge_extra([o.extra for o in measured]),
            first.schedule,
            first.kernel_settings,
        )


def merge_extra(extras: Sequence[dict[str, Any]]) -> dict[str, Any]:
    keys = {k for e in extras for k in e}
    out: dict[str, Any] = {}
    for k in sorted(keys):
        values = [e[k] for e in extras if e.get(k) is not None and not (isinstance(e[k], float) and math.isnan(e[k]))]
        if not values:
            out[k] = None
        else:
            out[k] = max(values) if k in MERGE_BY_MAX else statistics.median(values)
    return out


# --- the schedule -------------------------------------------------------------------------------


@dataclass
class Progress:
    """What the schedule tells its caller: a round of a unit started, ended; a unit's rows are ready."""

    on_start: Callable[[Unit, int], None] = lambda unit, index: None
    on_round: Callable[[Unit, int, list[tuple[Case, Outcome]]], None] = lambda unit, index, outcomes: None
    on_more: Callable[[int], None] = lambda n: None  # n more unit-rounds were scheduled (the pool)


def restore(units: Sequence[Unit], ledger: Ledger) -> int:
    """Give each unit the rounds the ledger holds for it; the number of unit-rounds restored."""
    by_case = {c.case_id: u for u in units for c in u.cases}
    restored = 0
    for entry in ledger.read():
        outcomes = {k: outcome_from_json(v) for k, v in entry["outcomes"].items() if k in by_case}
        if not outcomes:
            continue
        unit = by_case[next(iter(outcomes))]
        unit.rounds[int(entry["round"])] = outcomes
        unit.wall_s.append(float(entry["wall_s"]))
        restored += 1
    return restored


def run_rounds(
    units: Sequence[Unit],
    config: TimerConfig,
    executor: Executor,
    ledger: Ledger,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Iterator[tuple[Case, Outcome]]:
    """Measure every unit in ``config.rounds`` interleaved rounds, then in pool rounds; yield each
    case's outcome over its rounds as soon as it has all it will get.

    Round k of every unit runs before round k+1 of any (interleaving). A unit's
    round is written to the ledger before anything is yielded.
    """
    progress = progress or Progress()
    target = config.target_rel_ci

    def one_round(index: int, todo: Sequence[Unit]) -> Iterator[tuple[Case, Outcome]]:
        if not todo:  # resumed past this round: no worker to start
            return
        with executor.round(index) as measure:
            for unit in todo:
                cases = unit.live()
                progress.on_start(unit, index)
                t0 = clock()
                outcomes = measure(cases)
                wall = clock() - t0
                ledger.append(index, outcomes, wall)
                unit.rounds[index] = dict((c.case_id, o) for c, o in outcomes)
                unit.wall_s.append(wall)
                progress.on_round(unit, index, outcomes)
                # A case that failed is not measured again: its row goes out now.
                for case, o in outcomes:
                    if isinstance(o, Failed):
                        unit.emitted.add(case.case_id)
                        yield case, o
                if index == config.rounds - 1 and done_after_planned(unit):
                    yield from finish(unit)  # rows go out as the last planned round goes along

    def done_after_planned(unit: Unit) -> bool:
        """Needs no round from the pool: failed, precise, or no pool (one round is a quick look)."""
        return not unit.live() or unit.precise(target) or config.rounds < 2

    def finish(unit: Unit) -> Iterator[tuple[Case, Outcome]]:
        unit.finished = True
        for case in unit.cases:
            if case.case_id not in unit.emitted:
                unit.emitted.add(case.case_id)
                yield case, unit.outcome(case, target)

    for index in range(config.rounds):
        todo = [u for u in units if u.live() and index not in u.rounds]
        yield from one_round(index, todo)
    # Done after the planned rounds (restored ones included). The rest wait for the pool.
    for unit in units:
        if not unit.finished and done_after_planned(unit):
            yield from finish(unit)
    if config.rounds >= 2:
        pool = sum(config.budget_s * len(u.cases) for u in units) - sum(u.spent_s() for u in units)
        index = max((r for u in units for r in u.rounds), default=config.rounds - 1) + 1
        while True:
            picks = pool_picks([u for u in units if not u.finished], config, pool)
            if not picks:
                break
            progress.on_more(len(picks))
            t0 = clock()
            yield from one_round(index, picks)
            pool -= clock() - t0
            index += 1
            for unit in picks:
                if not unit.live() or unit.precise(target):
                    yield from finish(unit)
    for unit in units:
        if not unit.finished:
            yield from finish(unit)


def pool_picks(waiting: Sequence[Unit], config: TimerConfig, pool_s: float) -> list[Unit]:
    """The units that get one more round from the pool: those that can still reach the target
    within ``max_rounds``, cheapest to finish first, as far as the pool is predicted to last."""
    costed = []
    for unit in waiting:
        have = len(unit.rounds)
        if have >= config.max_rounds or not unit.live():
            continue
        need = have + 1
        for case in unit.live():
            medians = unit.round_medians(case)
            if len(medians) < 2:
                continue
            sd = float(np.std(np.log(medians), ddof=1))
            r = rounds_needed(sd, config.target_rel_ci, have, config.max_rounds)
            if r is None:  # out of reach: rounds would buy nothing
                need = math.inf
                break
            need = max(need, r)
        if math.isinf(need):
            continue
        round_s = float(np.median(unit.wall_s)) if unit.wall_s else config.budget_s
        costed.append(((need - have) * round_s, round_s, unit))
    picks = []
    for _cost, round_s, unit in sorted(costed, key=lambda t: t[0]):
        if round_s > pool_s:
            continue
        picks.append(unit)
        pool_s -= round_s
    return picks
