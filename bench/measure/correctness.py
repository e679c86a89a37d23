"""Is a case's result right? Its outputs and final states against the packed ``module`` reference.

The reference is the same model with the same weights and inputs in packed mode,
which is exact; the differences go to ``max_abs_err`` and ``state_max_abs_err``,
and a report leaves out pairs whose outputs are wrong.
"""

from __future__ import annotations

import torch

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
    """The row's columns besides timings: errors against packing, compile time."""
    out_err, state_err = errors(work)
    if work.case.user_model:
        work.count_user_gflop()
    return {"max_abs_err": out_err, "state_max_abs_err": state_err, "compile_s": work.compile_s}
