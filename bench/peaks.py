"""The machine's own limit: GFLOP/s of a large matrix product per device/dtype.

Efficiency is reported against this measured peak rather than a datasheet
number, so it says how close a case gets to what this machine, with this torch
and thread count, can really do on dense math.
"""

from __future__ import annotations

import torch

from bench.clocks import clock_for
from bench.stats import MIN_CI_SAMPLES
from bench.timer import TimerConfig, measure
from bench.workload import DTYPES, thread_count

MATMUL_SIZE = {"cpu": 2048, "cuda": 8192}
PEAK_TIMER = TimerConfig(target_rel_ci=0.02, min_samples=MIN_CI_SAMPLES, max_samples=50, budget_s=1.0, warmup_s=0.1)


def peak_gflop_per_s(device: str, dtype: str, threads: int) -> float:
    """Best-sample GFLOP/s of an n×n×n matmul (best, since a peak is an upper reference)."""
    n = MATMUL_SIZE[device]
    with thread_count(threads), torch.inference_mode():
        a = torch.randn(n, n, device=device).to(DTYPES[dtype])
        b = torch.randn(n, n, device=device).to(DTYPES[dtype])
        m = measure([("matmul", lambda: torch.mm(a, b))], PEAK_TIMER, clock_for(device))
    best_ms = min(m.phases["matmul"])
    return 2 * n**3 / (best_ms / 1e3) / 1e9


class PeakCache:
    """Measures each (device, dtype, threads) peak once per run."""

    def __init__(self) -> None:
        self._peaks: dict[tuple[str, str, int], float] = {}

    def get(self, device: str, dtype: str, threads: int) -> float:
        key = (device, dtype, threads)
        if key not in self._peaks:
            self._peaks[key] = peak_gflop_per_s(device, dtype, threads)
        return self._peaks[key]

    def as_dict(self) -> dict[str, float]:
        return {f"{d}/{t}/threads={n}": v for (d, t, n), v in self._peaks.items()}
