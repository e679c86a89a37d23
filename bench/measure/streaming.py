"""Streaming inference (``mode=stream``): each call feeds every stream its next chunk, the state carried.

A case's ``batch_size`` streams each hold a sequence of ``seq_len`` tokens, fed ``chunk`` tokens
per call; a call is one timed sample. After the last chunk the streams start over from their
initial state (a new utterance), so a long sampling window streams the sequences again and again.
The chunks are cut before timing (no slicing inside a call).

What runs a call, by ``impl``:

* ``module``, ``cells``, ``quantized`` and a user's model: the model's ``stream_step(tokens,
  state) -> (outputs, state)`` (docs/user-models.md, "Streaming"); ``state`` None is the start;
* ``compiled``: ``torch.compile`` of that method (compiled by the first call, kept in ``compile_s``);
* ``cudagraph``: one graph per chunk size, captured on static buffers: a call copies the chunk
  in and replays, and the graph itself copies the new state over the old, so nothing is
  allocated inside a call (``GraphStep``);
* ``onnxruntime``: the step exported with the state as graph inputs and outputs (``OnnxStep``;
  the CPU only here).
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils import _pytree as pytree

from bench.core.cases import Case
from bench.core.errors import one_line
from bench.measure.usermodels import Unsupported

StepFn = Callable[[torch.Tensor, Any], tuple[Any, Any]]
CONTRACT = "stream_step(tokens, state) -> (outputs, state) (docs/user-models.md, Streaming)"


def why_unsupported(case: Case) -> str | None:
    """Why a stream case cannot run at all (None: it may)."""
    if not case.streaming:
        return None
    if case.bidirectional and not case.user_model:
        return "a bidirectional model cannot stream: its reverse direction starts at the end of the sequence"
    if case.impl == "onnxruntime" and case.device != "cpu":
        return "ONNX Runtime streaming runs on the CPU here (its CUDA path binds whole batches, not states)"
    return None


def step_of(model: nn.Module) -> StepFn:
    """The model's ``stream_step``; Unsupported naming the contract where it has none."""
    step = getattr(model, "stream_step", None)
    if not callable(step):
        raise Unsupported(f"the model cannot stream: it has no {CONTRACT}")
    return step


def tensor_leaves(state: Any) -> list[torch.Tensor]:
    """The state's tensors; Unsupported naming the contract where it holds anything else (the
    graph and ONNX steps copy and feed states as tensors)."""
    leaves = pytree.tree_leaves(state)
    if not leaves or not all(isinstance(leaf, torch.Tensor) for leaf in leaves):
        kinds = ", ".join(sorted({type(leaf).__name__ for leaf in leaves})) or "nothing"
        raise Unsupported(f"the stream's state holds {kinds}, not only tensors: {CONTRACT}")
    return leaves


def chunks_of(tokens: torch.Tensor, chunk: int) -> list[torch.Tensor]:
    """``(B, L)`` tokens as the calls' ``(B, chunk)`` pieces, each contiguous (a compiled step's
    guards and a graph's copy see the same layout every call)."""
    return [piece.contiguous() for piece in tokens.split(chunk, dim=1)]


def outputs_of(result: Any) -> torch.Tensor:
    """The outputs tensor of a step's outputs (a tensor, or a tuple whose first item is one)."""
    out = result[0] if isinstance(result, (tuple, list)) else result
    if not isinstance(out, torch.Tensor):
        raise Unsupported(f"stream_step's outputs are {type(out).__name__}, not a tensor: {CONTRACT}")
    return out


class Stream:
    """``batch_size`` streams and the chunks of their sequences; ``call`` feeds the next chunk.

    ``initial()`` is a sequence's start state (None: the model's own); ``as_torch`` turns a
    step's (outputs, state) into torch tensors where the step answers in something else.
    """

    def __init__(
        self,
        step: StepFn,
        chunks: list[Any],
        initial: Callable[[], Any] = lambda: None,
        as_torch: Callable[[Any, Any], tuple[torch.Tensor, Any]] | None = None,
    ) -> None:
        self.step = step
        self.chunks = chunks
        self.initial = initial
        self.as_torch = as_torch
        self.position = 0
        self.state: Any = initial()

    def call(self) -> None:
        """One timed sample: every stream's next chunk; the next sequence begins after the last."""
        if self.position == len(self.chunks):
            self.position, self.state = 0, self.initial()
        _, self.state = self.step(self.chunks[self.position], self.state)
        self.position += 1

    def whole_sequence(self) -> tuple[torch.Tensor, Any]:
        """(outputs of every chunk concatenated in time, the final state) from the initial state,
        untimed; the stream's next call starts a sequence again."""
        outputs, final = self.chunk_outputs()
        first = self.chunks[0]
        return torch.cat(outputs, dim=time_dim(outputs[0], tuple(first.shape))), final

    def chunk_outputs(self) -> tuple[list[torch.Tensor], Any]:
        """(every chunk's outputs, the final state) of one whole sequence from the initial state,
        untimed, as torch tensors; the stream's next call starts a sequence again."""
        state, outputs = self.initial(), []
        for piece in self.chunks:
            out, state = self.step(piece, state)
            if self.as_torch is not None:
                out, _ = self.as_torch(out, state)
            outputs.append(outputs_of(out).clone())  # a graph's output buffer is rewritten by the next replay
        if self.as_torch is not None:
            _, state = self.as_torch(None, state)
        final = pytree.tree_map(lambda t: t.clone() if isinstance(t, torch.Tensor) else t, state)
        self.position, self.state = len(self.chunks), self.initial()
        return outputs, final


def time_dim(out: torch.Tensor, piece_shape: tuple[int, ...]) -> int:
    """Which dimension of a step's outputs is time: 0 (time-major, the suite's), or 1 (batch-first)."""
    batch, chunk = piece_shape
    if out.dim() >= 2 and out.shape[0] == batch and out.shape[1] == chunk and batch != chunk:
        return 1
    return 0


# --- CUDA graphs ----------------------------------------------------------------------------------


class GraphStep:
    """A step captured as a CUDA graph on static tokens and state.

    The graph copies the step's new state over the static one, so a call is a copy of the
    chunk in and a replay: no allocation, one launch. A new sequence zeroes the static state
    (the suite's start state; a user's model whose start state is not zeros shows it in
    ``max_abs_err``).
    """

    WARMUPS = 3

    def __init__(self, step: StepFn, first: torch.Tensor) -> None:
        self.tokens = first.clone()
        with torch.no_grad():
            _, state = step(self.tokens, None)
        tensor_leaves(state)
        self.state = pytree.tree_map(torch.zeros_like, state)
        self.graph = torch.cuda.CUDAGraph()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        try:
            with torch.cuda.stream(side):
                for _ in range(self.WARMUPS):
                    step(self.tokens, self.state)
            torch.cuda.current_stream().wait_stream(side)
            with torch.cuda.graph(self.graph):
                out, new = step(self.tokens, self.state)
                for old, fresh in zip(pytree.tree_leaves(self.state), pytree.tree_leaves(new), strict=True):
                    old.copy_(fresh)
            self.out = out
        except Exception as e:
            torch.cuda.synchronize()
            raise Unsupported(f"CUDA graph capture of the stream step failed ({one_line(e)})") from None
        self.reset()

    def reset(self) -> Any:
        for leaf in pytree.tree_leaves(self.state):
            leaf.zero_()
        return self.state

    def __call__(self, tokens: torch.Tensor, state: Any) -> tuple[Any, Any]:
        self.tokens.copy_(tokens, non_blocking=True)
        self.graph.replay()
        return self.out, self.state


# --- ONNX Runtime ---------------------------------------------------------------------------------


class _Flat(nn.Module):
    """The model's step with its state as flat tensors in and out, for an ONNX export."""

    def __init__(self, model: nn.Module, spec: Any) -> None:
        super().__init__()
        self.model, self.spec = model, spec

    def forward(self, tokens: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, new = self.model.stream_step(tokens, pytree.tree_unflatten(list(state), self.spec))
        return (outputs_of(out), *pytree.tree_leaves(new))


class OnnxStep:
    """The step as an ONNX Runtime session on the CPU: tokens and state in, outputs and state out.
    A sequence starts from zeros (the graph takes a state; a user's model whose ``None`` start is
    not zeros shows it in ``max_abs_err``).

    Exported by TorchScript's exporter at the case's batch (an export takes 0.02 s to 0.1 s at
    the stream preset's sizes on a 2-vCPU VM, so it is not cached); the session has the case's
    threads, one inter-op thread and no spinning (bench.measure.runtimes says why).
    """

    def __init__(self, model: nn.Module, case: Case, first: torch.Tensor) -> None:
        import onnxruntime as ort

        step = step_of(model)
        with torch.no_grad():
            _, state = step(first, None)
        tensor_leaves(state)
        leaves, self.spec = pytree.tree_flatten(state)
        self.zeros = [np.zeros(tuple(leaf.shape), dtype=np.float32) for leaf in leaves]
        self.names = [f"state_{i}" for i in range(len(leaves))]
        start = time.perf_counter()
        buffer = io.BytesIO()
        try:
            with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")  # the exporter's own deprecation notices
                torch.onnx.export(
                    _Flat(model, self.spec).eval(),
                    (first, *[torch.zeros_like(leaf) for leaf in leaves]),
                    buffer,
                    input_names=["tokens", *self.names],
                    output_names=["outputs", *[f"new_{n}" for n in self.names]],
                    dynamo=False,
                )
        except Exception as e:
            raise Unsupported(f"the ONNX export of the stream step failed ({one_line(e)})") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = case.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        self.ready_s = time.perf_counter() - start
        self.settings = f"onnxruntime={ort.__version__} provider=CPUExecutionProvider exporter=torchscript"

    def initial(self) -> list[np.ndarray]:
        return self.zeros

    def __call__(self, tokens: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        out, *new = self.session.run(None, {"tokens": tokens, **dict(zip(self.names, state, strict=True))})
        return out, new

    def as_torch(self, out: np.ndarray | None, state: list[np.ndarray]) -> tuple[Any, Any]:
        tensors = pytree.tree_unflatten([torch.from_numpy(s) for s in state], self.spec)
        return (torch.from_numpy(out) if out is not None else None), tensors


def open_stream(case: Case, model: nn.Module, runner: Any, tokens: torch.Tensor) -> tuple[Stream, float | None]:
    """The stream of a built case (and the seconds a runtime took to get ready, if any).

    ``runner``: what runs instead of the model (the int8 copy); the compiled, graph and ONNX
    steps are made here, under the timing's settings.
    """
    pieces = chunks_of(tokens, case.chunk)
    if case.impl == "onnxruntime":
        onnx_step = OnnxStep(model, case, pieces[0])
        stream = Stream(onnx_step, [p.cpu().numpy() for p in pieces], onnx_step.initial, onnx_step.as_torch)
        return stream, onnx_step.ready_s
    stepper = runner if runner is not None else model
    step = step_of(stepper)
    if case.impl == "cudagraph":
        start = time.perf_counter()
        graph = GraphStep(step, pieces[0])
        torch.cuda.synchronize()
        return Stream(graph, pieces, graph.reset), time.perf_counter() - start
    # The suite's models start from explicit zeros: a compiled step then sees one state type from
    # its first call on and compiles once (a user's model starts from None, its own start).
    zeros = getattr(stepper, "initial_stream_state", None)
    initial = (lambda: zeros(case.batch_size)) if callable(zeros) else (lambda: None)
    if case.impl == "compiled":
        torch._dynamo.reset()  # a fresh start per case (Workload.prepare says why)
        return Stream(torch.compile(step, fullgraph=False, dynamic=False), pieces, initial), None
    return Stream(step, pieces, initial), None
