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
