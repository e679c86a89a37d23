"""Checks before anything runs: what only torch can tell (dtypes, length distributions, users' models).

A problem is one ``UsageError`` line before the first case is measured.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from bench.core.cases import Case
from bench.core.errors import UsageError, one_line
from bench.measure.runtimes import refusal
from bench.measure.usermodels import Unsupported, load_factory
from bench.measure.workload import DTYPES, build
from rnnmodels import MODEL_CLASSES, synthetic_batch
from rnnmodels.data import parse_lengths


def dtype_supported(device: str, dtype: str) -> str | None:
    """None if a tiny LSTM runs forward and backward in ``dtype`` here, else why not."""
    try:
        model = MODEL_CLASSES["lstm"](4, 4, 4, 1, 2).to(device=device, dtype=DTYPES[dtype])
        tokens, lengths = synthetic_batch(2, 3, 4, "full")
        out, _ = model(tokens.to(device), lengths)
        out.float().sum().backward()
    except (RuntimeError, NotImplementedError, TypeError) as e:
        return str(e).splitlines()[0] if str(e) else e.__class__.__name__
    return None


def check_user_model(reference: str, cases: Sequence[Case]) -> None:
    """Import a user's factory and run one forward of a small CPU copy of the first of its
    cases that it builds: a broken reference or model is one line before anything runs."""
    load_factory(reference)
    for case in cases:
        small = dataclasses.replace(
            case,
            device="cpu",
            dtype="float32",
            mode="inference",
            batch_size=2,
            seq_len=min(case.seq_len, 4),
            lengths="full",
            threads=1,
            tf32="off",
            chunk=1,
        )
        try:
            work = build(small)
        except Unsupported:
            continue  # its rows will say so; try the next case
        except Exception as e:
            raise UsageError(f"--model {reference}: building {case.case_id} failed ({one_line(e)})") from None
        try:
            with torch.no_grad():
                work.step.forward()
        except Exception as e:
            raise UsageError(f"--model {reference}: forward failed for {case.case_id} ({one_line(e)})") from None
        return


def check_cases(cases: Sequence[Case], devices_here: bool = True) -> None:
    """What only torch can check, before anything runs: the runtimes' packages, length
    distributions, dtypes, user models. ``devices_here`` False (a launcher on a login node):
    dtypes are checked on this machine's own devices only; a job checks its GPU's."""
    missing = refusal(c.impl for c in cases)
    if missing:
        raise UsageError(missing)
    for seq_len, chunk in sorted({(c.seq_len, c.chunk) for c in cases if c.streaming}):
        if seq_len % chunk:
            raise UsageError(
                f"--chunk {chunk} does not divide --seq-len {seq_len}: every call of a stream takes a whole chunk"
            )
    for seq_len, lengths in sorted({(c.seq_len, c.lengths) for c in cases}):
        try:
            parse_lengths(lengths, seq_len)
        except ValueError as e:
            raise UsageError(f"--lengths: {e}") from None
    for device, dtype in sorted({(c.device, c.dtype) for c in cases}):
        if not devices_here and device == "cuda" and not torch.cuda.is_available():
            continue
        why = dtype_supported(device, dtype)
        if why:
            raise UsageError(f"--dtype: {dtype} does not run on {device} here ({why})")
    for reference in sorted({c.model for c in cases if c.user_model}):
        check_user_model(reference, [c for c in cases if c.model == reference])
