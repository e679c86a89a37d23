"""Turn a Case into something to time: model, inputs and step phases.

Everything is built here, once per case, outside the timed region. The phases
are what the timer brackets: ``fwd`` for inference; ``fwd`` then ``bwd`` for
training (timed separately, like fastrnns and DeepBench).

``impl`` picks what runs: ``module`` (the model as it is), ``cells`` (the
model's cell loop over the same weights) or ``compiled`` (``torch.compile`` of
the model; ``compile`` runs the phases once so that the compile time is kept
apart, in ``compile_s``, and out of the samples).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.errors import UsageError
from bench.results import WorkFacts
from bench.spec import Case
from bench.timer import Phase
from rnnmodels import MODEL_CLASSES, RecurrentModel, forward_flops, padding_fraction, synthetic_batch
from rnnmodels.data import parse_lengths
from rnnmodels.flops import training_flops

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
INPUT_SEED = 0
WEIGHT_SEED = 0


def _as_tuple(state: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


@contextlib.contextmanager
def backend_flags(device: str, backend: str) -> Iterator[None]:
    """``native`` turns off cuDNN (GPU) or oneDNN (CPU) for the case."""
    enabled = backend != "native"
    flags = torch.backends.cudnn.flags if device == "cuda" else torch.backends.mkldnn.flags
    with warnings.catch_warnings():
        # mkldnn.flags() also resets oneDNN's TF32 switch and warns about Intel GPUs.
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        with flags(enabled=enabled):
            yield


@contextlib.contextmanager
def thread_count(threads: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class Workload:
    """A built case: the model, its inputs and the phases to time."""

    case: Case
    model: RecurrentModel  # the eager model; its weights are the reference's too
    tokens: torch.Tensor  # (B, L) on the case's device
    lengths: torch.Tensor  # (B,) on the CPU, where pack_padded_sequence wants it
    phases: list[Phase] = field(default_factory=list)
    loss: torch.Tensor | None = None
    runner: Callable[..., Any] | None = None  # what the phases call: the model, or its compiled form
    compile_s: float | None = None

    @property
    def valid_tokens(self) -> int:
        return int(self.lengths.sum())

    @property
    def padding_fraction(self) -> float:
        return padding_fraction(self.lengths, self.case.seq_len)

    @property
    def gflop(self) -> float:
        c = self.case
        fwd = forward_flops(c.model, self.valid_tokens, c.embedding_dim, c.hidden_size, c.num_layers, c.num_dirs)
        return (training_flops(fwd) if c.mode == "training" else fwd) / 1e9

    def facts(self) -> WorkFacts:
        return WorkFacts(self.valid_tokens, self.padding_fraction, self.gflop)

    @property
    def step_model(self) -> Callable[..., Any]:
        # Not `runner or model`: a compiled module's truth test asks the model for len().
        return self.runner if self.runner is not None else self.model

    def forward(self) -> torch.Tensor:
        out, _ = self.step_model(self.tokens, self.lengths)
        return out

    def compile(self) -> None:
        """For ``impl=compiled``: compile now, timing the first run of the phases."""
        if self.case.impl != "compiled":
            return
        # A fresh start per case: dynamo's per-function recompile limit would
        # otherwise make later cases fall back to eager without a word.
        torch._dynamo.reset()
        self.runner = torch.compile(self.model, fullgraph=False, dynamic=False)
        start = time.perf_counter()
        for _, step in self.phases:
            self.before_sample()
            step()
        if self.case.device == "cuda":
            torch.cuda.synchronize()
        self.compile_s = time.perf_counter() - start

    def _train_forward(self) -> None:
        # The sum keeps every output in the graph; float() so bf16 sums don't saturate.
        self.loss = self.forward().float().sum()

    def _train_backward(self) -> None:
        assert self.loss is not None
        self.loss.backward()
        self.loss = None

    def before_sample(self) -> None:
        if self.case.mode == "training":
            self.model.zero_grad(set_to_none=True)

    def errors(self) -> tuple[float, float]:
        """Largest differences from the packed ``module`` reference: outputs at
        valid positions, and final states.

        The reference is the same model (same weights, same inputs) in packed
        mode, which is exact; padded bidirectional/stacked models drift from it,
        and padded final states are taken after the padding.
        """
        c = self.case
        reference = MODEL_CLASSES[c.model](
            c.vocab_size, c.embedding_dim, c.hidden_size, c.num_layers, c.num_dirs, use_pack=True
        )
        reference.load_state_dict(self.model.state_dict())
        reference.to(device=c.device, dtype=DTYPES[c.dtype])
        with torch.no_grad():
            out, state = self.step_model(self.tokens, self.lengths)
            expected, expected_state = reference(self.tokens, self.lengths)
        valid = torch.arange(c.seq_len).unsqueeze(1) < self.lengths.unsqueeze(0)  # (L, B)
        out_err = (out.float() - expected.float()).abs()[valid.to(out.device)].max()
        pairs = zip(_as_tuple(state), _as_tuple(expected_state), strict=True)
        state_err = max(float((s.float() - e.float()).abs().max()) for s, e in pairs)
        return float(out_err), state_err

    def extra_columns(self) -> dict[str, float | None]:
        """The row's columns besides timings: errors against packing, compile time."""
        out_err, state_err = self.errors()
        return {"max_abs_err": out_err, "state_max_abs_err": state_err, "compile_s": self.compile_s}

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """Threads, backend flags and (for inference) inference mode around timing."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(thread_count(self.case.threads))
            stack.enter_context(backend_flags(self.case.device, self.case.backend))
            if self.case.mode == "inference":
                stack.enter_context(torch.inference_mode())
            if self.runner is None:
                self.compile()  # under the flags the timing uses: they shape the graph
            yield


def build(case: Case) -> Workload:
    """Model (seeded weights) and a seeded batch for ``case``, on its device."""
    torch.manual_seed(WEIGHT_SEED)
    model_class = MODEL_CLASSES[case.model]
    model = model_class(
        case.vocab_size,
        case.embedding_dim,
        case.hidden_size,
        case.num_layers,
        case.num_dirs,
        varlen=case.varlen,  # type: ignore[arg-type]
        impl="cells" if case.impl == "cells" else "module",
    )
    model = model.to(device=case.device, dtype=DTYPES[case.dtype])
    model.train(case.mode == "training")
    tokens, lengths = synthetic_batch(case.batch_size, case.seq_len, case.vocab_size, case.lengths, seed=INPUT_SEED)
    work = Workload(case, model, tokens.to(case.device), lengths)
    if case.mode == "training":
        work.phases = [("fwd", work._train_forward), ("bwd", work._train_backward)]
    else:
        work.phases = [("fwd", work.forward)]
    return work


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


def check_cases(cases: Sequence[Case]) -> None:
    """What only torch can check, before anything runs: length distributions and dtypes."""
    for seq_len, lengths in sorted({(c.seq_len, c.lengths) for c in cases}):
        try:
            parse_lengths(lengths, seq_len)
        except ValueError as e:
            raise UsageError(f"--lengths: {e}") from None
    for device, dtype in sorted({(c.device, c.dtype) for c in cases}):
        why = dtype_supported(device, dtype)
        if why:
            raise UsageError(f"--dtype: {dtype} does not run on {device} here ({why})")
