"""Is a case's result right? Its outputs and final states against the packed ``module`` reference.

The reference is the same model with the same weights and inputs in packed mode,
which is exact; the differences go to ``max_abs_err`` and ``state_max_abs_err``,
and a report leaves out pairs whose outputs are wrong.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils import _pytree as pytree

from bench.core.timer import TimerConfig, measure
from bench.measure.clocks import clock_for
from bench.measure.usermodels import Unsupported, accepts, build_model, load_factory, output_of
from bench.measure.workload import DTYPES, Workload, as_tuple
from rnnmodels import MODEL_CLASSES


def user_errors(work: Workload) -> tuple[float | None, None]:
    """A user's model against itself built with ``varlen="packed"`` (same weights and
    inputs): outputs at valid positions. None where it has no packed mode to compare with."""
    c = work.case
    if c.varlen == "packed":
        return 0.0, None
    try:
        reference = build_model(c, varlen="packed") if accepts(load_factory(c.model), "varlen") else None
        if reference is not None:
            reference.load_state_dict(work.model.state_dict())
    except (Unsupported, RuntimeError, TypeError):
        return None, None  # no packed mode, or one with other weights: nothing to compare
    if reference is None:
        return None, None
    reference.to(device=c.device, dtype=DTYPES[c.dtype]).train(work.model.training)
    with torch.no_grad():
        out = work.step.forward()
        expected = output_of(reference(work.tokens, work.lengths))
    if out.shape != expected.shape or out.dim() < 2:
        return None, None
    valid = torch.arange(c.seq_len).unsqueeze(1) < work.lengths.unsqueeze(0)  # (L, B)
    if tuple(out.shape[:2]) == (c.batch_size, c.seq_len) and c.batch_size != c.seq_len:
        valid = valid.T  # batch-first output
    elif tuple(out.shape[:2]) != (c.seq_len, c.batch_size):
        return None, None  # neither layout: no way to tell the padding apart
    diff = (out.float() - expected.float()).abs()[valid.to(out.device)]
    return float(diff.max()), None


def errors(work: Workload) -> tuple[float | None, float | None]:
    """Largest differences from the packed ``module`` reference: outputs at
    valid positions, and final states.

    The reference is the same model (same weights, same inputs) in packed
    mode, which is exact; padded bidirectional/stacked models drift from it,
    and padded final states are taken after the padding.
    """
    c = work.case
    if c.user_model:
        return user_errors(work)
    reference = MODEL_CLASSES[c.model](
        c.vocab_size, c.embedding_dim, c.hidden_size, c.num_layers, c.num_dirs, use_pack=True
    )
    reference.load_state_dict(work.model.state_dict())
    reference.to(device=c.device, dtype=DTYPES[c.dtype])
    with torch.no_grad():
        model = work.step.runner if work.step.runner is not None else work.model
        out, state = model(work.tokens, work.lengths)
        expected, expected_state = reference(work.tokens, work.lengths)
    valid = torch.arange(c.seq_len).unsqueeze(1) < work.lengths.unsqueeze(0)  # (L, B)
    out_err = (out.float() - expected.float()).abs()[valid.to(out.device)].max()
    pairs = zip(as_tuple(state), as_tuple(expected_state), strict=True)
    state_err = max(float((s.float() - e.float()).abs().max()) for s, e in pairs)
    return float(out_err), state_err


def extra_columns(work: Workload) -> dict[str, float | None]:
    """The row's columns besides timings: errors against packing, compile time; for a stream,
    errors against a whole-sequence forward, the cold call and that forward's time."""
    out_err, state_err = stream_errors(work) if work.case.streaming else errors(work)
    if work.case.user_model:
        work.count_user_gflop()
    extra = {"max_abs_err": out_err, "state_max_abs_err": state_err, "compile_s": work.compile_s}
    if work.case.streaming:
        extra |= {"cold_call_ms": work.cold_call_ms, "whole_forward_ms": whole_forward_ms(work)}
    return extra


# --- streams ------------------------------------------------------------------------------------

# Sampling one whole-sequence forward per round: short, it is the overhead's denominator only.
WHOLE_FORWARD = TimerConfig(budget_s=0.05, min_samples=3, warmup_runs=1, warmup_s=0.0, rounds=1)


def whole_sequence_model(work: Workload) -> nn.Module:
    """What a stream is checked and its overhead judged against: the eager model over the whole
    sequences (the suite's: ``nn.LSTM``/``nn.GRU`` with the stream's weights; a user's: its own
    ``forward``)."""
    c = work.case
    if c.user_model:
        return work.model
    reference = MODEL_CLASSES[c.model](c.vocab_size, c.embedding_dim, c.hidden_size, c.num_layers, c.num_dirs)
    reference.load_state_dict(work.model.state_dict())
    return reference.to(device=c.device, dtype=DTYPES[c.dtype]).eval()


def stream_errors(work: Workload) -> tuple[float | None, float | None]:
    """The streamed outputs (every chunk's, concatenated) and final state against one forward
    over the whole sequences with the same weights and inputs (every length full)."""
    assert work.step.stream is not None
    with torch.no_grad():
        outputs, state = work.step.stream.chunk_outputs()
        result = whole_sequence_model(work)(work.tokens, work.lengths)
    expected = output_of(result).float()
    # Joined in time as the whole forward lays its outputs out: time-major (dim 0) or batch-first
    # (dim 1); where both give its shape (as many streams as tokens in a chunk and a sequence),
    # the closer one.
    joined = [torch.cat(outputs, dim=d).float() for d in (0, 1) if outputs[0].dim() > d]
    errors = [float((out - expected.to(out.device)).abs().max()) for out in joined if out.shape == expected.shape]
    if not errors:
        return None, None  # a user's step answering in another layout: nothing to compare
    out_err = min(errors)
    expected_state = result[1] if isinstance(result, tuple) and len(result) == 2 else None
    leaves, expected_leaves = pytree.tree_leaves(state), pytree.tree_leaves(expected_state)
    shapes_agree = len(leaves) == len(expected_leaves) > 0 and all(
        isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
        for a, b in zip(leaves, expected_leaves, strict=True)
    )
    if not shapes_agree:
        return out_err, None
    pairs = zip(leaves, expected_leaves, strict=True)
    return out_err, max(float((a.float() - b.float().to(a.device)).abs().max()) for a, b in pairs)


def whole_forward_ms(work: Workload) -> float:
    """The median time of one eager forward over the streams' whole sequences (the overhead's
    denominator: the same for every impl of a shape)."""
    model = whole_sequence_model(work)

    def forward() -> None:
        model(work.tokens, work.lengths)

    m = measure([("fwd", forward)], WHOLE_FORWARD, clock_for(work.case.device))
    return float(np.median(m.total_ms))
