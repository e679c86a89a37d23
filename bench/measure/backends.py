"""The kernel settings a case runs under: cuDNN/oneDNN on or off, and TF32.

One function sets them, for the cases and for the matmul peak alike, so that
an efficiency compares like with like. ``torch.backends.cudnn.flags()`` is not
used: it also switches cuDNN's TF32 on (and benchmark mode off) whatever the
caller had, which made float32 cuDNN RNNs run on TF32 tensor cores while the
peak was an FP32 matmul.

TF32 applies to float32 on CUDA only; it is off unless the case asks for it
(``--tf32 on``), so that float32 means float32. The legacy ``allow_tf32``
switches are used, the only ones that exist on every torch we support (2.1 on).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def _on(value: bool) -> str:
    return "on" if value else "off"


@contextlib.contextmanager
def kernel_settings(device: str, backend: str, tf32: bool) -> Iterator[None]:
    """``backend="native"`` turns cuDNN (GPU) or oneDNN (CPU) off; ``tf32`` sets
    cuDNN's and cuBLAS's TF32 switches together. Everything is restored after."""
    enabled = backend != "native"
    if device == "cuda":
        cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
        saved = (cudnn.enabled, cudnn.allow_tf32, matmul.allow_tf32)
        cudnn.enabled, cudnn.allow_tf32, matmul.allow_tf32 = enabled, tf32, tf32
        try:
            yield
        finally:
            cudnn.enabled, cudnn.allow_tf32, matmul.allow_tf32 = saved
    else:
        saved_onednn = torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = enabled
        try:
            yield
        finally:
            torch.backends.mkldnn.enabled = saved_onednn


def settings_now(device: str) -> str:
    """The settings as torch reports them at this moment (a row's ``kernel_settings`` column).

    Read back, not copied from what was asked, so the column records what ran.
    """
    if device == "cuda":
        cudnn = torch.backends.cudnn
        return (
            f"cudnn={_on(cudnn.enabled and cudnn.is_available())} cudnn_tf32={_on(cudnn.allow_tf32)} "
            f"matmul_tf32={_on(torch.backends.cuda.matmul.allow_tf32)} cudnn_benchmark={_on(cudnn.benchmark)} "
            f"cudnn_deterministic={_on(cudnn.deterministic)}"
        )
    mkldnn = torch.backends.mkldnn
    return f"onednn={_on(mkldnn.enabled and mkldnn.is_available())}"
