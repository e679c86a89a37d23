"""The GPU section: what the kernel settings cost or give, and the memory each case held."""

from __future__ import annotations

import pandas as pd

from bench.report.document import Blocks, Heading, Paragraph
from bench.report.sections_versus import ratio_summary
from bench.report.slices import missing_note, ok_rows, pairs, short_label

TITLE = "GPU: kernel settings and memory"


def _ratio_sentence(p: pd.DataFrame, what: str) -> str:
    return ratio_summary(p["median_ms_a"] / p["median_ms_b"], what)


def gpu(df: pd.DataFrame) -> Blocks:
    """TF32 on vs off, bfloat16 vs float32 and cuDNN off vs on, on CUDA rows; the allocator peaks."""
    cuda = ok_rows(df)[lambda d: d["device"] == "cuda"]
    if cuda.empty:
        return [Heading(TITLE), Paragraph(missing_note("CUDA cases", "--device cuda"))]
    found = []
    tf32 = pairs(cuda, "tf32", "on", "off")
    if not tf32.empty:
        found.append(_ratio_sentence(tf32, "TF32 on / off (float32)"))
    low = pairs(cuda[cuda["tf32"] == "off"], "dtype", "bfloat16", "float32")
    if not low.empty:
        found.append(_ratio_sentence(low, "bfloat16 / float32 (TF32 off)"))
    native = pairs(cuda, "backend", "native", "default")
    if not native.empty:
        found.append(_ratio_sentence(native, "cuDNN off / on"))
    if not found:
        found.append(missing_note("CUDA cases that differ only in TF32, dtype or backend", "--tf32 off,on"))
    settings = sorted(set(cuda["kernel_settings"]) - {""})
    if settings:
        found.append("Kernel settings as torch reported them during the cases: " + "; ".join(settings) + ".")
    mem = cuda.dropna(subset=["peak_mem_mb"])
    if not mem.empty:
        top = mem.loc[mem["peak_mem_mb"].idxmax()]
        found.append(
            f"Allocator peak per case (model, inputs, activations; measured alone, not side by side): "
            f"{mem['peak_mem_mb'].min():.0f} to {top['peak_mem_mb']:.0f} MiB, the largest for "
            f"{short_label(top)} ({top['dtype']})."
        )
    return [Heading(TITLE), *(Paragraph(s) for s in found)]
