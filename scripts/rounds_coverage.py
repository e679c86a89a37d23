"""Coverage of the rounds' interval on simulated rounds (the figures in docs/statistics.md).

Each simulated case has round effects (between processes, log-normal with sd
``between``) and heavy-tailed samples within a round. For each way of making an
interval it prints how often the interval covers the true centre, and how often a
rerun's estimate lands within the two runs' combined interval (the check `bench
validate --calibration` makes on real runs).

    python scripts/rounds_coverage.py           # every row, printed (about 4 minutes)
    python scripts/rounds_coverage.py --write   # the table in docs/statistics.md, between its markers
    python scripts/rounds_coverage.py --check   # exit 1 if that table is not what this script computes
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from bench.core.stats import median_ci, rounds_interval


def simulate_run(rng: np.random.Generator, rounds: int, between: float, per_round: int) -> list[np.ndarray]:
    """One run's samples, round by round, of a case whose true centre is 1 ms."""
    out = []
    for _ in range(rounds):
        level = np.exp(rng.normal(0.0, between))
        # within a round: ±3% jitter plus rare slow outliers (a descheduled thread)
        x = level * np.exp(rng.normal(0.0, 0.03, per_round))
        slow = rng.random(per_round) < 0.02
        x[slow] *= 1 + rng.exponential(2.0, slow.sum())
        out.append(x)
    return out


def hierarchical_bootstrap(rounds: list[np.ndarray], rng: np.random.Generator, n: int = 400) -> tuple[float, float]:
    stats = []
    for _ in range(n):
        picked = rng.integers(0, len(rounds), len(rounds))
        meds = [np.median(rng.choice(rounds[i], rounds[i].size)) for i in picked]
        stats.append(np.exp(np.mean(np.log(meds))))
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def intervals(run: list[np.ndarray], rng: np.random.Generator) -> dict[str, tuple[float, float, float]]:
    medians = [np.median(r) for r in run]
    pooled = np.concatenate(run)
    out = {"one process (order statistics)": (float(np.median(run[0])), *median_ci(run[0]))}
    if len(run) >= 2:
        out["rounds: t-interval (rnnbench)"] = rounds_interval(medians)
        centre = float(np.exp(np.mean(np.log(medians))))
        out["rounds: hierarchical bootstrap"] = (centre, *hierarchical_bootstrap(run, rng))
        out["rounds pooled (order statistics)"] = (float(np.median(pooled)), *median_ci(pooled))
    return out


def coverage(rounds: int, between: float, sims: int = 400, per_round: int = 30, seed: int = 0) -> dict[str, tuple]:
    rng = np.random.default_rng(seed)
    hits: dict[str, list[int]] = {}
    for _ in range(sims):
        a = intervals(simulate_run(rng, rounds, between, per_round), rng)
        b = intervals(simulate_run(rng, rounds, between, per_round), rng)
        for name, (centre, low, high) in a.items():
            c2, l2, h2 = b[name]
            h1, h2_ = np.log(high / low) / 2, np.log(h2 / l2) / 2
            rerun = abs(np.log(c2 / centre)) < np.hypot(h1, h2_)
            hits.setdefault(name, []).append((low <= 1.0 <= high, rerun))
    return {k: tuple(np.mean(v, axis=0)) for k, v in hits.items()}


DOC = Path(__file__).resolve().parent.parent / "docs" / "statistics.md"
START, END = "<!-- coverage:start (scripts/rounds_coverage.py) -->", "<!-- coverage:end -->"
OURS = "rounds: t-interval (rnnbench)"
# The rows docs/statistics.md shows: (rounds, between-round sd, the intervals, in order).
DOC_ROWS = (
    (3, 0.05, ("one process (order statistics)", "rounds pooled (order statistics)",
               "rounds: hierarchical bootstrap", OURS)),
    (5, 0.05, ("rounds: hierarchical bootstrap", OURS)),
    (10, 0.05, ("rounds: hierarchical bootstrap", OURS)),
    (3, 0.0, (OURS,)),
)  # fmt: skip


def doc_table() -> str:
    lines = [
        "| rounds | between-round sd | interval | covers the true centre | rerun inside combined CI |",
        "|---|---|---|---|---|",
    ]
    for rounds, between, names in DOC_ROWS:
        found = coverage(rounds, between)
        for name in names:
            centre, rerun = found[name]
            b = "**" if name == OURS else ""
            lines.append(f"| {rounds} | {between:.0%} | {b}{name}{b} | {b}{centre:.0%}{b} | {b}{rerun:.0%}{b} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if "--write" in argv or "--check" in argv:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from marked_block import rewrite

        how = "python scripts/rounds_coverage.py --write"
        return rewrite(DOC, START, END, doc_table(), "--check" in argv, how)
    print(f"{'rounds':>6} {'between sd':>10}  {'interval':<36} {'covers centre':>13} {'rerun inside':>12}")
    for rounds in (3, 5, 10):
        for between in (0.0, 0.05):
            for name, (centre, rerun) in coverage(rounds, between).items():
                print(f"{rounds:>6} {between:>10.0%}  {name:<36} {centre:>13.0%} {rerun:>12.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
