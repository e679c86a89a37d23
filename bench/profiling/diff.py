"""Compare two torch.profiler op tables: which operators' self time differs most."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.profiling.torchprof import ACTIVE


def op_diff(a_csv: Path, b_csv: Path) -> pd.DataFrame:
    """Per-step self CPU time (ms) of each operator in A and B, largest |B - A| first."""
    a, b = pd.read_csv(a_csv), pd.read_csv(b_csv)
    merged = a.merge(b, on="name", how="outer", suffixes=("_a", "_b")).fillna(0)
    out = pd.DataFrame(
        {
            "operator": merged["name"],
            "a_ms_per_step": merged["self_cpu_us_a"] / ACTIVE / 1e3,
            "b_ms_per_step": merged["self_cpu_us_b"] / ACTIVE / 1e3,
            "a_calls": merged["calls_a"].astype(int),
            "b_calls": merged["calls_b"].astype(int),
        }
    )
    out["b_minus_a_ms"] = out["b_ms_per_step"] - out["a_ms_per_step"]
    # Labelled ranges (forward/backward) and profiler steps hold no time of their own worth ranking.
    out = out[~out["operator"].str.startswith(("ProfilerStep", "forward", "backward"))]
    return out.reindex(out["b_minus_a_ms"].abs().sort_values(ascending=False).index)
