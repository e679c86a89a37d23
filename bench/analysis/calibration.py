"""Calibration: do two runs of the same cases agree within their 95% intervals?

An interval is a promise about a rerun. For each case measured ok in both runs,
the two medians should differ by less than their *combined* 95% interval: on a
log scale, ``|log m1 - log m2| < sqrt(h1² + h2²)``, where ``h`` is each CI's
half-width in log units (half of ``log(high / low)``). If each CI is an honest
95% interval of its run's estimate, the difference of two independent runs falls
inside the combined interval for about 95% of cases; one process's interval, which
misses what changes between processes, gives far less.

``bench validate --calibration`` measures the two runs; this module only reads
them (no torch), so two existing result files can be checked as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Calibration:
    cases: int  # ok time cases in both runs
    inside: int  # pairs whose medians differ by less than the combined interval
    rerun_in_first_ci: int  # second median inside the first run's CI
    median_rel_ci: float  # median CI half-width of the two runs, relative to the median
    median_rel_change: float  # median |m2 / m1 - 1|
    worst: pd.DataFrame  # the cases furthest outside, worst first (case_id, change, combined)

    @property
    def share_inside(self) -> float:
        return self.inside / self.cases if self.cases else float("nan")

    def lines(self) -> list[str]:
        return [
            f"{self.inside} of {self.cases} cases ({self.share_inside:.0%}; ideal 95%): the two medians differ "
            f"by less than their combined 95% interval",
            f"{self.rerun_in_first_ci} of {self.cases} ({self.rerun_in_first_ci / max(self.cases, 1):.0%}): "
            "the second median inside the first run's CI",
            f"median CI half-width ±{self.median_rel_ci:.1%}; median change between the runs "
            f"{self.median_rel_change:.1%}",
        ]


def calibration(first: pd.DataFrame, second: pd.DataFrame) -> Calibration:
    """Compare two runs' rows (``bench.records.reading.read_results`` frames) case by case."""
    cols = ["case_id", "median_ms", "ci_low_ms", "ci_high_ms"]

    def ok(df: pd.DataFrame) -> pd.DataFrame:
        keep = (df["status"] == "ok") & (df["metric"] == "time") & (df["ci_low_ms"] > 0)
        return df.loc[keep, cols]

    both = ok(first).merge(ok(second), on="case_id", suffixes=("_1", "_2"))
    change = np.abs(np.log(both["median_ms_2"] / both["median_ms_1"]))
    h1 = np.log(both["ci_high_ms_1"] / both["ci_low_ms_1"]) / 2
    h2 = np.log(both["ci_high_ms_2"] / both["ci_low_ms_2"]) / 2
    combined = np.sqrt(h1**2 + h2**2)
    in_first = (both["median_ms_2"] >= both["ci_low_ms_1"]) & (both["median_ms_2"] <= both["ci_high_ms_1"])
    rel = pd.concat(
        [
            (both["ci_high_ms_1"] - both["ci_low_ms_1"]) / 2 / both["median_ms_1"],
            (both["ci_high_ms_2"] - both["ci_low_ms_2"]) / 2 / both["median_ms_2"],
        ]
    )
    worst = pd.DataFrame(
        {
            "case_id": both["case_id"],
            "change": np.exp(change) - 1,
            "combined": np.exp(combined) - 1,
            "outside_by": change - combined,
        }
    ).sort_values("outside_by", ascending=False)
    return Calibration(
        cases=len(both),
        inside=int((change < combined).sum()),
        rerun_in_first_ci=int(in_first.sum()),
        median_rel_ci=float(rel.median()) if len(rel) else float("nan"),
        median_rel_change=float(np.median(np.exp(change) - 1)) if len(both) else float("nan"),
        worst=worst[worst["outside_by"] > 0].drop(columns="outside_by"),
    )
