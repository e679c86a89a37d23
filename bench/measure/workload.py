"""Turn a Case into something to time: model, inputs and step phases.

Everything is built here, once per case, outside the timed region. The phases
are what the timer brackets: ``fwd`` for inference; ``fwd`` then ``bwd`` for
training (timed separately, like fastrnns and DeepBench).

``impl`` picks what runs: ``module`` (the model as it is), ``cells`` (the
model's cell loop over the same weights), ``compiled`` (``torch.compile`` of
the model; ``prepare`` runs the phases once so that the compile time is kept
apart, in ``compile_s``, and out of the samples), or another runtime
(``onnxruntime``, ``cudagraph``, ``quantized``: ``bench.measure.runtimes``), made
ready outside the timed region with its time in ``compile_s`` too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.core.cases import Case
from bench.core.timer import Phase, StopRule, TimeBudget, TimerConfig
from bench.measure import runtimes, streaming
from bench.measure.backends import kernel_settings, settings_now
from bench.measure.usermodels import (
    Unsupported,
    build_model,
    counted_gflop,
    output_of,
)
from bench.records.outcomes import WorkFacts
from rnnmodels import MODEL_CLASSES, RecurrentModel, forward_flops, padding_fraction, synthetic_batch
from rnnmodels.flops import training_flops

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
INPUT_SEED = 0
WEIGHT_SEED = 0


def as_tuple(state: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


@contextlib.contextmanager
def thread_count(threads: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class Step:
    """What the timed phases touch: the model (or its compiled form), the batch,
    and the loss between a training step's forward and backward.

    The phases are this object's bound methods, and it holds none of them, nor
    the ``Workload``: there is no reference cycle, so a case's model, tensors
    and autograd graph are freed the moment its workload is dropped, without
    waiting for the garbage collector (which the timer pauses).
    """

    model: nn.Module  # the suite's RecurrentModel, or a user's model (bench.measure.usermodels)
    tokens: torch.Tensor
    lengths: torch.Tensor
    # What runs instead of the model, called like it: the compiled model, an ONNX Runtime session,
    # the int8 copy, a CUDA graph's replay (bench.measure.runtimes). None: the model itself.
    runner: Callable[..., Any] | None = None
    loss: torch.Tensor | None = None
    stream: streaming.Stream | None = None  # mode=stream: the streams and their chunks

    def stream_call(self) -> None:
        assert self.stream is not None
        self.stream.call()

    def forward(self) -> torch.Tensor:
        # Not `runner or model`: a compiled module's truth test asks the model for len().
        model = self.runner if self.runner is not None else self.model
        return output_of(model(self.tokens, self.lengths))

    def train_forward(self) -> None:
        # The sum keeps every output in the graph; float() so bf16 sums don't saturate.
        self.loss = self.forward().float().sum()

    def train_backward(self) -> None:
        assert self.loss is not None
        loss, self.loss = self.loss, None  # dropped even if backward fails: it holds the graph
        loss.backward()


@dataclass
class Workload:
    """A built case: the model, its inputs and the phases to time."""

    case: Case
    step: Step
    compile_s: float | None = None
    user_gflop: float | None = None  # a user model's FLOPs, as FlopCounterMode counted one step
    cold_call_ms: float | None = None  # mode=stream: the first call after the model was built
    prepared: bool = False

    @property
    def model(self) -> nn.Module:
        return self.step.model  # the eager model; its weights are the reference's too

    @property
    def tokens(self) -> torch.Tensor:
        return self.step.tokens  # (B, L) on the case's device

    @property
    def lengths(self) -> torch.Tensor:
        return self.step.lengths  # (B,) on the CPU, where pack_padded_sequence wants it

    @property
    def phases(self) -> list[Phase]:
        """``fwd`` for inference; ``fwd`` then ``bwd`` for training; ``call`` for a stream."""
        if self.case.streaming:
            return [("call", self.step.stream_call)]
        if self.case.mode == "training":
            return [("fwd", self.step.train_forward), ("bwd", self.step.train_backward)]
        return [("fwd", self.step.forward)]

    @property
    def valid_tokens(self) -> int:
        """Tokens of one step: the batch's valid ones; a stream call's chunk of every stream."""
        if self.case.streaming:
            return self.case.batch_size * self.case.chunk
        return int(self.lengths.sum())

    @property
    def padding_fraction(self) -> float:
        return 0.0 if self.case.streaming else padding_fraction(self.lengths, self.case.seq_len)

    @property
    def gflop(self) -> float | None:
        """Useful work of one step: the formulas' count over valid tokens for the suite's
        models; for a user's model what FlopCounterMode counted (None: nothing counted)."""
        c = self.case
        if c.user_model:
            return self.user_gflop
        fwd = forward_flops(c.model, self.valid_tokens, c.embedding_dim, c.hidden_size, c.num_layers, c.num_dirs)
        return (training_flops(fwd) if c.mode == "training" else fwd) / 1e9

    def facts(self) -> WorkFacts:
        return WorkFacts(self.valid_tokens, self.padding_fraction, self.gflop)

    def prepare(self) -> None:
        """Make what is built under the timing's settings: ``compiled`` compiles (its first run
        of the phases timed), ``cudagraph`` captures its graph; a stream opens and makes its
        first call (timed: ``cold_call_ms``)."""
        self.prepared = True
        if self.case.streaming:
            self._open_stream()
            return
        if self.case.impl == "cudagraph":
            self.step.runner, self.compile_s = runtimes.capture(self.model, self.tokens, self.lengths)
            return
        if self.case.impl != "compiled":
            return
        # A fresh start per case: dynamo's per-function recompile limit would
        # otherwise make later cases fall back to eager without a word.
        torch._dynamo.reset()
        self.step.runner = torch.compile(self.model, fullgraph=False, dynamic=False)
        start = time.perf_counter()
        for _, step in self.phases:
            self.before_sample()
            step()
        if self.case.device == "cuda":
            torch.cuda.synchronize()
        self.compile_s = time.perf_counter() - start

    def _open_stream(self) -> None:
        stream, ready_s = streaming.open_stream(self.case, self.model, self.step.runner, self.tokens)
        self.step.stream = stream
        start = time.perf_counter()
        stream.call()  # the cold call: a compiled step compiles in it
        if self.case.device == "cuda":
            torch.cuda.synchronize()
        cold_s = time.perf_counter() - start
        self.cold_call_ms = cold_s * 1e3
        if ready_s is not None:
            self.compile_s = ready_s
        elif self.case.impl == "compiled":
            self.compile_s = cold_s

    def kernel_settings(self) -> str:
        """The row's ``kernel_settings``: torch's (read back now), or the runtime's own."""
        if self.case.impl == "onnxruntime":
            source = self.step.stream.step if self.step.stream is not None else self.step.runner
            return str(getattr(source, "settings", ""))  # torch's kernels do not run
        settings = settings_now(self.case.device)
        if self.case.impl == "quantized":
            settings += " " + runtimes.quantized_settings()
        if self.case.impl == "cudagraph":
            settings += " cuda_graph=replay"
        return settings

    def close(self) -> None:
        """Drop what outlives the workload elsewhere: the pending loss, and dynamo's
        compiled code, whose caches refer to the compiled model."""
        self.step.loss = None
        self.step.runner = None
        self.step.stream = None
        if self.case.impl == "compiled":
            torch._dynamo.reset()

    def stop_rule(self, config: TimerConfig) -> StopRule | None:
        """How long the case samples: to the precision target (None: ``measure``'s default), or,
        for a stream, its whole budget: a tail percentile wants calls, not a precise median."""
        if self.case.streaming:
            return TimeBudget(config.budget_s, min_runs=config.min_samples, max_runs=config.max_samples)
        return None

    def before_sample(self) -> None:
        if self.case.mode == "training":
            self.model.zero_grad(set_to_none=True)

    def count_user_gflop(self) -> None:
        """For a user's model: count one step's FLOPs (forward, and backward when training).

        With cuDNN/oneDNN off for the count: FlopCounterMode has no formula for their
        fused RNN kernels, while torch's native RNN kernels are matrix products it counts
        (the same math; on rnnmodels' models the count equals the formulas, tested).
        """

        def step() -> None:
            if self.case.streaming:  # one call's work, by the eager model (a runtime's is unseen)
                self.model.stream_step(self.tokens[:, : self.case.chunk], None)
                return
            self.before_sample()
            for _, run in self.phases:
                run()

        # The eager model's operations: an ONNX Runtime session or a graph replay does no torch
        # matmul the counter could see.
        runner, self.step.runner = self.step.runner, None
        try:
            with kernel_settings(self.case.device, "native", self.case.uses_tf32):
                self.user_gflop = counted_gflop(step)
        finally:
            self.step.runner = runner

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """Threads, kernel settings (backend, TF32) and (for inference) inference mode around timing."""
        c = self.case
        with contextlib.ExitStack() as stack:
            stack.enter_context(thread_count(c.threads))
            stack.enter_context(kernel_settings(c.device, c.backend, tf32=c.uses_tf32))
            if c.mode != "training":
                stack.enter_context(torch.inference_mode())
            if not self.prepared:
                self.prepare()  # under the settings the timing uses: they shape the graph
            yield


def build(case: Case) -> Workload:
    """Model (seeded weights) and a seeded batch for ``case``, on its device; for the
    ONNX Runtime and int8 impls, their runner too (Unsupported: the impl cannot run the case)."""
    why = runtimes.why_unsupported(case) or streaming.why_unsupported(case)
    if why:
        raise Unsupported(why)
    torch.manual_seed(WEIGHT_SEED)
    if case.user_model:
        if case.impl == "cells":
            raise Unsupported("impl=cells is the suite's own cell loop; a user's model runs as it is (module)")
        model = build_model(case)
    else:
        model = _suite_model(case)
    model = model.to(device=case.device, dtype=DTYPES[case.dtype])
    model.train(case.mode == "training")
    tokens, lengths = synthetic_batch(case.batch_size, case.seq_len, case.vocab_size, case.lengths, seed=INPUT_SEED)
    work = Workload(case, Step(model, tokens.to(case.device), lengths))
    if case.streaming:
        streaming.step_of(model)  # Unsupported, naming the contract, for a model that cannot stream
    if case.impl == "quantized":
        work.step.runner, work.compile_s = runtimes.quantize(model)
    elif case.impl == "onnxruntime" and not case.streaming:
        work.step.runner, work.compile_s = runtimes.onnx_runner(model, case, work.tokens, work.lengths)
    return work


def _suite_model(case: Case) -> RecurrentModel:
    model_class = MODEL_CLASSES[case.model]
    return model_class(
        case.vocab_size,
        case.embedding_dim,
        case.hidden_size,
        case.num_layers,
        case.num_dirs,
        # ONNX Runtime's exact path is the padded graph given sequence_lens (bench.measure.onnxexport).
        varlen="padded" if case.impl == "onnxruntime" and case.varlen == "exact" else case.varlen,  # type: ignore[arg-type]
        impl="cells" if case.impl == "cells" else "module",
    )
