"""Confidence intervals of per-case time ratios, from the runs' raw samples.

A ratio plot puts one point per matched pair of cases (``slices.pairs``). Its bar,
where both cases were measured in rounds (``bench.execution.rounds``), is the t-interval of
the ratio of their round medians: paired round by round when both come from one
run (side by side, or the same rounds of one sweep), Welch's otherwise. Cases of one
round get the percentile-bootstrap 95% CI of median(a) / median(b) from the raw step
times, which sees one process only. Where a run's samples file is missing (a
filtered copy of a results CSV), its pairs get no bar.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis.compare import Samples, bootstrap_ci, median_ratio, step_samples
from bench.core.errors import UsageError
from bench.core.stats import ratio_from_rounds

RESAMPLES = 1000  # per pair: enough for a plotted bar, cheap for a report of hundreds of pairs


class SampleStore:
    """Each results file's step samples, read once."""

    def __init__(self) -> None:
        self._runs: dict[str, dict[str, Samples] | None] = {}

    def steps(self, path: str, case_id: str) -> Samples | None:
        if path not in self._runs:
            try:
                self._runs[path] = step_samples(Path(path))
            except UsageError:  # no samples file, or not one we can read: no bars for this run
                self._runs[path] = None
        run = self._runs[path]
        return None if run is None else run.get(case_id)


def ratio_cis(p: pd.DataFrame, store: SampleStore, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of each pair's a/b median ratio; NaN where a side has too few samples."""
    rng = np.random.default_rng(seed)
    low, high = np.full(len(p), np.nan), np.full(len(p), np.nan)
    for i, (_, r) in enumerate(p.iterrows()):
        a = store.steps(r["source_path_a"], r["case_id_a"])
        b = store.steps(r["source_path_b"], r["case_id_b"])
        if a is None or b is None or min(a.ms.size, b.ms.size) < 2:
            continue
        a_rounds, b_rounds = a.round_medians(), b.round_medians()
        if a_rounds is not None and b_rounds is not None:
            # Paired only within one run (a merge of shards holds several: their round k ran apart).
            same_run = r["source_path_a"] == r["source_path_b"] and r.get("run_id_a") == r.get("run_id_b")
            same_rounds = same_run and np.array_equal(a_rounds[0], b_rounds[0])
            _, low[i], high[i], _ = ratio_from_rounds(b_rounds[1], a_rounds[1], paired=same_rounds)
        else:
            low[i], high[i] = bootstrap_ci((b.ms, a.ms), median_ratio, rng, RESAMPLES)
    return low, high
