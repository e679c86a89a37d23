"""``bench ci``: the regression gate behind ``nox -s bench_ci``. Run the
pytest-benchmark CI suite and compare, against a committed baseline or against
a git ref.

``--against REF`` checks REF out in a temporary worktree and measures both
trees in the same job, case by case in alternating short blocks (see
``bench.interleave``), as asv's ``continuous`` does: a shared CI machine drifts
by tens of percent over minutes, and interleaving makes that drift hit both
sides alike. The blocks run in rounds of fresh worker pairs (``--rounds``, 5), and
``bench compare`` tests the per-round medians of the block-pair ratios. The
pytest-benchmark suite also runs once on the current tree, for its JSON.

``--metric instructions`` gates on instruction counts instead (``bench run
--metric instructions`` of the ``ci-instructions`` preset, under callgrind):
counts do not drift with the machine's load, so no interleaving is needed;
with ``--against REF`` the two sides are counted in turn, each from the same
path (``counting_tree``), so that nothing but the code differs between them.

Usage: ``python -m bench ci [--metric instructions] [--against REF | --baseline CSV] [--out DIR]``
(``python -m bench.ci`` is the same command).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import filelock

from bench.commands.compare import compare
from bench.compare import CompareConfig, parse_threshold
from bench.errors import UsageError
from bench.interleave import side_by_side
from bench.results import run_paths
from bench.spec import expand, load_spec
from bench.stats import MIN_CI_SAMPLES

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BASELINES = {
    "time": REPO / "results" / "baselines" / "ci-cpu.csv",
    "instructions": REPO / "results" / "baselines" / "ci-instructions.csv",
}
DEFAULT_PRESETS = {"time": "ci", "instructions": "ci-instructions"}
DEFAULT_OUT = REPO / "reports" / "ci"


def suite_command(out_csv: Path, *selection: str) -> list[str]:
    """The pytest-benchmark CI suite writing ``out_csv`` and its JSON beside it.

    ``selection`` picks the cases: ``--suite-preset=NAME`` or ``--suite-spec=FILE``.
    """
    return [
        sys.executable,
        "-m",
        "pytest",
        "benchmarks",
        "-q",
        "-p",
        "no:cacheprovider",
        *selection,
        f"--suite-csv={out_csv}",
        f"--benchmark-json={out_csv.with_suffix('')}.benchmark.json",
        "--benchmark-save-data",
    ]


def count_command(out_csv: Path, args: argparse.Namespace, jobs: int) -> list[str]:
    """``bench run --metric instructions`` of the gate's cases into ``out_csv``."""
    spec = spec_file(args)
    which = ["--spec", str(spec)] if spec else ["--preset", args.preset]
    run = [sys.executable, "-m", "bench", "run", "--metric", "instructions"]
    return [*run, *which, "--out", str(out_csv), "--jobs", str(jobs)]


COUNT_TREE = Path(tempfile.gettempdir()) / "rnnbench-count-tree"


@contextlib.contextmanager
def counting_tree(ref: str | None) -> Iterator[Path]:
    """The code to count, always at one path: ``ref`` checked out, or (None) a snapshot of
    this working tree, uncommitted and untracked files included.

    Python's hashes of path strings (the tree's place on sys.path) shape dict layouts, so
    the same code counted from two paths differs by up to 0.4% here; from one path, by
    nothing. A lock keeps two gates on one machine from sharing the path.
    """
    with filelock.FileLock(str(COUNT_TREE) + ".lock"):
        shutil.rmtree(COUNT_TREE, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=REPO, capture_output=True)
        try:
            # Both sides as git checkouts: the same files in the same folders, so that
            # even the import system's directory listings match.
            checkout(ref or snapshot(), COUNT_TREE)
            yield COUNT_TREE
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(COUNT_TREE)], cwd=REPO, capture_output=True)
            shutil.rmtree(COUNT_TREE, ignore_errors=True)


def snapshot() -> str:
    """A commit of this working tree as it is (changes and untracked files, not ignored ones),
    made through a scratch index: the user's index, branch and stash are left alone."""
    with tempfile.TemporaryDirectory(prefix="rnnbench-index-") as tmp:
        env = os.environ | {"GIT_INDEX_FILE": str(Path(tmp) / "index")}

        def git(*argv: str) -> str:
            done = subprocess.run(["git", *argv], cwd=REPO, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise UsageError(f"cannot snapshot the working tree for counting ({done.stderr.strip()})")
            return done.stdout.strip()

        git("add", "-A")
        tree = git("write-tree")
        return git("commit-tree", tree, "-p", "HEAD", "-m", "rnnbench: working tree, for counting")


def count_tree(side: str, ref: str | None, out: Path, args: argparse.Namespace) -> None:
    """Count the gate's cases with the code of ``ref`` (None: this working tree) into ``out``."""
    with counting_tree(ref) as tree:
        env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, (str(tree), os.environ.get("PYTHONPATH"))))}
        print(f"[bench_ci] {side}: counting instructions ({ref or 'this working tree'})", file=sys.stderr, flush=True)
        code = subprocess.run(count_command(out, args, os.cpu_count() or 1), cwd=tree, env=env).returncode
    if code == 2:  # a usage error, said in one line above (no valgrind, a tree without --metric)
        raise SystemExit(2)
    if code != 0:
        raise SystemExit(f"counting instructions failed for the {side} side (exit {code})")


def spec_file(args: argparse.Namespace) -> Path | None:
    """``--spec`` as an absolute path (both sides run in other trees), checked; None for a preset."""
    if args.spec is None:
        return None
    if not args.spec.is_file():
        raise UsageError(f"--spec {args.spec}: no such file")
    return args.spec.resolve()


def selection(args: argparse.Namespace) -> str:
    """The suite's case selection: the preset, or the spec file."""
    spec = spec_file(args)
    return f"--suite-spec={spec}" if spec else f"--suite-preset={args.preset}"


def run_suite(tree: Path, out_csv: Path, which: str) -> None:
    """One pass of the pytest-benchmark suite in ``tree``, with ``tree``'s own code."""
    cmd = suite_command(out_csv, which)
    # The tree first (its own bench and models), then what --model-path added.
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, (str(tree), os.environ.get("PYTHONPATH"))))}
    print(f"[bench_ci] {tree.name}: {out_csv.name}", file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=tree, env=env)
    if done.returncode != 0:
        raise SystemExit(f"the CI suite failed in {tree} (exit {done.returncode})")


def checkout(ref: str, path: Path) -> None:
    done = subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), ref], cwd=REPO, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise UsageError(f"--against {ref}: cannot check it out ({done.stderr.strip().splitlines()[-1]})")


def worktree(ref: str, where: Path) -> Path:
    path = where / "baseline-tree"
    checkout(ref, path)
    return path


def gate(baseline: Path, current: Path, out: Path, threshold: float | None, allow_env_change: bool) -> int:
    """``bench compare --fail-on-regression``, its summary also in the GitHub job summary."""
    code = compare(baseline, current, CompareConfig(threshold), out, True, allow_env_change)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary and (out / "summary.md").exists():  # compare.md without its plot
        with open(summary, "a", encoding="utf-8") as f:
            f.write((out / "summary.md").read_text(encoding="utf-8") + "\n")
    return code


def cmd_ci(args: argparse.Namespace) -> int:
    threshold = parse_threshold(args.threshold) if args.threshold is not None else None
    args.preset = args.preset or DEFAULT_PRESETS[args.metric]
    args.baseline = args.baseline or DEFAULT_BASELINES[args.metric]
    args.out = args.out or DEFAULT_OUT
    if args.metric == "instructions":
        return ci_instructions(args, threshold)
    if args.blocks < MIN_CI_SAMPLES or not args.block_s > 0:
        raise UsageError(f"--blocks {args.blocks} / --block-s {args.block_s}: need >= {MIN_CI_SAMPLES} blocks of > 0 s")
    if not 1 <= args.rounds <= args.blocks:
        raise UsageError(f"--rounds {args.rounds}: need 1 to --blocks ({args.blocks}) rounds")
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    if args.refresh_baseline:
        fresh = args.out / "baseline.csv"
        run_suite(REPO, fresh, selection(args))
        args.baseline.parent.mkdir(parents=True, exist_ok=True)
        # Rename, not copy: readers of the baseline never see half a file.
        os.replace(run_paths(fresh)[0], run_paths(args.baseline)[0])
        os.replace(fresh, args.baseline)
        print(f"baseline: {args.baseline}")
        return 0
    if not args.against:
        if not args.baseline.is_file():
            raise UsageError(f"--baseline {args.baseline}: no such file (refresh it: see the README)")
        current = args.out / "current.csv"
        run_suite(REPO, current, selection(args))
        return gate(args.baseline, current, args.out / "compare", threshold, False)
    import torch

    spec = load_spec(spec_file=str(args.spec)) if args.spec is not None else load_spec(args.preset)
    cases = expand(spec, torch.cuda.is_available(), torch.get_num_threads())
    base, current = args.out / "base.csv", args.out / "current.csv"
    with tempfile.TemporaryDirectory(prefix="rnnbench-ci-") as tmp:
        tree = worktree(args.against, Path(tmp))
        try:
            side_by_side(
                {"base": tree, "current": REPO},
                cases,
                {"base": base, "current": current},
                blocks=args.blocks,
                block_s=args.block_s,
                wrap={"current": args.wrap_current},
                rounds=args.rounds,
            )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True)
    run_suite(REPO, args.out / "suite.csv", selection(args))  # pytest-benchmark JSON for existing tools
    # Same job, same machine: only the code differs, so the environment check is moot.
    return gate(base, current, args.out / "compare", threshold, True)


def ci_instructions(args: argparse.Namespace, threshold: float | None) -> int:
    """The gate on instruction counts: refresh the baseline, or count and compare.

    Each side is counted in turn at the same path (``counting_tree``), with every core.
    """
    from bench.counting import valgrind

    valgrind()  # no valgrind: one line on how to install it, before anything runs
    args.out = args.out.resolve()
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    if args.refresh_baseline:
        fresh = args.out / "baseline.csv"
        count_tree("current", None, fresh, args)
        args.baseline.parent.mkdir(parents=True, exist_ok=True)
        os.replace(run_paths(fresh)[0], run_paths(args.baseline)[0])
        os.replace(fresh, args.baseline)
        print(f"baseline: {args.baseline}")
        return 0
    current = args.out / "current.csv"
    if not args.against:
        if not args.baseline.is_file():
            raise UsageError(f"--baseline {args.baseline}: no such file (refresh it: see the README)")
        count_tree("current", None, current, args)
        return gate(args.baseline, current, args.out / "compare", threshold, False)
    base = args.out / "base.csv"
    count_tree("base", args.against, base, args)
    count_tree("current", None, current, args)
    # Same job, same machine, same torch, same path: only the code differs.
    return gate(base, current, args.out / "compare", threshold, True)
