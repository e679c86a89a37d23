"""The machine's own limit: GFLOP/s of a large matrix product per device/dtype.

Efficiency is reported against this measured peak rather than a datasheet
number, so it says how close a case gets to what this machine, with this torch
and thread count, can really do on dense math.
"""

from __future__ import annotations

import torch

from bench.core.cases import Case
from bench.core.stats import MIN_CI_SAMPLES
from bench.core.timer import FixedCount, StopRule, TimerConfig, measure
from bench.measure.backends import kernel_settings
from bench.measure.clocks import clock_for
from bench.measure.workload import DTYPES, thread_count

MATMUL_SIZE = {"cpu": 2048, "cuda": 8192}
PEAK_TIMER = TimerConfig(target_rel_ci=0.02, min_samples=MIN_CI_SAMPLES, max_samples=50, budget_s=1.0, warmup_s=0.1)
# A dtype without fast kernels (float16 on many CPUs: 0.3 GFLOP/s measured on a 2-core
# AMD EPYC, 57 s for one 2048 product) gets a smaller product, so a peak costs about a
# second whatever the dtype: the size halves until one product is estimated under this.
PROBE_SIZE = 256
MAX_MATMUL_MS = 50.0


def _matmul_ms(device: str, dtype: str, n: int, config: TimerConfig, stop: StopRule | None = None) -> list[float]:
    a = torch.randn(n, n, device=device).to(DTYPES[dtype])
    b = torch.randn(n, n, device=device).to(DTYPES[dtype])
    return measure([("matmul", lambda: torch.mm(a, b))], config, clock_for(device), stop=stop).phases["matmul"]


def matmul_size(device: str, dtype: str) -> int:
    """The product size for a peak: ``MATMUL_SIZE``, smaller where one would be slow."""
    probe_ms = min(_matmul_ms(device, dtype, PROBE_SIZE, TimerConfig(warmup_runs=1, warmup_s=0.0), FixedCount(2)))
    n = MATMUL_SIZE[device]
    while n > PROBE_SIZE and probe_ms * (n / PROBE_SIZE) ** 3 > MAX_MATMUL_MS:
        n //= 2
    return n


def peak_gflop_per_s(device: str, dtype: str, threads: int, tf32: bool = False) -> float:
    """Best-sample GFLOP/s of an n×n×n matmul (best, since a peak is an upper reference).

    Under the same kernel settings as the cases (``bench.measure.backends``): with
    ``tf32`` the float32 matmul may use TF32 tensor cores, as the cases do.
    """
    with thread_count(threads), kernel_settings(device, "default", tf32), torch.inference_mode():
        n = matmul_size(device, dtype)
        best_ms = min(_matmul_ms(device, dtype, n, PEAK_TIMER))
    return 2 * n**3 / (best_ms / 1e3) / 1e9


class PeakCache:
    """Measures each (device, dtype, threads, TF32) peak once per run."""

    def __init__(self) -> None:
        self._peaks: dict[tuple[str, str, int, bool], float] = {}

    def get(self, device: str, dtype: str, threads: int, tf32: bool = False) -> float:
        key = (device, dtype, threads, tf32)
        if key not in self._peaks:
            self._peaks[key] = peak_gflop_per_s(device, dtype, threads, tf32)
        return self._peaks[key]

    def for_case(self, case: Case) -> float:
        """The peak a case's efficiency is measured against: its device, dtype, threads and TF32."""
        return self.get(case.device, case.dtype, case.threads, case.uses_tf32)

    def as_dict(self) -> dict[str, float]:
        return {f"{d}/{t}/threads={n}" + ("/tf32" if tf32 else ""): v for (d, t, n, tf32), v in self._peaks.items()}
