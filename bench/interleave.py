"""Time two source trees side by side, case by case, in alternating blocks.

One ``bench.worker`` process per tree; for each case both build and warm up,
then take turns measuring short blocks (A B, B A, A B, ...). Consecutive blocks
of the two sides share a time slot, so the drift of a shared machine (tens of
percent over minutes, measured on the dev machine) hits both alike; ``bench
compare`` pairs the blocks by number and tests the per-pair ratios.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.progress import Bar
from bench.results import (
    BLOCK_SAMPLE_COLUMNS,
    COLUMNS,
    AppendWriter,
    Failed,
    Measured,
    WorkFacts,
    make_row,
    new_run_id,
    run_paths,
    sample_rows,
)
from bench.spec import Case
from bench.timer import Measurement


class Worker:
    """A ``bench.worker`` child running one tree's code."""

    def __init__(self, tree: Path, wrap: Sequence[str] = ()) -> None:
        # The tree first (its own bench and models), then what --model-path added.
        env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, (str(tree), os.environ.get("PYTHONPATH"))))}
        self.proc = subprocess.Popen(
            [*wrap, sys.executable, "-m", "bench.worker"],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            return {"error": f"the worker died (exit {self.proc.wait()})"}
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


class SideWriter:
    """The results CSV and block-tagged samples of one side."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.rows = AppendWriter(path, COLUMNS)
        self.samples = AppendWriter(run_paths(path)[0], BLOCK_SAMPLE_COLUMNS)
        self.run_id = run_id

    def write(self, case: Case, ready: dict, blocks: list[dict[str, list[float]]]) -> None:
        if "error" in ready:
            # "status" since unsupported rows; older workers send only "oom".
            status = ready.get("status") or ("oom" if ready.get("oom") else "error")
            outcome: Measured | Failed = Failed(status, ready["error"])
            self.rows.write(make_row(case, outcome, {}, self.run_id))
            return
        phases = {name: [ms for b in blocks for ms in b[name]] for name in blocks[0]}
        # Fixed blocks, no precision target: reached_target None claims nothing.
        m = Measurement(phases, warmup_runs=len(blocks), sampling_s=0.0, reached_target=None)
        facts = WorkFacts(ready["valid_tokens"], ready["padding_fraction"], ready["gflop"])
        # .get: a worker of an older tree does not send every column.
        extra = {k: ready.get(k) for k in ("max_abs_err", "state_max_abs_err", "compile_s")}
        schedule = f"{len(blocks)} blocks interleaved with another tree"
        outcome = Measured(m, facts, ready["peak_gflop_per_s"], None, extra, schedule, ready.get("kernel_settings", ""))
        provenance = ready["provenance"] | {"gpu_name": ready["gpu_name"]}
        first = next(iter(blocks[0]))  # every phase has one value per run
        block_of_run = [k for k, block in enumerate(blocks) for _ in block[first]]
        self.samples.write_many(sample_rows(case.case_id, m, block_of_run))  # one flush per case
        self.rows.write(make_row(case, outcome, provenance, self.run_id))

    def close(self) -> None:
        self.rows.close()
        self.samples.close()


def side_by_side(
    trees: dict[str, Path],
    cases: Sequence[Case],
    out: dict[str, Path],
    blocks: int = 20,
    block_s: float = 0.1,
    wrap: dict[str, str] | None = None,
) -> None:
    """Measure every case in every tree, blocks alternating; write one CSV per side."""
    wrap = wrap or {}
    run_id = new_run_id()
    workers = {side: Worker(tree, shlex.split(wrap.get(side, ""))) for side, tree in trees.items()}
    writers = {side: SideWriter(out[side], f"{run_id}-{side}") for side in trees}
    sides = list(trees)
    try:
        with Bar(len(cases)) as bar:
            for case in cases:
                bar.start(case.case_id)
                ready = {side: workers[side].ask({"case": case.wire_axes()}) for side in sides}
                got: dict[str, list[dict[str, list[float]]]] = {side: [] for side in sides}
                live = [s for s in sides if "error" not in ready[s]]
                for k in range(blocks if len(live) == len(sides) else 0):
                    for side in sides if k % 2 == 0 else reversed(sides):
                        reply = workers[side].ask({"block_s": block_s})
                        if "error" in reply:
                            ready[side] = reply
                            break
                        got[side].append(reply["phases"])
                    if any("error" in ready[s] for s in sides):
                        break
                for side in sides:
                    writers[side].write(case, ready[side], got[side])
                failed = [f"{s}: {ready[s]['error']}" for s in sides if "error" in ready[s]]
                statuses = {ready[s].get("status", "error") for s in sides if "error" in ready[s]}
                status = (statuses.pop() if len(statuses) == 1 else "error") if failed else "ok"
                bar.advance(case.case_id, status, "; ".join(failed))
    finally:
        for side in sides:
            workers[side].close()
            writers[side].close()
