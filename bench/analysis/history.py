"""Performance history: trends across runs and the change points in them.

Runs are ordered by time and grouped by case and environment (device, CPU or
GPU model, torch/CUDA version): a torch upgrade or a new machine starts a new
line instead of showing up as a step. Per line, the medians are fitted by a
piecewise-constant model in log space with ruptures' PELT (L2 cost, at least
two runs per segment, so a step needs a sustained change). The points are put
on a common noise scale first: each run's own 95% CI of the median, floored by
the run-to-run scatter of the line and the typical scatter of its machine (MADs
of successive differences), since a run's CI knows nothing of the drift between
runs. A change point counts as a
step only beyond the threshold.

Instruction runs (``--metric instructions``) make lines of their own, keyed also by
the CPU kernel level and the Python version that counts depend on. Their counts
repeat to the instruction between runs, so their noise is the floor and any
change beyond the count threshold (1%) is a step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from bench.core.errors import UsageError
from bench.records.files import results_files
from bench.records.reading import read_results

ENV_KEY = ("device", "cpu_model", "gpu_name", "torch_version", "cuda_version")
COUNT_ENV_KEY = ("cpu_capability", "python_version")  # what else instruction counts depend on
STEP_COLUMNS = (
    "case_id",
    "machine",
    "metric",
    "commit",
    "timestamp",
    "before_ms",  # time lines
    "after_ms",
    "before_instructions",  # instruction lines
    "after_instructions",
    "ratio",
    "direction",
    "run_id",
    "same_commit",
)
MIN_SEGMENT = 2  # runs on each side of a step
PENALTY = 3.0  # times log(n), in units of the line's noise; BIC-like, stricter
MIN_SCATTER_RUNS = 3  # fewer runs than this give no run-to-run scatter
NOISE_FLOOR = 1e-4  # in log units (0.01%): no line is quieter than this
END_RUNS = 2  # drift compares the median of this many runs at each end: one outlier cannot make drift
Z_95 = float(sps.norm.ppf(0.975))  # a 95% CI's half-width in standard errors


@dataclass(frozen=True)
class HistoryConfig:
    threshold: float = 0.05  # a step in a time line
    count_threshold: float = 0.01  # a step in an instruction line
    recent_runs: int = 3  # "newest runs": a step whose first run after is among these


def collect(paths: Sequence[Path]) -> pd.DataFrame:
    """Every ok row of every run CSV under ``paths`` (files or folders), in run order."""
    files = results_files(paths, "run CSVs", recursive=True)
    df = pd.concat([read_results(f) for f in files], ignore_index=True)
    if df["run_id"].nunique() < 2:
        raise UsageError(f"a history needs at least two runs; found {df['run_id'].nunique()} in {len(files)} file(s)")
    df = df[df["status"] == "ok"].copy()
    df["machine"] = df[list(ENV_KEY)].astype(str).agg(" | ".join, axis=1)
    counted = df["metric"] == "instructions"
    df.loc[counted, "machine"] = (
        df.loc[counted, ["machine", *COUNT_ENV_KEY]].astype(str).agg(" | ".join, axis=1) + " | instructions"
    )
    # One value per run and its 95% CI, whatever the metric: a count's CI is the count itself.
    df["value"] = df["median_ms"].where(~counted, df["instructions"])
    df["value_low"] = df["ci_low_ms"].where(~counted, df["instructions"])
    df["value_high"] = df["ci_high_ms"].where(~counted, df["instructions"])
    started = df.groupby("run_id")["timestamp"].min().sort_values()
    df["run_order"] = df["run_id"].map({run: i for i, run in enumerate(started.index)})
    df["commit"] = df["git_commit"].str.slice(0, 9).replace("", "?")
    return df.sort_values(["machine", "case_id", "run_order"])


def run_to_run_scatter(y: np.ndarray) -> float:
    """Robust standard deviation of one run against the next (log units), from the MAD of differences."""
    if y.size < MIN_SCATTER_RUNS:
        return 0.0
    # The difference of two runs has sqrt(2) times one run's scatter.
    return float(sps.median_abs_deviation(np.diff(y), scale="normal") / np.sqrt(2))


def noise_scale(y: np.ndarray, half_ci: np.ndarray, machine_floor: float) -> float:
    """One noise level for a line (log units): the larger of its runs' CIs, its own
    run-to-run scatter and the machine's typical scatter (a few runs alone cannot
    estimate their scatter; drift on a machine hits all its cases)."""
    se = float(np.median(half_ci)) / Z_95
    return max(se, run_to_run_scatter(y), machine_floor, NOISE_FLOOR)


def change_points(y: np.ndarray, sigma: float) -> list[int]:
    """Indices where a new level starts (PELT on the noise-scaled series)."""
    try:
        import ruptures
    except ImportError:
        raise UsageError("bench history needs ruptures: pip install ruptures (or rnnbench[history])") from None

    if y.size < 2 * MIN_SEGMENT:
        return []
    algo = ruptures.Pelt(model="l2", min_size=MIN_SEGMENT, jump=1).fit((y / sigma).reshape(-1, 1))
    return [i for i in algo.predict(pen=PENALTY * np.log(y.size)) if i < y.size]


def log_medians(line: pd.DataFrame) -> np.ndarray:
    return np.log(line.sort_values("run_order")["value"].to_numpy())


def steps_of_line(line: pd.DataFrame, config: HistoryConfig, machine_floor: float) -> list[dict]:
    line = line.sort_values("run_order")
    metric = line["metric"].iloc[0]
    threshold = config.count_threshold if metric == "instructions" else config.threshold
    unit = "instructions" if metric == "instructions" else "ms"
    y = log_medians(line)
    half = (np.log(line["value_high"]) - np.log(line["value_low"])).to_numpy() / 2
    bounds = [0, *change_points(y, noise_scale(y, half, machine_floor)), y.size]
    found = []
    for left, cut, right in zip(bounds, bounds[1:], bounds[2:], strict=False):
        before = float(np.exp(np.median(y[left:cut])))
        after = float(np.exp(np.median(y[cut:right])))
        ratio = after / before
        if abs(ratio - 1) <= threshold:
            continue
        row = line.iloc[cut]
        found.append(
            {
                "case_id": row["case_id"],
                "machine": row["machine"],
                "metric": metric,
                "commit": row["commit"],
                "timestamp": row["timestamp"],
                f"before_{unit}": before,
                f"after_{unit}": after,
                "ratio": ratio,
                "direction": "regression" if ratio > 1 else "improvement",
                "run_id": row["run_id"],
                # The run before the step measured the same code: the machine changed, not the code.
                "same_commit": bool(row["git_commit"]) and line.iloc[cut - 1]["git_commit"] == row["git_commit"],
                "run_order": int(row["run_order"]),
            }
        )
    return found


def analyse(df: pd.DataFrame, config: HistoryConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(steps, drift): detected steps newest first, and each line's first-to-last change."""
    steps, drift = [], []
    lines = df.groupby(["machine", "case_id"], sort=False)
    scatter = pd.Series({key: run_to_run_scatter(log_medians(line)) for key, line in lines})
    floors = scatter.groupby(level=0).median()
    for (machine, _), line in lines:
        steps += steps_of_line(line, config, float(floors[machine]))
        if len(line) >= 2:
            values = line.sort_values("run_order")["value"].to_numpy()
            k = min(END_RUNS, len(values) // 2)
            drift.append(
                {
                    "case_id": line["case_id"].iloc[0],
                    "machine": line["machine"].iloc[0],
                    "metric": line["metric"].iloc[0],
                    "runs": len(values),
                    "first": float(np.median(values[:k])),  # ms, or instructions
                    "last": float(np.median(values[-k:])),
                }
            )
    steps_df = pd.DataFrame(steps, columns=[*STEP_COLUMNS, "run_order"])
    drift_df = pd.DataFrame(drift, columns=["case_id", "machine", "metric", "runs", "first", "last"])
    drift_df["ratio"] = drift_df["last"] / drift_df["first"]
    drift_df = drift_df.reindex((drift_df["ratio"] - 1).abs().sort_values(ascending=False).index)
    return steps_df.sort_values("run_order", ascending=False), drift_df


def recent_regressions(df: pd.DataFrame, steps: pd.DataFrame, config: HistoryConfig) -> pd.DataFrame:
    """Regression steps among the newest ``config.recent_runs`` runs; a step between two runs of
    the same commit is the machine's doing and gates nothing."""
    newest = df["run_order"].max()
    return steps[
        (steps["direction"] == "regression")
        & (steps["run_order"] > newest - config.recent_runs)
        & ~steps["same_commit"]
    ]
