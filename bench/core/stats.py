"""Statistics of raw timing samples, derived in one place.

The 95% confidence interval of the median is the distribution-free one from
order statistics (the number of samples below the median is Binomial(n, 1/2)),
so it holds for the skewed, heavy-tailed distributions timings have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The fewest samples whose order-statistic 95% CI of the median is narrower than
# their range (Binomial(6, 1/2) puts 1.6% below rank 1): below this, no CI.
MIN_CI_SAMPLES = 6


@dataclass(frozen=True)
class Summary:
    """What the CSV reports about one phase's samples, in milliseconds."""

    samples: int
    median_ms: float
    iqr_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    ci_low_ms: float
    ci_high_ms: float

    @property
    def rel_ci_half_width(self) -> float:
        """Half the CI's width over the median: 0.02 means ±2%."""
        return (self.ci_high_ms - self.ci_low_ms) / 2 / self.median_ms


def median_ci(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Order-statistic CI of the median; with too few samples, the full range."""
    # scipy is imported here, not at the top: the instruction-count worker imports this
    # module under valgrind, where every import is instrumented (scipy.stats costs ~10 s there).
    from scipy import stats as sps

    x = np.sort(np.asarray(samples, dtype=float))
    n = x.size
    # Ranks (1-based) j < k with P(X_(j) <= median <= X_(k)) >= confidence.
    j = int(sps.binom.ppf((1 - confidence) / 2, n, 0.5))
    k = n - j + 1
    if j < 1:
        return float(x[0]), float(x[-1])
    return float(x[j - 1]), float(x[k - 1])


def summarize(samples_ms: np.ndarray | list[float]) -> Summary:
    x = np.asarray(samples_ms, dtype=float)
    if x.size == 0:
        raise ValueError("no samples to summarize")
    q25, q50, q75 = np.percentile(x, [25, 50, 75])
    low, high = median_ci(x)
    return Summary(
        samples=int(x.size),
        median_ms=float(q50),
        iqr_ms=float(q75 - q25),
        mean_ms=float(x.mean()),
        std_ms=float(x.std(ddof=1)) if x.size > 1 else 0.0,
        min_ms=float(x.min()),
        max_ms=float(x.max()),
        ci_low_ms=low,
        ci_high_ms=high,
    )


# --- intervals from rounds ---------------------------------------------------------------------
#
# A sweep measures each case in R rounds, each in a fresh process (bench.execution.rounds). What changes
# between processes (memory layout, allocator state, where threads land) and what drifts over
# minutes moves a round's median as a whole, which no interval from one process's samples can
# see. The row's estimate is the geometric mean of the round medians and its 95% CI Student's
# t-interval on their logarithms: the scatter of the round medians already holds both the
# within-round noise and the between-round shifts, and t's heavier tails pay for having only a
# few rounds (a bootstrap over 3-5 rounds covers far less than 95%; docs/statistics.md).


@dataclass(frozen=True)
class RoundsSummary:
    """A case's centre and 95% CI from its rounds, and the two sources of spread apart."""

    rounds: int
    centre_ms: float  # geometric mean of the round medians
    ci_low_ms: float
    ci_high_ms: float
    between_round_rel_sd: float  # standard deviation of the log round medians (≈ relative sd)
    within_round_rel_ci: float  # median over rounds of each round's own CI half-width / its median

    @property
    def rel_ci_half_width(self) -> float:
        return (self.ci_high_ms - self.ci_low_ms) / 2 / self.centre_ms

    @property
    def between_dominates(self) -> bool:
        """True when what moves whole rounds outweighs the noise within them.

        A round median's standard error ``se`` is about its CI half-width / 1.96, and
        the round medians' variance is ``se²`` plus the between-round variance (the
        processes' and the drift's): that part dominates once it exceeds ``se²``.
        """
        se = self.within_round_rel_ci / T_95_LARGE
        return self.between_round_rel_sd**2 > 2 * se**2


T_95_LARGE = 1.96  # a 95% CI's half-width in standard errors, many degrees of freedom


def t_quantile(rounds: int, confidence: float = 0.95) -> float:
    """Student's t quantile for a two-sided ``confidence`` interval from ``rounds`` values."""
    from scipy import stats as sps  # see median_ci: not imported at the top

    return float(sps.t.ppf(0.5 + confidence / 2, rounds - 1))


def rounds_interval(round_medians: np.ndarray | list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(centre, low, high): geometric mean of the round medians and the t-interval on their logs.

    Needs two rounds or more (one round has no between-round spread to go on).
    """
    logs = np.log(np.asarray(round_medians, dtype=float))
    r = logs.size
    if r < 2:
        raise ValueError("an interval from rounds needs at least two rounds")
    centre, low, high, _ = ratio_from_log_ratios(logs, confidence)  # the same one-sample t, on log medians
    return centre, low, high


def summarize_rounds(samples_ms: np.ndarray | list[float], rounds: np.ndarray | list[int]) -> RoundsSummary:
    """The rounds' interval of samples tagged with the round each was taken in (two rounds or more)."""
    x = np.asarray(samples_ms, dtype=float)
    tags = np.asarray(rounds)
    medians, within = [], []
    for r in np.unique(tags):
        s = summarize(x[tags == r])
        medians.append(s.median_ms)
        # Below MIN_CI_SAMPLES a round's CI is its range: wider, never undefined.
        within.append(s.rel_ci_half_width)
    centre, low, high = rounds_interval(medians)
    return RoundsSummary(
        rounds=len(medians),
        centre_ms=centre,
        ci_low_ms=low,
        ci_high_ms=high,
        between_round_rel_sd=float(np.std(np.log(medians), ddof=1)),
        within_round_rel_ci=float(np.median(within)),
    )


def rounds_needed(rel_sd: float, target_rel_ci: float, have: int, most: int) -> int | None:
    """The fewest rounds (more than ``have``, at most ``most``) whose t-interval would reach the
    target if the rounds keep scattering by ``rel_sd``; None if even ``most`` would not."""
    for r in range(max(have + 1, 2), most + 1):
        if t_quantile(r) * rel_sd / np.sqrt(r) <= target_rel_ci:
            return r
    return None


def ratio_from_rounds(
    base_medians: np.ndarray | list[float],
    cur_medians: np.ndarray | list[float],
    paired: bool,
    confidence: float = 0.95,
) -> tuple[float, float, float, float]:
    """(ratio, low, high, p) of cur / base from each side's round medians, on log scales.

    Paired (the two measured side by side in the same rounds, the same round numbers in
    the same order): the t-interval of the per-round log ratios. Unpaired (two runs):
    Welch's t-interval of the difference of the mean log medians. ``p`` tests ratio = 1.
    """
    b, c = np.log(np.asarray(base_medians, float)), np.log(np.asarray(cur_medians, float))
    if paired:
        return ratio_from_log_ratios(c - b, confidence)
    vb, vc = b.var(ddof=1) / b.size, c.var(ddof=1) / c.size
    mean, se = float(c.mean() - b.mean()), float(np.sqrt(vb + vc))
    # Welch–Satterthwaite degrees of freedom
    df = (vb + vc) ** 2 / (vb**2 / (b.size - 1) + vc**2 / (c.size - 1)) if vb + vc > 0 else b.size + c.size - 2
    return _t_ratio(mean, se, df, confidence)


def ratio_from_log_ratios(log_ratios: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """(ratio, low, high, p): the one-sample t-interval of log ratios (one per round), exponentiated."""
    d = np.asarray(log_ratios, dtype=float)
    return _t_ratio(float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size)), d.size - 1, confidence)


def _t_ratio(mean: float, se: float, df: float, confidence: float) -> tuple[float, float, float, float]:
    from scipy import stats as sps  # see median_ci

    if se == 0:
        return float(np.exp(mean)), float(np.exp(mean)), float(np.exp(mean)), 1.0 if mean == 0 else 0.0
    half = float(sps.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * sps.t.sf(abs(mean) / se, df))
    return float(np.exp(mean)), float(np.exp(mean - half)), float(np.exp(mean + half)), p


# --- percentiles of calls (mode=stream) ------------------------------------------------------------
#
# A percentile's 95% CI is distribution-free, from order statistics: the number of calls at or
# below the true q-quantile is Binomial(n, q), so ranks j < k with P(j <= that number < k) >= 95%
# bound it. The upper rank exists only when q^n <= 2.5%: below ``min_calls(q)`` calls (p99: 368,
# p99.9: 3688) no such interval exists and the percentile is not reported (MLPerf Inference's
# early-stopping rule is the same binomial argument, one-sided). With rounds (fresh processes),
# the interval is widened to the rounds' t-interval (``summarize_percentile``): calls of one
# process are not independent of each other, rounds are.

PERCENTILES: dict[str, float] = {"p50": 0.50, "p90": 0.90, "p99": 0.99, "p99_9": 0.999}


def min_calls(q: float, confidence: float = 0.95) -> int:
    """The fewest calls whose order statistics give a two-sided ``confidence`` CI of the q-quantile."""
    return int(np.floor(np.log((1 - confidence) / 2) / np.log(q))) + 1


@dataclass(frozen=True)
class PercentileSummary:
    """One percentile of a case's calls: the estimate and its 95% CI (ms), or why there is none."""

    name: str  # p50, p90, p99, p99_9
    value_ms: float | None
    ci_low_ms: float | None
    ci_high_ms: float | None
    calls: int
    widened_by_rounds: bool = False
    too_few: str = ""  # empty, or why no value is given

    @property
    def label(self) -> str:
        return self.name.replace("_", ".")


def quantile_interval(
    samples: np.ndarray | list[float], q: float, confidence: float = 0.95
) -> tuple[float, float, float] | None:
    """(estimate, low, high) of the q-quantile from order statistics; None below ``min_calls(q)``."""
    from scipy import stats as sps  # see median_ci

    x = np.sort(np.asarray(samples, dtype=float))
    n = x.size
    if n < min_calls(q, confidence):
        return None
    j = int(sps.binom.ppf((1 - confidence) / 2, n, q))  # 1-based ranks: P(count < j) < 2.5%
    k = int(sps.binom.ppf(0.5 + confidence / 2, n, q)) + 1  # P(count <= k - 1) >= 97.5%
    estimate = float(np.quantile(x, q, method="inverted_cdf"))
    return estimate, float(x[max(j, 1) - 1]), float(x[min(k, n) - 1])


def summarize_percentile(
    samples_ms: np.ndarray | list[float], rounds: np.ndarray | list[int] | None, name: str
) -> PercentileSummary:
    """A percentile (``PERCENTILES``) of a case's calls over all its rounds, with its CI.

    The pooled calls' order-statistic CI is widened to what the rounds say: where every round
    has the calls for this percentile, to the t-interval of the rounds' own values; where they
    have not, by the relative t-interval of the highest percentile every round can give (p90,
    or p50): a process that runs slow moves its tail too, and pooled calls cannot see that.
    """
    q = PERCENTILES[name]
    x = np.asarray(samples_ms, dtype=float)
    pooled = quantile_interval(x, q)
    if pooled is None:
        need = min_calls(q)
        return PercentileSummary(name, None, None, None, int(x.size), too_few=f"{x.size} calls < {need}")
    value, low, high = pooled
    if rounds is None or np.unique(rounds).size < 2:
        return PercentileSummary(name, value, low, high, int(x.size))
    tags = np.asarray(rounds)
    per_round = [x[tags == r] for r in np.unique(tags)]
    fewest = min(part.size for part in per_round)
    proxy = max((p for p in PERCENTILES.values() if p <= q and fewest >= min_calls(p)), default=None)
    if proxy is None:  # a round too short even for its median's CI: the pooled interval alone
        return PercentileSummary(name, value, low, high, int(x.size))
    centre, r_low, r_high = rounds_interval([np.quantile(part, proxy, method="inverted_cdf") for part in per_round])
    if proxy != q:  # the proxy's relative interval, around this percentile
        r_low, r_high = value * r_low / centre, value * r_high / centre
    widened = r_low < low or r_high > high
    return PercentileSummary(name, value, min(low, r_low), max(high, r_high), int(x.size), widened)
