"""Time two source trees side by side, case by case, in alternating blocks.

One ``bench.execution.worker`` process per tree; for each case both build and warm up,
then take turns measuring short blocks (A B, B A, A B, ...). Consecutive blocks
of the two sides share a time slot, so the drift of a shared machine (tens of
percent over minutes, measured on the dev machine) hits both alike; ``bench
compare`` pairs the blocks by number and tests the per-pair ratios.

With ``rounds`` > 1 the blocks are split over rounds, each with a fresh pair of
workers that builds every case anew, interleaved over the cases (as a sweep's
rounds are, ``bench.execution.rounds``): what one pair of processes happens to be (where
their memory and threads landed) then varies between rounds instead of passing
for a difference of code, and ``bench compare`` tests the per-round ratios.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.core.cases import Case
from bench.core.timer import Measurement
from bench.execution import messages
from bench.execution.progress import Bar
from bench.execution.trees import tree_env
from bench.records.files import AppendWriter, run_paths
from bench.records.outcomes import Failed, Measured
from bench.records.rows import BLOCK_SAMPLE_COLUMNS, COLUMNS, make_row, new_run_id, sample_rows


class Worker:
    """A ``bench.execution.worker`` child running one tree's code."""

    def __init__(self, tree: Path, wrap: Sequence[str] = ()) -> None:
        # The tree first (its own bench and models), then what --model-path added.
        self.proc = subprocess.Popen(
            [*wrap, sys.executable, "-m", "bench.worker"],  # the path every tree has (bench/worker.py)
            cwd=tree,
            env=tree_env(tree),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(messages.to_line(request))
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            return messages.failed_reply(Failed("error", f"the worker died (exit {self.proc.wait()})"))
        return messages.from_line(line)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


class SideWriter:
    """The results CSV and block-tagged samples of one side."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.rows = AppendWriter(path, COLUMNS)
        self.samples = AppendWriter(run_paths(path)[0], (*BLOCK_SAMPLE_COLUMNS, "round"))
        self.run_id = run_id

    def write(
        self,
        case: Case,
        ready: messages.Ready | Failed,
        blocks: list[dict[str, list[float]]],
        block_rounds: list[int] | None = None,
    ) -> None:
        """The case's row and samples; ``block_rounds`` is each block's round (None: one round)."""
        if isinstance(ready, Failed):
            self.rows.write(make_row(case, ready, {}, self.run_id))
            return
        if not blocks:  # this side built the case, the other failed before any block pair
            self.rows.write(make_row(case, Failed("error", "no paired blocks: the other side failed"), {}, self.run_id))
            return
        phases = {name: [ms for b in blocks for ms in b[name]] for name in blocks[0]}
        first = next(iter(blocks[0]))  # every phase has one value per run
        # Every run tagged with its round (0 for one round), so the samples file always has them.
        tags = block_rounds if block_rounds is not None else [0] * len(blocks)
        run_rounds = [r for r, block in zip(tags, blocks, strict=True) for _ in block[first]]
        # Fixed blocks, no precision target: reached_target None claims nothing.
        m = Measurement(phases, warmup_runs=len(blocks), sampling_s=0.0, reached_target=None, rounds=run_rounds)
        schedule = f"{len(blocks)} blocks interleaved with another tree"
        outcome = Measured(m, ready.facts, ready.peak_gflop_per_s, None, ready.extra, schedule, ready.kernel_settings)
        provenance = ready.provenance | {"gpu_name": ready.gpu_name}
        block_of_run = [k for k, block in enumerate(blocks) for _ in block[first]]
        self.samples.write_many(sample_rows(case.case_id, m, block_of_run))  # one flush per case
        self.rows.write(make_row(case, outcome, provenance, self.run_id))

    def close(self) -> None:
        self.rows.close()
        self.samples.close()


def blocks_per_round(blocks: int, rounds: int) -> list[int]:
    """``blocks`` split over ``rounds`` as evenly as they go (20 over 3: 7, 7, 6)."""
    return [blocks // rounds + (1 if r < blocks % rounds else 0) for r in range(rounds)]


def side_by_side(
    trees: dict[str, Path],
    cases: Sequence[Case],
    out: dict[str, Path],
    blocks: int = 20,
    block_s: float = 0.1,
    wrap: dict[str, str] | None = None,
    rounds: int = 1,
) -> None:
    """Measure every case in every tree, blocks alternating, in ``rounds`` rounds of fresh
    workers; write one CSV per side (a case's rows once its last round is done)."""
    wrap = wrap or {}
    run_id = new_run_id()
    writers = {side: SideWriter(out[side], f"{run_id}-{side}") for side in trees}
    sides = list(trees)
    split = blocks_per_round(blocks, rounds)
    ready: dict[Case, dict[str, messages.Ready | Failed]] = {}  # each side's first reply, or what ended it
    got: dict[Case, dict[str, list[dict[str, list[float]]]]] = {c: {s: [] for s in sides} for c in cases}
    tags: dict[Case, list[int]] = {c: [] for c in cases}
    try:
        with Bar(len(cases) * rounds) as bar:
            for r, count in enumerate(split):
                workers = {side: Worker(tree, shlex.split(wrap.get(side, ""))) for side, tree in trees.items()}
                try:
                    for case in cases:
                        label = f"round {r + 1}/{rounds}: {case.case_id}" if rounds > 1 else case.case_id
                        bar.start(label)
                        failed = case in ready and any(isinstance(ready[case][s], Failed) for s in sides)
                        if not failed:
                            _blocks(case, workers, sides, count, block_s, ready, got[case], tags[case], r)
                        why = {s: ready[case][s] for s in sides if isinstance(ready[case][s], Failed)}
                        # Written once: in its last round, or in the round it failed.
                        if not failed and (r == rounds - 1 or why):
                            pairs = len(tags[case])  # a block whose partner failed is dropped
                            for side in sides:
                                writers[side].write(case, ready[case][side], got[case][side][:pairs], tags[case])
                        errors = [f"{s}: {f.error}" for s, f in why.items()]
                        statuses = {f.status for f in why.values()}
                        status = (statuses.pop() if len(statuses) == 1 else "error") if errors else "ok"
                        bar.advance(label, status, "; ".join(errors))
                finally:
                    for side in sides:
                        workers[side].close()
    finally:
        for side in sides:
            writers[side].close()


def _blocks(
    case: Case,
    workers: dict[str, Worker],
    sides: list[str],
    count: int,
    block_s: float,
    ready: dict[Case, dict[str, messages.Ready | Failed]],
    got: dict[str, list[dict[str, list[float]]]],
    tags: list[int],
    round_index: int,
) -> None:
    """One round of a case: both sides build it, then ``count`` alternating blocks each."""
    replies = {side: messages.parse_ready(workers[side].ask(messages.case_request(case))) for side in sides}
    if case not in ready or any(isinstance(replies[s], Failed) for s in sides):
        ready[case] = replies
    if any(isinstance(replies[s], Failed) for s in sides):
        return
    start = len(tags)  # blocks of earlier rounds: the A B / B A alternation runs on across rounds
    for k in range(count):
        for side in sides if (start + k) % 2 == 0 else reversed(sides):
            reply = messages.parse_phases(workers[side].ask(messages.block_request(block_s)))
            if isinstance(reply, Failed):
                ready[case][side] = reply
                return
            got[side].append(reply)
        tags.append(round_index)
