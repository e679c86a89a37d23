"""The machine's roofs: a compute roof no case can beat, a bandwidth per memory level, and the
overhead floor, measured once per run for each device, dtype, thread count and TF32 setting.

The compute roof is the best of several engines (``engines``): ``torch.mm`` of n×n, ``torch.mm``
at an RNN's own GEMM shapes (the input projection over all positions, the recurrent
product of one step at a large batch), oneDNN's matmul on the CPU, and the RNN kernel itself
(``nn.LSTM``, run by oneDNN or cuDNN) at a large size. One engine alone can be beaten: in
the reference runs of commit f1a75c5 (an earlier AMD EPYC VM) an LSTM case ran at 455
GFLOP/s against torch's n×n matmul (MKL) at 221. Each engine's best sample is kept (a
roof is an upper reference), the winner named; an engine that fails is skipped.
Beside it, the theoretical figure where the machine tells it (``theoretical_gflop_per_s``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.core.cases import Case
from bench.core.roofline import Level, Roofs
from bench.core.stats import MIN_CI_SAMPLES
from bench.core.timer import FixedCount, StopRule, TimerConfig, measure, within
from bench.measure.backends import kernel_settings
from bench.measure.bandwidth import memory_levels
from bench.measure.clocks import clock_for
from bench.measure.floors import floor_case, floor_ms
from bench.measure.workload import DTYPES, thread_count

MATMUL_SIZE = {"cpu": 2048, "cuda": 8192}
PEAK_TIMER = TimerConfig(target_rel_ci=0.02, min_samples=MIN_CI_SAMPLES, max_samples=50, budget_s=0.4, warmup_s=0.1)
# A dtype without fast kernels (float16 on many CPUs: 0.3 GFLOP/s measured on a 2-core
# AMD EPYC, 57 s for one 2048 product) gets a smaller product and no other engine, so a
# roof costs about a second whatever the dtype: the size halves until one product is
# estimated under this.
PROBE_SIZE = 256
MAX_MATMUL_MS = 50.0
# The RNN-shaped engines' sizes: hidden H, batch B, steps T (a GPU gets larger ones).
RNN_SHAPE = {"cpu": (512, 128, 32), "cuda": (2048, 1024, 32)}
SLOW_GFLOP_PER_S = 20.0  # below this in the probe, a dtype has no fast kernels here: n×n alone

Engine = tuple[str, float, Callable[[], object]]  # name, FLOPs of one call, the call


def _matmul_ms(device: str, dtype: str, n: int, config: TimerConfig, stop: StopRule | None = None) -> list[float]:
    a = torch.randn(n, n, device=device).to(DTYPES[dtype])
    b = torch.randn(n, n, device=device).to(DTYPES[dtype])
    return measure([("matmul", lambda: torch.mm(a, b))], config, clock_for(device), stop=stop).phases["matmul"]


def _probe_ms(device: str, dtype: str) -> float:
    return min(_matmul_ms(device, dtype, PROBE_SIZE, TimerConfig(warmup_runs=1, warmup_s=0.0), FixedCount(2)))


def matmul_size(device: str, dtype: str, probe_ms: float | None = None) -> int:
    """The product size for a peak: ``MATMUL_SIZE``, smaller where one would be slow."""
    probe_ms = _probe_ms(device, dtype) if probe_ms is None else probe_ms
    n = MATMUL_SIZE[device]
    while n > PROBE_SIZE and probe_ms * (n / PROBE_SIZE) ** 3 > MAX_MATMUL_MS:
        n //= 2
    return n


def _mm(device: str, dtype: str, m: int, k: int, n: int, name: str) -> Engine:
    a = torch.randn(m, k, device=device).to(DTYPES[dtype])
    b = torch.randn(k, n, device=device).to(DTYPES[dtype])
    return name, 2.0 * m * k * n, lambda: torch.mm(a, b)


def _onednn_linear(dtype: str, m: int, k: int, n: int) -> Engine | None:
    """oneDNN's matmul (torch's mkldnn linear), where this torch has it."""
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if op is None or not torch.backends.mkldnn.is_available():
        return None
    x = torch.randn(m, k).to(DTYPES[dtype])
    w = torch.randn(n, k).to(DTYPES[dtype])
    try:
        op(x, w, None, "none", [], "")
    except (RuntimeError, TypeError, NotImplementedError):
        return None
    return f"oneDNN matmul {m}x{k}x{n}", 2.0 * m * k * n, lambda: op(x, w, None, "none", [], "")


def _lstm(device: str, dtype: str, h: int, b: int, t: int) -> Engine:
    lstm = torch.nn.LSTM(h, h).to(device=device, dtype=DTYPES[dtype])
    x = torch.randn(t, b, h, device=device).to(DTYPES[dtype])
    flops = 2.0 * t * b * 4 * h * (h + h)  # input and recurrent products of the four gates
    return f"nn.LSTM h{h} b{b} t{t}", flops, lambda: lstm(x)


def engines(device: str, dtype: str) -> list[tuple[str, Callable[[], Engine | None]]]:
    """The engines of the compute roof, each built when it is measured (a large shape that does
    not fit is skipped, not the roof); only n×n where the dtype has no fast kernels here."""
    probe_ms = _probe_ms(device, dtype)
    n = matmul_size(device, dtype, probe_ms)
    square: list[tuple[str, Callable[[], Engine | None]]] = [
        ("n×n", lambda: _mm(device, dtype, n, n, n, f"torch.mm {n}x{n}x{n}"))
    ]
    if 2 * PROBE_SIZE**3 / (probe_ms / 1e3) / 1e9 < SLOW_GFLOP_PER_S:
        return square
    h, b, t = RNN_SHAPE[device]
    return [
        *square,
        (
            "input projection",
            lambda: _mm(device, dtype, b * t, h, 4 * h, f"torch.mm {b * t}x{h}x{4 * h} (input projection)"),
        ),
        ("recurrent step", lambda: _mm(device, dtype, b, h, 4 * h, f"torch.mm {b}x{h}x{4 * h} (one recurrent step)")),
        ("oneDNN", lambda: _onednn_linear(dtype, b * t, h, h) if device == "cpu" else None),
        ("nn.LSTM", lambda: _lstm(device, dtype, h, b, t)),
    ]


@dataclass(frozen=True)
class ComputeRoof:
    gflop_per_s: float
    engine: str
    candidates: dict[str, float]  # every engine's best GFLOP/s
    theoretical_gflop_per_s: float | None  # from the machine's own figures, where it tells them


def compute_roof(
    device: str, dtype: str, threads: int, tf32: bool = False, budget_s: float = PEAK_TIMER.budget_s
) -> ComputeRoof:
    """The best GFLOP/s of the engines, under the cases' kernel settings (``bench.measure.backends``:
    with ``tf32`` float32 products may use TF32 tensor cores, as the cases do)."""
    candidates = {}
    with thread_count(threads), kernel_settings(device, "default", tf32), torch.inference_mode():
        for _, make in engines(device, dtype):
            try:  # an engine that cannot run here (out of memory, an op this build lacks) is skipped
                engine = make()
                if engine is None:
                    continue
                name, flops, call = engine
                timer = within(PEAK_TIMER, budget_s)
                best_ms = min(measure([("engine", call)], timer, clock_for(device)).phases["engine"])
            except Exception:
                continue
            finally:
                engine = None  # its tensors go before the next engine's are made
            candidates[name] = flops / (best_ms / 1e3) / 1e9
    if not candidates:
        raise RuntimeError(f"no engine ran on {device} in {dtype}: no compute roof")
    best = max(candidates, key=candidates.__getitem__)
    return ComputeRoof(candidates[best], best, candidates, theoretical_gflop_per_s(device, dtype, threads))


CPUINFO = Path("/proc/cpuinfo")
MAX_FREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")  # kHz, where cpufreq is exposed


def theoretical_gflop_per_s(
    device: str, dtype: str, threads: int, cpuinfo: Path = CPUINFO, max_freq: Path = MAX_FREQ
) -> float | None:
    """Threads × clock × FLOPs per cycle: the highest clock cpufreq gives (else /proc/cpuinfo's),
    and two FMA units as wide as the widest vectors the flags list (a ceiling: a VM's nominal
    clock, and cores with narrower units, give less). None on a GPU or where the machine does
    not say."""
    if device != "cpu":
        return None
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    try:
        mhz: float | None = int(max_freq.read_text()) / 1e3
    except (OSError, ValueError):
        mhz = next((float(line.split(":")[1]) for line in text.splitlines() if line.startswith("cpu MHz")), None)
    flags = set(next((line.split(":")[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    if not mhz:
        return None
    lanes = 16 if "avx512f" in flags else 8 if {"avx2", "fma"} <= flags else 4
    if (dtype == "bfloat16" and "avx512_bf16" in flags) or (dtype == "float16" and "avx512_fp16" in flags):
        lanes *= 2  # native half-precision dot products: twice the values per vector
    elif dtype != "float32":
        return None  # no native half-precision math the flags tell of
    return threads * mhz / 1e3 * lanes * 2 * 2  # GHz × lanes × FMA (2 FLOPs) × 2 units


@dataclass
class RoofCache:
    """The roofs, each measured once per run: compute per (device, dtype, threads, TF32), the
    memory levels per (device, threads), the overhead floor per tiny copy of a case.

    ``budget_s`` caps the sampling time of each roof: a quick look (``--preset quick``, a test's
    tiny sweep) gets quicker, rougher roofs; the default preset's are measured in full."""

    budget_s: float = PEAK_TIMER.budget_s

    compute: dict[tuple[str, str, int, bool], ComputeRoof] = field(default_factory=dict)
    levels: dict[tuple[str, int], tuple[Level, ...]] = field(default_factory=dict)
    floors: dict[Case, tuple[float, float] | None] = field(default_factory=dict)  # (per call, per step) ms
    compute_failed: set[tuple[str, str, int, bool]] = field(default_factory=set)

    def compute_for(self, device: str, dtype: str, threads: int, tf32: bool = False) -> ComputeRoof:
        key = (device, dtype, threads, tf32)
        if key in self.compute_failed:
            raise RuntimeError(f"no compute roof for {key}")
        if key not in self.compute:
            self.compute[key] = compute_roof(device, dtype, threads, tf32, self.budget_s)
        return self.compute[key]

    def get(self, device: str, dtype: str, threads: int, tf32: bool = False) -> float:
        return self.compute_for(device, dtype, threads, tf32).gflop_per_s

    def for_case(self, case: Case) -> float:
        """The compute roof a case's efficiency is measured against."""
        return self.get(case.device, case.dtype, case.threads, case.uses_tf32)

    def roofs_for(self, case: Case) -> Roofs | None:
        """Every roof of ``case``, measured now where not yet (call before workers start); None
        where the compute roof cannot be measured. A failure is kept, not retried: a retry
        would run beside the workers and read a fraction of the machine."""
        try:
            compute = self.compute_for(case.device, case.dtype, case.threads, case.uses_tf32)
        except Exception:
            self.compute_failed.add((case.device, case.dtype, case.threads, case.uses_tf32))
            return None
        key = (case.device, case.threads)
        if key not in self.levels:
            try:
                self.levels[key] = memory_levels(case.device, case.threads, self.budget_s)
            except Exception:
                self.levels[key] = ()
        floor = None
        if not case.user_model:
            tiny = floor_case(case)  # cases with one tiny copy share its floor
            if tiny not in self.floors:
                try:
                    self.floors[tiny] = floor_ms(case, self.budget_s)
                except Exception:
                    self.floors[tiny] = None
            floor = self.floors[tiny]
        per_call, per_step = floor if floor is not None else (0.0, None)
        return Roofs(compute.gflop_per_s, compute.engine, self.levels[key], per_step, per_call)

    def as_dict(self) -> dict[str, object]:
        """For the run JSON: every roof with its engines, levels and floors."""

        def finite(x: float) -> float | None:
            return None if math.isinf(x) else x

        return {
            "compute": {
                f"{d}/{t}/threads={n}" + ("/tf32" if tf32 else ""): {
                    "gflop_per_s": r.gflop_per_s,
                    "engine": r.engine,
                    "candidates": r.candidates,
                    "theoretical_gflop_per_s": r.theoretical_gflop_per_s,
                }
                for (d, t, n, tf32), r in self.compute.items()
            },
            "bandwidth": {
                f"{d}/threads={n}": [
                    {"level": lv.name, "capacity_bytes": finite(lv.capacity_bytes), "gb_per_s": lv.gb_per_s}
                    for lv in levels
                ]
                for (d, n), levels in self.levels.items()
            },
            "floors_ms": {
                c.case_id: {"per_call": f[0], "per_step": f[1]} for c, f in self.floors.items() if f is not None
            },
        }
