"""Named mutants: each breaks one promise of the docs; the named test files must catch it.

    python scripts/mutants.py            # every mutant, each alone on a scratch copy
    python scripts/mutants.py stats      # only mutants whose name contains "stats"

A mutant is one exact text replacement in one file. First the named test files run on an
unmutated scratch copy and must pass. Then each mutant is applied alone to a scratch copy of
the checkout (``git ls-files``, so uncommitted edits count), the named test files run there
with ``-x``, and the mutant is *killed* if a test fails (pytest exit 1; any other exit is an
error, not a kill). The script exits 1 if any mutant survives, errs, or no longer matches the
code (update it with the code).
See docs/contributing.md, "Tests that bite".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str | tuple[str, ...]  # one text, or several, each replaced by its ``new``
    new: str | tuple[str, ...]
    tests: tuple[str, ...]

    def edits(self) -> list[tuple[str, str]]:
        olds, news = (self.old,) if isinstance(self.old, str) else self.old, self.new
        return list(zip(olds, (news,) if isinstance(news, str) else news, strict=True))


MUTANTS = (
    Mutant(
        "compare: never use the paired blocks",
        "bench/analysis/compare.py",
        "    pairs = paired_blocks(base, cur)\n",
        "    pairs = None\n",
        ("tests/test_compare.py",),
    ),
    Mutant(
        "resume: keep a torn last line of the samples file",
        "bench/execution/runner.py",
        "    repair_torn_tail(samples)\n",
        "    pass\n",
        ("tests/test_run.py",),
    ),
    Mutant(
        "noise: contended from half a core, not a tenth",
        "bench/core/noise.py",
        "CONTENDED_CORES = 0.10",
        "CONTENDED_CORES = 0.50",
        ("tests/test_noise.py",),
    ),
    Mutant(
        "side by side: never reverse the order",
        "bench/measure/variants.py",
        "for m in live if turns % 2 == 0 else live[::-1]:",
        "for m in live:",
        ("tests/test_impl.py",),
    ),
    Mutant(
        "validate: agreement limit 500%",
        "bench/measure/validation.py",
        "AGREEMENT = 0.05",
        "AGREEMENT = 5.0",
        ("tests/test_validate.py",),
    ),
    Mutant(
        "compare: ignore the threshold",
        "bench/analysis/compare.py",
        '    threshold = config.threshold_for("time")\n',
        "    threshold = 0.0\n",
        ("tests/test_compare.py",),
    ),
    Mutant(
        "stats: the median CI from the wrong quantile",
        "bench/core/stats.py",
        "int(sps.binom.ppf((1 - confidence) / 2, n, 0.5))",
        "int(sps.binom.ppf((1 - confidence), n, 0.5))",
        ("tests/test_stats_timer.py",),
    ),
    Mutant(
        "report: pool every stratum",
        "bench/report/answers.py",
        "AGREE = 1.10",
        "AGREE = 100.0",
        ("tests/test_report_answers.py",),
    ),
    Mutant(
        "report: wrong outputs may be the base of a finding",
        "bench/report/answers.py",
        "        p = p[~wrong]\n",
        "        p = p\n",
        ("tests/test_report_answers.py",),
    ),
    Mutant(
        "report: a slice ignores where its axis varies",
        "bench/report/slices.py",
        "        return (coverage, preferred, len(g), commonness)",
        "        return (0, preferred, len(g), commonness)",
        ("tests/test_report_answers.py",),
    ),
    Mutant(
        "runner: roofs measured lazily, beside a worker",
        "bench/execution/runner.py",
        "    for case in todo:\n        roofs_or_none(peaks, case)\n",
        "",
        ("tests/test_rounds_sweep.py",),
    ),
    Mutant(
        "roofline: the memory and compute bounds swapped",
        "bench/core/roofline.py",
        'bound = "memory" if memory_roof < roofs.compute_gflop_per_s else "compute"',
        'bound = "compute" if memory_roof < roofs.compute_gflop_per_s else "memory"',
        ("tests/test_roofline.py",),
    ),
    Mutant(
        "roofline: training traffic counted as one pass",
        "bench/core/roofline.py",
        "TRAINING_PASSES = 3",
        "TRAINING_PASSES = 1",
        ("tests/test_roofline.py",),
    ),
    Mutant(
        "ci: a failed tool install passes silently",
        ".ci/run",
        ("        exit 1\n    fi\n    for tool", "            exit 1\n        fi\n    done"),
        ("        true\n    fi\n    for tool", "            true\n        fi\n    done"),
        ("tests/test_ci_script.py",),
    ),
)


def scratch_copy() -> Path:
    """The checkout's tracked files (as they are on disk) in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="rnnbench-mutant-"))
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in files.splitlines():
        src = REPO / name
        if src.is_file():
            dst = folder / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return folder


def run_one(m: Mutant) -> tuple[str, float, str]:
    """(killed / SURVIVED / STALE, seconds, the first failing test or why)."""
    folder = scratch_copy()
    try:
        target = folder / m.path
        text = target.read_text(encoding="utf-8")
        for old, new in m.edits():
            if text.count(old) != 1:
                return "STALE", 0.0, f"{m.path}: the text to replace is found {text.count(old)} times, not once"
            text = text.replace(old, new)
        target.write_text(text, encoding="utf-8")
        env = os.environ | {"PYTHONPATH": str(folder)}  # the scratch copy's bench, not the checkout's
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
        )
        took = time.perf_counter() - start
        failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED ")]
        if done.returncode == 0:
            return "SURVIVED", took, "every test passed"
        if done.returncode != 1 or not failed:  # 2: collection error, 4: no such test file, ...
            return "ERROR", took, f"pytest exit {done.returncode}, no failing test: {done.stdout.strip()[-200:]}"
        return "killed", took, failed[0][len("FAILED ") :].split(" - ")[0]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTANTS if not argv or any(a in m.name for a in argv)]
    if not chosen:
        print(f"no mutant named like {' '.join(argv)!r}", file=sys.stderr)
        return 2
    # The named tests must pass on the code as it is: else a "kill" could be the machine's doing.
    folder = scratch_copy()
    try:
        files = sorted({t for m in chosen for t in m.tests})
        env = os.environ | {"PYTHONPATH": str(folder)}
        base = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *files],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if base.returncode != 0:
        print(
            f"the named tests fail without any mutant (pytest exit {base.returncode}): fix that first", file=sys.stderr
        )
        return 2
    bad = 0
    start = time.perf_counter()
    for m in chosen:
        verdict, took, why = run_one(m)
        bad += verdict != "killed"
        print(f"{verdict:8} {took:6.1f} s  {m.name}  [{', '.join(m.tests)}]  {why}", flush=True)
    print(f"{len(chosen) - bad} of {len(chosen)} killed in {time.perf_counter() - start:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
