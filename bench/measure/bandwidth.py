"""The bandwidth roofs: one per memory level (L1, L2, L3, DRAM; on a GPU L2 and HBM), measured.

The kernel reads one buffer over and over: ``sum(x.expand(k, n), dim=1)`` is k row sums
over a stride-0 view, so every row reads the same n values, from the level they fit in,
in one call (no per-call overhead in the figure), each thread reading its own rows.
The buffer is sized well inside each level (half a private cache, a quarter of a shared
one) and well past the last (four times it, at least 256 MiB), and k so that one call
reads about 256 MiB. Measured on the dev VM (AMD EPYC, 2 threads) this gives flat
plateaus: ~400 GB/s up to 24 KiB, ~235 GB/s to 512 KiB, ~175 GB/s at 4-8 MiB, ~35 GB/s
past 256 MiB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.core.roofline import Level
from bench.core.timer import TimerConfig, measure, within
from bench.measure.clocks import clock_for
from bench.measure.workload import thread_count

READ_BYTES = 256 * 2**20  # read per timed call
MIN_MEMORY_PROBE = 256 * 2**20
PROBE_TIMER = TimerConfig(target_rel_ci=0.02, min_samples=6, max_samples=40, budget_s=0.3, warmup_s=0.05)
CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")


@dataclass(frozen=True)
class Cache:
    """One cache level as the machine reports it."""

    name: str  # L1, L2, L3
    size_bytes: int
    private: bool  # one per core (counted once per thread), or shared


def _size(text: str) -> int:
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    text = text.strip()
    return int(text[:-1]) * units[text[-1]] if text and text[-1] in units else int(text)


def cpu_caches(cache_dir: Path = CACHE_DIR) -> list[Cache]:
    """The data caches of CPU 0 from sysfs, smallest first; [] where sysfs does not say. A cache
    is private (one per core) when only CPU 0 or its SMT siblings share it."""
    try:
        siblings = (cache_dir.parent / "topology" / "thread_siblings_list").read_text().strip()
    except OSError:
        siblings = "0"
    caches = []
    for index in sorted(cache_dir.glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            level = int((index / "level").read_text())
            size = _size((index / "size").read_text())
            shared = (index / "shared_cpu_list").read_text().strip()
        except (OSError, ValueError):
            continue
        if kind in ("Data", "Unified"):
            caches.append(Cache(f"L{level}", size, private=shared in ("0", siblings)))
    return sorted(caches, key=lambda c: c.size_bytes)


def gpu_caches() -> list[Cache]:
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    size = int(getattr(props, "L2_cache_size", 0) or 0)
    return [Cache("L2", size, private=False)] if size else []


def probe_bytes(cache: Cache) -> int:
    """A buffer well inside ``cache``: half a private cache, a quarter of a shared one."""
    return cache.size_bytes // (2 if cache.private else 4)


def read_gb_per_s(device: str, n_bytes: int, budget_s: float = PROBE_TIMER.budget_s) -> float:
    """Best-sample read bandwidth over a buffer of ``n_bytes`` (see the module docstring)."""
    n = max(256, n_bytes // 4)
    x = torch.rand(n, device=device)
    k = max(1, READ_BYTES // (n * 4))
    rows = x.expand(k, n)
    out = torch.empty(k, device=device)
    m = measure([("read", lambda: torch.sum(rows, dim=1, out=out))], within(PROBE_TIMER, budget_s), clock_for(device))
    return k * n * 4 / (min(m.phases["read"]) / 1e3) / 1e9


def memory_levels(device: str, threads: int, budget_s: float = PROBE_TIMER.budget_s) -> tuple[Level, ...]:
    """Each cache level and main memory with its measured bandwidth at ``threads`` threads;
    capacities are what the threads hold together (a private cache once per thread). None where
    the machine names no cache: main memory alone would charge cached weights at its bandwidth."""
    caches = gpu_caches() if device == "cuda" else cpu_caches()
    if not caches:
        return ()
    memory = "HBM" if device == "cuda" else "DRAM"
    levels = []
    with thread_count(threads), torch.inference_mode():
        for cache in caches:
            capacity = cache.size_bytes * (threads if cache.private and device == "cpu" else 1)
            levels.append(Level(cache.name, capacity, read_gb_per_s(device, probe_bytes(cache), budget_s)))
        largest = max((c.size_bytes for c in caches), default=0)
        probe = max(4 * largest, MIN_MEMORY_PROBE)
        levels.append(Level(memory, math.inf, read_gb_per_s(device, probe, budget_s)))
    return tuple(levels)
