"""The regression gate behind ``nox -s bench_ci``: run the pytest-benchmark CI
suite and compare, against a committed baseline or against a git ref.

``--against REF`` checks REF out in a temporary worktree and measures both
trees in the same job, in alternating rounds (A B B A ...), as asv's
``continuous`` does: a shared CI machine drifts by tens of percent over minutes,
and interleaving makes that drift hit both sides alike. Each side's rounds are
pooled (all raw samples) into one suite CSV before ``bench compare`` judges.

Usage: ``python -m bench.ci [--against REF | --baseline CSV] [--rounds N] [--out DIR]``
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.errors import UsageError
from bench.results import COLUMNS, SAMPLE_COLUMNS, AppendWriter, format_value, read_rows, run_paths
from bench.stats import summarize

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BASELINE = REPO / "results" / "baselines" / "ci-cpu.csv"
# Columns that scale with 1/median when rounds are pooled (same work per step).
RATE_COLUMNS = ("tokens_per_s", "gflop_per_s", "efficiency")


def run_suite(tree: Path, out_csv: Path, preset: str) -> None:
    """One pass of the pytest-benchmark suite in ``tree``, with ``tree``'s own code."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "benchmarks",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--suite-preset={preset}",
        f"--suite-csv={out_csv}",
        f"--benchmark-json={out_csv.with_suffix('.json')}",
        "--benchmark-save-data",
    ]
    env = os.environ | {"PYTHONPATH": str(tree)}
    print(f"[bench_ci] {tree.name}: {out_csv.name}", file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=tree, env=env)
    if done.returncode != 0:
        raise SystemExit(f"the CI suite failed in {tree} (exit {done.returncode})")


def pool(parts: list[Path], out: Path) -> Path:
    """Merge rounds of the same suite: all samples per case, statistics recomputed."""
    rows: dict[str, dict[str, str]] = {}
    samples: dict[str, dict[str, list[float]]] = {}
    for part in parts:
        for row in read_rows(part):
            if row["case_id"] not in rows or row["status"] != "ok":
                rows[row["case_id"]] = row  # a failure in any round fails the case
        with run_paths(part)[0].open(newline="", encoding="utf-8") as f:
            for s in csv.DictReader(f):
                samples.setdefault(s["case_id"], {}).setdefault(s["phase"], []).append(float(s["ms"]))
    writer, sample_writer = AppendWriter(out, COLUMNS), AppendWriter(run_paths(out)[0], SAMPLE_COLUMNS)
    for case_id, row in rows.items():
        phases = samples.get(case_id, {})
        if row["status"] == "ok" and phases:
            totals = [sum(v) for v in zip(*phases.values(), strict=True)]
            s = summarize(totals)
            scale = float(row["median_ms"]) / s.median_ms
            row = row | {k: format_value(v) for k, v in vars(s).items()}
            for col in RATE_COLUMNS:
                if row.get(col):
                    row[col] = format_value(float(row[col]) * scale)
            for phase in ("fwd", "bwd"):
                if row.get(f"{phase}_median_ms") and phase in phases:
                    row[f"{phase}_median_ms"] = format_value(summarize(phases[phase]).median_ms)
            row["note"] = f"pooled from {len(parts)} interleaved rounds"
        writer.write(row)
        sample_writer.write_many(
            {"case_id": case_id, "phase": p, "index": i, "ms": ms}
            for p, values in phases.items()
            for i, ms in enumerate(values)
        )
    writer.close()
    sample_writer.close()
    return out


def worktree(ref: str, where: Path) -> Path:
    path = where / "baseline-tree"
    done = subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), ref], cwd=REPO, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise UsageError(f"--against {ref}: cannot check it out ({done.stderr.strip().splitlines()[-1]})")
    return path


def compare(baseline: Path, current: Path, out: Path, threshold: str, allow_env_change: bool) -> int:
    from bench.cli import main as bench_main

    args = ["compare", str(baseline), str(current), "--threshold", threshold, "--fail-on-regression", "--out", str(out)]
    code = bench_main([*args, "--allow-env-change"] if allow_env_change else args)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary and (out / "compare.md").exists():
        with open(summary, "a", encoding="utf-8") as f:
            f.write((out / "compare.md").read_text(encoding="utf-8") + "\n")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_ci", description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", help="git ref to measure side by side (e.g. main, origin/main, HEAD~1)")
    parser.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE, help="committed baseline CSV")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per side with --against (3)")
    parser.add_argument("--preset", default="ci")
    parser.add_argument("--threshold", default="5%")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "ci")
    args = parser.parse_args(argv)
    try:
        if args.rounds < 1:
            raise UsageError(f"--rounds: {args.rounds} must be at least 1")
        if args.out.exists():
            shutil.rmtree(args.out)
        args.out.mkdir(parents=True)
        if not args.against:
            if not args.baseline.is_file():
                raise UsageError(f"--baseline {args.baseline}: no such file (refresh it: see the README)")
            current = args.out / "current.csv"
            run_suite(REPO, current, args.preset)
            return compare(args.baseline, current, args.out / "compare", args.threshold, False)
        with tempfile.TemporaryDirectory(prefix="rnnbench-ci-") as tmp:
            tree = worktree(args.against, Path(tmp))
            try:
                parts: dict[str, list[Path]] = {"base": [], "current": []}
                for i in range(args.rounds):
                    order = ("base", "current") if i % 2 == 0 else ("current", "base")
                    for side in order:
                        part = args.out / f"{side}-round{i}.csv"
                        run_suite(tree if side == "base" else REPO, part, args.preset)
                        parts[side].append(part)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True)
        base = pool(parts["base"], args.out / "base.csv")
        current = pool(parts["current"], args.out / "current.csv")
        # Same job, same machine: only the code differs, so the environment check is moot.
        return compare(base, current, args.out / "compare", args.threshold, True)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
