"""The regression gate's measuring: one flow for both metrics, the metric choosing how a side
is measured.

* ``time``: the pytest-benchmark CI suite (``benchmarks/``). Against a git ref, both trees
  are measured in the same job, case by case in alternating short blocks
  (``bench.execution.interleave``), as asv's ``continuous`` does: a shared CI machine drifts
  by tens of percent over minutes, and interleaving makes that drift hit both sides alike.
  The suite also runs once on the current tree, for its pytest-benchmark JSON.
* ``instructions``: ``bench run --metric instructions`` under callgrind. Counts do not drift
  with the machine's load, so the two sides are counted in turn, each from the same path
  (``trees.counting_tree``), so that nothing but the code differs between them.

The verdict (``bench compare`` of the two sides) is the command's: see ``bench.commands.ci``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import UsageError
from bench.core.paths import REPO_ROOT
from bench.core.stats import MIN_CI_SAMPLES
from bench.execution.trees import counting_tree, tree_env, worktree
from bench.records.files import run_paths

DEFAULT_BASELINES = {
    "time": REPO_ROOT / "results" / "baselines" / "ci-cpu.csv",
    "instructions": REPO_ROOT / "results" / "baselines" / "ci-instructions.csv",
}
DEFAULT_PRESETS = {"time": "ci", "instructions": "ci-instructions"}
DEFAULT_OUT = REPO_ROOT / "reports" / "ci"


@dataclass(frozen=True)
class GateOptions:
    """What to measure and how (``bench ci``'s flags with their defaults filled in)."""

    metric: str = "time"
    against: str | None = None  # a git ref measured beside this tree; None: the committed baseline
    baseline: Path = DEFAULT_BASELINES["time"]
    preset: str = "ci"
    spec: Path | None = None  # an absolute spec path, instead of the preset (both sides run elsewhere)
    blocks: int = 20
    block_s: float = 0.1
    rounds: int = 5
    wrap_current: str = ""
    out: Path = DEFAULT_OUT

    def check(self) -> None:
        """Bad flags, one line, before anything runs (no valgrind included, for counts)."""
        if self.spec is not None and not self.spec.is_file():
            raise UsageError(f"--spec {self.spec}: no such file")
        if self.metric == "instructions":
            from bench.execution.counting import valgrind

            valgrind()
            return
        if self.blocks < MIN_CI_SAMPLES or not self.block_s > 0:
            raise UsageError(
                f"--blocks {self.blocks} / --block-s {self.block_s}: need >= {MIN_CI_SAMPLES} blocks of > 0 s"
            )
        if not 1 <= self.rounds <= self.blocks:
            raise UsageError(f"--rounds {self.rounds}: need 1 to --blocks ({self.blocks}) rounds")

    def selection(self) -> list[str]:
        """The cases, as flags: ``--spec FILE`` or ``--preset NAME``."""
        return ["--spec", str(self.spec)] if self.spec else ["--preset", self.preset]


@dataclass(frozen=True)
class Sides:
    """The two runs the gate compares; ``same_job``: measured here together, so a change of
    environment between them is moot."""

    baseline: Path
    current: Path
    same_job: bool


def fresh_folder(out: Path) -> Path:
    """``out`` emptied and made, absolute (the counting runs in another folder)."""
    out = out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return out


def measure_side(options: GateOptions, side: str, ref: str | None, out_csv: Path) -> None:
    """One side into ``out_csv``: this working tree (``ref`` None) or ``ref``, by the metric's way."""
    if options.metric == "instructions":
        with counting_tree(ref) as tree:
            print(f"[bench_ci] {side}: counting instructions ({ref or 'this working tree'})", file=sys.stderr)
            run = [sys.executable, "-m", "bench", "run", "--metric", "instructions", *options.selection()]
            jobs = str(os.cpu_count() or 1)
            code = subprocess.run(
                [*run, "--out", str(out_csv), "--jobs", jobs], cwd=tree, env=tree_env(tree)
            ).returncode
        if code == 2:  # a usage error, said in one line above (no valgrind, a tree without --metric)
            raise SystemExit(2)
        if code != 0:
            raise SystemExit(f"counting instructions failed for the {side} side (exit {code})")
        return
    assert ref is None, "time against a ref is measured side by side (measure_sides)"
    run_suite(REPO_ROOT, out_csv, options)


def suite_command(out_csv: Path, options: GateOptions) -> list[str]:
    """The pytest-benchmark CI suite writing ``out_csv`` and its JSON beside it."""
    which = f"--suite-spec={options.spec}" if options.spec else f"--suite-preset={options.preset}"
    return [
        sys.executable,
        "-m",
        "pytest",
        "benchmarks",
        "-q",
        "-p",
        "no:cacheprovider",
        which,
        f"--suite-csv={out_csv}",
        f"--benchmark-json={out_csv.with_suffix('')}.benchmark.json",
        "--benchmark-save-data",
    ]


def run_suite(tree: Path, out_csv: Path, options: GateOptions) -> None:
    """One pass of the pytest-benchmark suite in ``tree``, with ``tree``'s own code."""
    print(f"[bench_ci] {tree.name}: {out_csv.name}", file=sys.stderr, flush=True)
    done = subprocess.run(suite_command(out_csv, options), cwd=tree, env=tree_env(tree))
    if done.returncode != 0:
        raise SystemExit(f"the CI suite failed in {tree} (exit {done.returncode})")


def refresh_baseline(options: GateOptions) -> Path:
    """Measure this tree and put it at ``options.baseline`` (renamed in: readers never see half a file)."""
    out = fresh_folder(options.out)
    fresh = out / "baseline.csv"
    measure_side(options, "current", None, fresh)
    options.baseline.parent.mkdir(parents=True, exist_ok=True)
    os.replace(run_paths(fresh)[0], run_paths(options.baseline)[0])
    os.replace(fresh, options.baseline)
    return options.baseline


def measure_sides(options: GateOptions) -> Sides:
    """Both sides of the gate: the committed baseline and this tree, or a git ref and this tree."""
    out = fresh_folder(options.out)
    current = out / "current.csv"
    if options.against is None:
        if not options.baseline.is_file():
            raise UsageError(f"--baseline {options.baseline}: no such file (refresh it: see docs/ci.md)")
        measure_side(options, "current", None, current)
        return Sides(options.baseline, current, same_job=False)
    base = out / "base.csv"
    if options.metric == "instructions":
        measure_side(options, "base", options.against, base)
        measure_side(options, "current", None, current)
        return Sides(base, current, same_job=True)
    _side_by_side(options, base, current)
    run_suite(REPO_ROOT, out / "suite.csv", options)  # the pytest-benchmark JSON, for existing tools
    return Sides(base, current, same_job=True)


def _side_by_side(options: GateOptions, base: Path, current: Path) -> None:
    """The suite's cases, the ref's tree and this one alternating block by block."""
    import torch

    from bench.core.spec import expand, load_spec
    from bench.execution.interleave import side_by_side

    spec = load_spec(spec_file=str(options.spec)) if options.spec is not None else load_spec(options.preset)
    cases = expand(spec, torch.cuda.is_available(), torch.get_num_threads())
    with worktree(options.against or "") as tree:
        side_by_side(
            {"base": tree, "current": REPO_ROOT},
            cases,
            {"base": base, "current": current},
            blocks=options.blocks,
            block_s=options.block_s,
            wrap={"current": options.wrap_current},
            rounds=options.rounds,
        )
