"""Regression verdicts between two runs, decided on their samples.

A case is a *regression* only when its median slowed down by more than the
threshold **and** the slowdown is statistically significant at ``alpha``: for
runs measured in rounds, Welch's t-test on the log round medians; for runs in
paired blocks against another tree, a one-sample t-test on the per-round medians
of the block-pair log ratios (or, in one round, the Wilcoxon signed-rank test on
the block pairs); for runs of one round, a two-sided Mann–Whitney U test on the
raw per-step samples (which sees one process only). Both guards matter on shared
CI machines: the threshold ignores real but tiny shifts, the test ignores big
ratios that noise alone explains.

Instruction runs (``--metric instructions``) need no test: the same code counts
the same instructions to within a few parts per million, so the ratio of the
counts is the verdict, against a threshold of 1%. Counts also depend on the
torch build, the CPU's instruction set (torch picks AVX2 or AVX-512 kernels) and
the Python version, so those must match too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from bench.core.errors import UsageError
from bench.core.stats import MIN_CI_SAMPLES, PERCENTILES, min_calls, ratio_from_log_ratios, ratio_from_rounds
from bench.records.reading import read_results, read_samples

# Differences in these mean the two runs measured different things.
ENV_FIELDS = ("torch_version", "cuda_version", "cudnn_version", "cpu_model", "gpu_name")
COUNT_ENV_FIELDS = ("cpu_capability", "python_version")  # instruction counts depend on these too
BOOTSTRAP_RESAMPLES = 2000
VERDICTS = ("regression", "improvement", "unchanged", "missing", "failed", "unsupported")
DEFAULT_THRESHOLDS = {"time": 0.05, "instructions": 0.01}
RESULT_COLUMNS = (
    "case_id",
    "metric",
    "baseline_ms",
    "current_ms",
    "baseline_instructions",
    "current_instructions",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "p_value",
    "verdict",
    "why",
    "statistic",  # what was compared: median, a percentile of a stream's calls (p99), or instructions
)


@dataclass(frozen=True)
class CompareConfig:
    threshold: float | None = None  # relative change that counts (None: 5% for time, 1% for counts)
    alpha: float = 0.01  # Mann–Whitney significance level
    seed: int = 0  # bootstrap resampling seed, for reproducible CIs
    percentile: str = "p99"  # what stream rows are judged on (bench.core.stats.PERCENTILES)

    def threshold_for(self, metric: str) -> float:
        return self.threshold if self.threshold is not None else DEFAULT_THRESHOLDS[metric]


def parse_percentile(text: str) -> str:
    """``p99``, ``99``, ``p99.9`` -> the PERCENTILES key; anything else is a UsageError."""
    key = "p" + text.strip().lower().removeprefix("p").replace(".", "_")
    if key not in PERCENTILES:
        names = ", ".join(k.replace("_", ".") for k in PERCENTILES)
        raise UsageError(f"--percentile: {text!r} is not one of {names}")
    return key


def parse_threshold(text: str) -> float:
    """``5%`` or ``0.05`` -> 0.05; anything else is a UsageError."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UsageError(f"--threshold: {text!r} is not a percentage (e.g. 5% or 0.05)") from None
    if not 0 < value < 1:
        raise UsageError(f"--threshold: {text!r} must be between 0% and 100%")
    return value


@dataclass(frozen=True)
class Samples:
    """One case's step times (ms) and, per step, its block or round where the run has them."""

    ms: np.ndarray
    blocks: np.ndarray | None = None  # runs against another tree (bench.execution.interleave)
    rounds: np.ndarray | None = None  # sweeps measured in rounds (bench.execution.rounds)

    def round_medians(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(round numbers, their medians), when the case has two rounds or more."""
        if self.rounds is None or np.unique(self.rounds).size < 2:
            return None
        ids = np.unique(self.rounds)
        return ids, np.array([np.median(self.ms[self.rounds == r]) for r in ids])


def step_samples(csv_path: Path) -> dict[str, Samples]:
    """Per-case step times (ms, the phases summed per sample), with their blocks or rounds.

    Blocks exist in runs measured side by side (``bench.execution.interleave``): block k of
    one side ran right next to block k of the other. Rounds exist in sweeps
    (``bench.execution.rounds``): round k of every case ran in the same fresh process.
    """
    df = read_samples(csv_path)
    tags = [t for t in ("block", "round") if t in df]
    totals = df.groupby(["case_id", "index", *tags])["ms"].sum().reset_index()
    return {
        case: Samples(
            g["ms"].to_numpy(),
            g["block"].to_numpy() if "block" in g else None,
            g["round"].to_numpy() if "round" in g else None,
        )
        for case, g in totals.groupby("case_id")
    }


def run_metric(df: pd.DataFrame, path: Path) -> str:
    """What a run measured: time or instructions (one run, one metric)."""
    metrics = sorted(set(df["metric"]))
    if len(metrics) != 1:
        raise UsageError(f"{path}: holds rows of several metrics ({', '.join(metrics)}); compare one metric at a time")
    return metrics[0]


def environment_changes(base: pd.DataFrame, cur: pd.DataFrame, metric: str = "time") -> list[str]:
    """Fields that differ between the runs, per device, as readable lines."""
    changes = []
    fields = ENV_FIELDS + (COUNT_ENV_FIELDS if metric == "instructions" else ())
    for device in sorted(set(base["device"]) & set(cur["device"])):
        b, c = base[base["device"] == device], cur[cur["device"] == device]
        for field in fields:
            if field not in b or field not in c:
                continue
            bv, cv = sorted(set(b[field])), sorted(set(c[field]))
            if bv != cv:
                changes.append(f"{device} {field}: {', '.join(bv) or '-'} -> {', '.join(cv) or '-'}")
    return changes


def bootstrap_ci(
    data: tuple[np.ndarray, ...], statistic, rng: np.random.Generator, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """95% percentile-bootstrap CI of ``statistic(*data, axis=-1)`` (scipy)."""
    result = sps.bootstrap(
        data,
        statistic,
        n_resamples=resamples,
        method="percentile",
        vectorized=True,
        paired=False,
        random_state=rng,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def median_ratio(base: np.ndarray, cur: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(cur, axis=axis) / np.median(base, axis=axis)


def paired_blocks(base: Samples, cur: Samples) -> np.ndarray | None:
    """log(median current / median baseline) per block both sides ran, if blocked."""
    b_ms, b_block, c_ms, c_block = base.ms, base.blocks, cur.ms, cur.blocks
    if b_block is None or c_block is None:
        return None
    common = np.intersect1d(b_block, c_block)
    if common.size < MIN_CI_SAMPLES:  # too few pairs for the signed-rank test: fall back to samples
        return None
    return np.array([np.log(np.median(c_ms[c_block == k]) / np.median(b_ms[b_block == k])) for k in common])


def block_rounds(base: Samples, cur: Samples) -> np.ndarray | None:
    """Per round both sides ran in (two or more), the median log ratio of its block pairs."""
    if base.rounds is None or cur.rounds is None or base.blocks is None or cur.blocks is None:
        return None
    out = []
    for r in np.intersect1d(base.rounds, cur.rounds):
        b_in, c_in = base.rounds == r, cur.rounds == r
        common = np.intersect1d(base.blocks[b_in], cur.blocks[c_in])
        if common.size == 0:
            continue
        ratios = [
            np.log(np.median(cur.ms[c_in & (cur.blocks == k)]) / np.median(base.ms[b_in & (base.blocks == k)]))
            for k in common
        ]
        out.append(float(np.median(ratios)))
    return np.array(out) if len(out) >= 2 else None


def judge_counts(base: float, cur: float, threshold: float) -> dict:
    """Ratio and verdict for one case's instruction counts: no noise to test against."""
    ratio = cur / base
    if ratio > 1 + threshold:
        verdict, why = "regression", f"{ratio - 1:+.2%} instructions"
    elif ratio < 1 - threshold:
        verdict, why = "improvement", f"{ratio - 1:+.2%} instructions"
    else:
        verdict, why = "unchanged", f"{ratio - 1:+.3%} instructions, within the {threshold:.0%} threshold"
    return {
        "ratio": ratio,
        "ratio_ci_low": ratio,
        "ratio_ci_high": ratio,
        "p_value": np.nan,
        "verdict": verdict,
        "why": why,
    }


def judge(base: Samples, cur: Samples, config: CompareConfig, rng: np.random.Generator) -> dict:
    """Ratio, its CI, the test's p-value and the verdict for one case.

    Blocked runs are judged on the per-block-pair log ratios (Wilcoxon
    signed-rank test, bootstrap CI of their median): the pairing cancels drift.
    Blocked runs in rounds of fresh worker pairs, on the per-round medians of
    those log ratios (one-sample t): the blocks of one pair of processes share
    whatever those processes happen to be.
    Runs measured in rounds on their round medians (Welch's t on the logs,
    ``stats.ratio_from_rounds``): samples of one process are not independent of
    each other, the rounds are. Otherwise (one round each) on the raw samples
    (Mann–Whitney U, bootstrap CI of the median ratio), which sees one process only.
    """
    pairs = paired_blocks(base, cur)
    b_rounds, c_rounds = base.round_medians(), cur.round_medians()
    per_round = block_rounds(base, cur) if pairs is not None else None
    if per_round is not None:
        # Blocks in rounds of fresh worker pairs: a pair of processes is one draw, its blocks are not.
        ratio, low, high, p = ratio_from_log_ratios(per_round)
    elif pairs is not None:
        ratio = float(np.exp(np.median(pairs)))
        low, high = (float(np.exp(v)) for v in bootstrap_ci((pairs,), np.median, rng))
        p = float(sps.wilcoxon(pairs).pvalue) if np.any(pairs != 0) else 1.0
    elif b_rounds is not None and c_rounds is not None:
        ratio, low, high, p = ratio_from_rounds(b_rounds[1], c_rounds[1], paired=False)
    else:
        b, c = base.ms, cur.ms
        ratio = float(np.median(c) / np.median(b))
        low, high = bootstrap_ci((b, c), median_ratio, rng)
        p = float(sps.mannwhitneyu(c, b, alternative="two-sided").pvalue)
    return _verdict(ratio, low, high, p, config)


def _verdict(ratio: float, low: float, high: float, p: float, config: CompareConfig, what: str = "") -> dict:
    """The verdict on a time ratio: beyond the threshold and significant at ``alpha``."""
    significant = p < config.alpha
    threshold = config.threshold_for("time")
    if ratio > 1 + threshold and significant:
        verdict, why = "regression", f"{ratio:.2f}x slower (p={p:.2g})"
    elif ratio < 1 - threshold and significant:
        verdict, why = "improvement", f"{1 / ratio:.2f}x faster (p={p:.2g})"
    elif abs(ratio - 1) > threshold:
        verdict, why = "unchanged", f"{ratio:.2f}x is not significant (p={p:.2g}, CI {low:.2f}-{high:.2f})"
    else:
        verdict, why = "unchanged", f"within the {threshold:.0%} threshold"
    why = f"{what}: {why}" if what else why
    return {"ratio": ratio, "ratio_ci_low": low, "ratio_ci_high": high, "p_value": p, "verdict": verdict, "why": why}


def quantile_of(ms: np.ndarray, q: float) -> float:
    return float(np.quantile(ms, q, method="inverted_cdf"))


def round_quantiles(s: Samples, q: float) -> dict[int, float] | None:
    """Each round's q-quantile, when there are two rounds or more and each has the calls for one."""
    if s.rounds is None or np.unique(s.rounds).size < 2:
        return None
    parts = {int(r): s.ms[s.rounds == r] for r in np.unique(s.rounds)}
    if any(part.size < min_calls(q) for part in parts.values()):
        return None
    return {r: quantile_of(part, q) for r, part in parts.items()}


def judge_percentile(
    base: Samples, cur: Samples, name: str, config: CompareConfig, rng: np.random.Generator
) -> dict | None:
    """Ratio, CI, p-value and verdict of a stream case's percentile (``name``: p50 ... p99_9),
    with the statistic judged in ``statistic``.

    With rounds on both sides, on the rounds' own values: paired round by round where both sides
    ran in the same rounds side by side (the gate's blocks), else Welch's t on the logs, as
    medians are. Where a round has too few calls for this percentile, on the highest percentile
    every round can give (said so): pooled calls of a few processes are not independent draws,
    and a test that treats them so calls noise a regression. Without rounds (one process a side),
    on the pooled calls: a percentile-bootstrap CI of the ratio, and as p-value twice the share
    of resampled ratios on the far side of 1. None where a side has too few calls for the
    percentile at all.
    """
    q = PERCENTILES[name]
    label = name.replace("_", ".")
    if min(base.ms.size, cur.ms.size) < min_calls(q):
        return None
    both_rounds = all(s.rounds is not None and np.unique(s.rounds).size >= 2 for s in (base, cur))
    if both_rounds:
        for proxy_name, proxy in sorted(PERCENTILES.items(), key=lambda kv: -kv[1]):
            if proxy > q:
                continue
            b_r, c_r = round_quantiles(base, proxy), round_quantiles(cur, proxy)
            if b_r is None or c_r is None:
                continue
            common = sorted(set(b_r) & set(c_r))
            if base.blocks is not None and cur.blocks is not None and len(common) >= 2:
                ratio, low, high, p = ratio_from_log_ratios(np.log([c_r[r] / b_r[r] for r in common]))
            else:
                ratio, low, high, p = ratio_from_rounds(list(b_r.values()), list(c_r.values()), paired=False)
            proxy_label = proxy_name.replace("_", ".")
            what = f"{label} over rounds"
            if proxy != q:
                what = f"{proxy_label} over rounds (too few calls a round for {label})"
            return _verdict(ratio, low, high, p, config, what) | {"statistic": proxy_label}
    ratio = quantile_of(cur.ms, q) / quantile_of(base.ms, q)

    def statistic(b: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.quantile(c, q, axis=axis, method="inverted_cdf") / np.quantile(b, q, axis=axis, method="inverted_cdf")

    low, high = bootstrap_ci((base.ms, cur.ms), statistic, rng)
    resampled = np.array(
        [
            statistic(rng.choice(base.ms, base.ms.size), rng.choice(cur.ms, cur.ms.size))
            for _ in range(BOOTSTRAP_RESAMPLES // 4)
        ]
    )
    far = min(np.mean(resampled <= 1), np.mean(resampled >= 1))
    p = float(min(1.0, max(2 * far, 1 / resampled.size)))
    return _verdict(ratio, low, high, p, config, f"{label} of pooled calls (one process a side)") | {"statistic": label}


def judge_stream(base: Samples, cur: Samples, config: CompareConfig, rng: np.random.Generator) -> dict:
    """A stream case on its chosen percentile; on its median, said so, where a side has too few
    calls for that percentile (a tail no run measured cannot be judged)."""
    judged = judge_percentile(base, cur, config.percentile, config, rng)
    if judged is not None:
        return judged
    q, label = PERCENTILES[config.percentile], config.percentile.replace("_", ".")
    fallback = judge(base, cur, config, rng)
    short = f"{min(base.ms.size, cur.ms.size)} calls < {min_calls(q)}"
    fallback["why"] = f"median (too few calls for {label}: {short}): {fallback['why']}"
    return fallback | {"statistic": "median"}


def compare_runs(baseline: Path, current: Path, config: CompareConfig) -> tuple[pd.DataFrame, list[str]]:
    """One row per case of either run with medians (or counts), ratio, CI, p-value and verdict."""
    base, cur = read_results(baseline), read_results(current)
    metric = run_metric(base, baseline)
    other = run_metric(cur, current)
    if other != metric:
        raise UsageError(f"{baseline.name} measured {metric} and {current.name} {other}: compare runs of one metric")
    counted = metric == "instructions"
    changes = environment_changes(base, cur, metric)
    base_samples, cur_samples = ({}, {}) if counted else (step_samples(baseline), step_samples(current))
    rng = np.random.default_rng(config.seed)
    b, c = base.set_index("case_id"), cur.set_index("case_id")
    value, unit = ("instructions", "instructions") if counted else ("median_ms", "ms")
    rows = []
    for case_id in list(b.index) + [i for i in c.index if i not in b.index]:
        row = {"case_id": case_id, "metric": metric, "statistic": "instructions" if counted else "median"}
        if case_id not in c.index or case_id not in b.index:
            where = "current" if case_id not in c.index else "baseline"
            row.update(verdict="missing", why=f"not in the {where} run")
        else:
            bs, cs = b.loc[case_id, "status"], c.loc[case_id, "status"]
            row.update({f"baseline_{unit}": b.loc[case_id, value], f"current_{unit}": c.loc[case_id, value]})
            if bs == cs == "unsupported":  # the model declines the case in both: nothing to judge
                row.update(verdict="unsupported", why=f"unsupported in both runs: {c.loc[case_id, 'error']}")
            elif bs != "ok" or cs != "ok":
                message = c.loc[case_id, "error"] if cs != "ok" else b.loc[case_id, "error"]
                row.update(verdict="failed", why=f"status {bs} -> {cs}: {message}".strip(": "))
            elif counted:
                row.update(judge_counts(b.loc[case_id, value], c.loc[case_id, value], config.threshold_for(metric)))
            elif case_id not in base_samples or case_id not in cur_samples:
                row.update(verdict="missing", why="no raw samples for this case")
            elif c.loc[case_id, "mode"] == "stream":
                row.update(judge_stream(base_samples[case_id], cur_samples[case_id], config, rng))
                if row["statistic"] != "median":  # a percentile was judged: its values shown
                    at = row["statistic"].replace(".", "_") + "_ms"
                    row.update(baseline_ms=b.loc[case_id, at], current_ms=c.loc[case_id, at])
            else:
                row.update(judge(base_samples[case_id], cur_samples[case_id], config, rng))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS)), changes
