"""What users run instead of eager PyTorch: ONNX Runtime, CUDA graphs, int8 dynamic quantization.

Each is an ``impl`` of a case (docs/runtimes.md). Which cases a runtime can run is
said here once (``why_unsupported``): the rest become ``unsupported`` rows with the
reason, never errors. What a runtime needs to be ready (an export and a session, a
quantized copy, a captured graph) is made outside the timed region and its time
kept in ``compile_s``. The eager model stays the workload's ``model``: its float
weights are the packed reference's.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.core.cases import Case
from bench.core.errors import one_line
from bench.measure import onnxexport
from bench.measure.usermodels import Unsupported, output_of

# The packages an impl needs beyond torch, and the extra that installs them (the extra also brings
# onnxscript, which torch.export's exporter needs where the TorchScript one is gone).
PACKAGES = {"onnxruntime": ("onnxruntime", "onnx")}
EXTRAS = {"onnxruntime": "onnx"}
# What quantize_dynamic turns into int8 modules (the recurrent ones are the point).
RECURRENT_TYPES = (nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell)
QUANTIZED_TYPES = (*RECURRENT_TYPES, nn.Linear)
EXPORT_TOL = 1e-3  # an exported graph against its own model, on the same inputs (float32 reorders sums)
NUMPY_OF_ONNX = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}
TORCH_KERNELS = "backend=native switches torch's own RNN kernels off; {} runs kernels of its own"


def missing_packages(impl: str) -> list[str]:
    return [p for p in PACKAGES.get(impl, ()) if importlib.util.find_spec(p) is None]


def refusal(impls: Iterable[str]) -> str | None:
    """One line for impls whose packages are not installed (None: all there)."""
    for impl in sorted(set(impls)):
        missing = missing_packages(impl)
        if missing:
            return (
                f"--impl {impl} needs {', '.join(missing)}, not installed here: "
                f"pip install 'rnnbench[{EXTRAS[impl]}]' (or pip install {' '.join(PACKAGES[impl])})"
            )
    return None


def why_unsupported(case: Case) -> str | None:
    """Why ``case.impl`` cannot run the case at all (None: it may; building it can still say no)."""
    if case.impl == "onnxruntime":
        if case.mode == "training":
            return "ONNX Runtime runs inference here (training is another package, onnxruntime-training)"
        if case.varlen == "packed" and not case.user_model:
            return (
                "ONNX has no packed sequences: ONNX Runtime's exact variable-length path is varlen=exact "
                "(the LSTM/GRU operators' sequence_lens)"
            )
        if case.device == "cpu" and case.dtype != "float32":
            return f"ONNX Runtime's CPU LSTM and GRU kernels take float32, not {case.dtype}"
        if case.backend == "native":
            return TORCH_KERNELS.format("ONNX Runtime")
    if case.impl == "cudagraph":
        if case.device != "cuda":
            return "CUDA graphs need a CUDA device"
        if case.mode == "training":
            return "a captured training step is not implemented: cudagraph times inference replays"
        if case.varlen == "exact" and not case.user_model:
            # Not checked on a GPU yet: refused rather than risk replays that read a reused buffer.
            return (
                "the exact path copies its length plan from pinned host memory on every call; a replay "
                "would re-read a host buffer the allocator may have given to something else"
            )
    if case.impl == "quantized":
        if case.device != "cpu":
            return "int8 dynamic quantization runs on the CPU (fbgemm/x86 kernels)"
        if case.mode == "training":
            return "int8 dynamic quantization is for inference"
        if case.dtype != "float32":
            return f"quantize_dynamic quantizes float32 weights, not {case.dtype}"
        if case.varlen == "exact" and not case.user_model:
            return (
                "the exact path calls each layer and direction with nn.LSTM/nn.GRU's float weights, which an "
                "int8 module does not have: varlen=packed is the quantized model's exact path"
            )
        if case.backend == "native":
            return TORCH_KERNELS.format("int8 dynamic quantization")
    return None


# --- int8 dynamic quantization ------------------------------------------------------------------


def quantize(model: nn.Module) -> tuple[nn.Module, float]:
    """An int8 dynamically quantized copy of ``model`` (and the seconds it took).

    Unsupported when this torch has no ``quantize_dynamic`` or leaves a recurrent layer in
    float: a 1.00× "speed-up" of a model that was never quantized would say nothing.
    """
    recurrent = [name for name, m in model.named_modules() if type(m) in RECURRENT_TYPES]
    if not recurrent:
        raise _refused("the model has no nn.LSTM, nn.GRU or cell to quantize")
    start = time.perf_counter()
    try:
        from torch.ao.quantization import quantize_dynamic

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "torch.ao.quantization is deprecated": said in the docs
            quantized = quantize_dynamic(model, set(QUANTIZED_TYPES), dtype=torch.qint8)
    except (ImportError, AttributeError, RuntimeError) as e:
        raise _refused(f"torch {torch.__version__} cannot quantize it ({one_line(e)})") from None
    took = time.perf_counter() - start
    left = [name for name, m in quantized.named_modules() if type(m) in RECURRENT_TYPES]
    if left:
        raise _refused(f"quantize_dynamic on torch {torch.__version__} left {', '.join(left)} in float")
    return quantized, took


def _refused(why: str) -> Unsupported:
    return Unsupported(f"int8 dynamic quantization: {why}")


def quantized_settings() -> str:
    """The engine int8 kernels run on (fbgemm, x86, qnnpack, onednn), for ``kernel_settings``."""
    return f"quantized_engine={torch.backends.quantized.engine}"


# --- ONNX Runtime ---------------------------------------------------------------------------------


class OnnxRunner:
    """An ONNX Runtime session of the case's model, called like the model.

    CPU: ``InferenceSession.run`` on numpy views of the inputs (no copies), with the
    case's threads as intra-op threads and one inter-op thread. CUDA: the CUDA
    provider with the inputs and outputs bound to device memory (IO binding), so no
    host copy is timed. Returns ``(outputs, state)`` as the suite's models do:
    ``state`` is ``h`` or ``(h, c)``.
    """

    def __init__(
        self, model_bytes: bytes, case: Case, tokens: torch.Tensor, lengths: torch.Tensor, exporter: str = ""
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = case.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: its warnings are about graph rewrites
        # ORT's pool threads spin for more work after a run by default: beside torch's threads on a
        # 2-vCPU VM that took torch from 4.1 to 10.6 ms per step (GRU b8 L128, side by side).
        # Off, they sleep when a run ends, as torch's do.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if case.device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise Unsupported("this onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")
            index = tokens.device.index or 0
            cuda = {"device_id": index, "use_tf32": int(case.uses_tf32)}
            providers: list[Any] = [("CUDAExecutionProvider", cuda)]
        else:
            providers = ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(model_bytes, options, providers=providers)
        except Exception as e:
            raise Unsupported(f"ONNX Runtime cannot load the exported graph ({one_line(e)})") from None
        self.names = [i.name for i in self.session.get_inputs()]
        self._lengths_of: torch.Tensor | None = None
        self._sequence_lens: torch.Tensor | None = None
        # The row's kernel_settings: the provider read back from the session, the threads it was given.
        provider = self.session.get_providers()[0]
        self.settings = (
            f"onnxruntime={ort.__version__} provider={provider} intra_op_threads={options.intra_op_num_threads} "
            f"inter_op_threads={options.inter_op_num_threads} exporter={exporter}"
        )
        self.binding = self._bind(tokens, lengths) if case.device == "cuda" else None

    def _given(self, tokens: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """The graph's inputs by name; the exact graph's int32 ``sequence_lens`` made once per batch
        (on the first, untimed call), not in every timed one."""
        if lengths is not self._lengths_of:
            self._lengths_of, self._sequence_lens = lengths, lengths.to(torch.int32)
        return {"tokens": tokens, "lengths": lengths, onnxexport.SEQUENCE_LENS: self._sequence_lens}

    def _feeds(self, tokens: torch.Tensor, lengths: torch.Tensor) -> dict[str, np.ndarray]:
        given = self._given(tokens, lengths)
        return {name: given[name].numpy() for name in self.names}

    def _bind(self, tokens: torch.Tensor, lengths: torch.Tensor) -> Any:
        """Inputs bound to the case's device tensors, outputs to device tensors shaped by one run."""
        device = tokens.device.index or 0
        given = self._given(tokens, lengths)
        # The binding's memory, kept alive: tokens and lengths on the GPU, sequence_lens on the host
        # (where ONNX Runtime's CUDA LSTM/GRU read it).
        self._inputs = {
            "tokens": given["tokens"].contiguous(),
            "lengths": given["lengths"].to(tokens.device),
            onnxexport.SEQUENCE_LENS: given[onnxexport.SEQUENCE_LENS].contiguous(),
        }
        binding = self.session.io_binding()
        for name in self.names:
            t = self._inputs[name]
            place = ("cpu", 0) if t.device.type == "cpu" else ("cuda", device)
            element = np.int32 if t.dtype == torch.int32 else np.int64
            binding.bind_input(name, *place, element, tuple(t.shape), t.data_ptr())
        for out in self.session.get_outputs():
            binding.bind_output(out.name, "cuda", device)  # ORT allocates, once, to learn the shapes
        self.session.run_with_iobinding(binding)
        self.outputs = []
        for out, value in zip(self.session.get_outputs(), binding.get_outputs(), strict=True):
            dtype = NUMPY_OF_ONNX.get(value.data_type())
            if dtype is None:
                raise Unsupported(f"ONNX Runtime's IO binding has no numpy type for {value.data_type()} outputs")
            t = torch.empty(value.shape(), dtype=torch.from_numpy(np.empty(0, dtype)).dtype, device=tokens.device)
            binding.bind_output(out.name, "cuda", device, dtype, tuple(t.shape), t.data_ptr())
            self.outputs.append(t)
        return binding

    def __call__(self, tokens: torch.Tensor, lengths: torch.Tensor) -> Any:
        if self.binding is not None:
            self.session.run_with_iobinding(self.binding)  # on the inputs bound when the session was built
            outs = list(self.outputs)
        else:
            outs = [torch.from_numpy(o) for o in self.session.run(None, self._feeds(tokens, lengths))]
        if len(outs) == 1:
            return outs[0]
        return outs[0], (outs[1] if len(outs) == 2 else tuple(outs[1:]))


def onnx_runner(export_model: nn.Module, case: Case, tokens: torch.Tensor, lengths: torch.Tensor):
    """(runner, seconds to get it ready: the export as it was timed, plus building the session)."""
    exported = onnxexport.export(export_model, case, sequence_lens=case.varlen == "exact" and not case.user_model)
    start = time.perf_counter()
    runner = OnnxRunner(exported.model_bytes, case, tokens, lengths, exported.exporter)
    took = exported.export_s + time.perf_counter() - start
    if case.user_model:
        check_export(export_model, runner, tokens, lengths)
    return runner, took


def check_export(model: nn.Module, runner: OnnxRunner, tokens: torch.Tensor, lengths: torch.Tensor) -> None:
    """A user's model: the graph's output on the case's inputs must be the model's own. A tracer
    turns what it cannot follow (a numpy round trip, data-dependent Python) into constants and
    only warns; such a graph answers something else, and is refused here rather than timed."""
    with torch.no_grad():
        expected = output_of(model(tokens, lengths)).float().cpu()
        got = output_of(runner(tokens, lengths)).float().cpu()
    if got.shape != expected.shape:
        raise Unsupported(
            f"the exported graph's output has shape {tuple(got.shape)}, the model's {tuple(expected.shape)}"
        )
    diff = float((got - expected).abs().max()) if got.numel() else 0.0
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    if not diff <= EXPORT_TOL * max(1.0, scale):
        raise Unsupported(
            f"the exported graph's output differs from the model's by {diff:.2g}: the export missed part of it"
        )


# --- CUDA graphs ----------------------------------------------------------------------------------


class GraphRunner:
    """One forward captured as a CUDA graph on the case's (static) inputs; a call replays it.

    Warmed up on a side stream first, as CUDA graph capture requires; what cannot be captured
    (a host synchronisation inside the forward, packing's host-side sort) is Unsupported with
    CUDA's reason.
    """

    WARMUPS = 3

    def __init__(self, model: nn.Module, tokens: torch.Tensor, lengths: torch.Tensor) -> None:
        self.graph = torch.cuda.CUDAGraph()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        try:
            with torch.cuda.stream(side):
                for _ in range(self.WARMUPS):
                    model(tokens, lengths)
            torch.cuda.current_stream().wait_stream(side)
            with torch.cuda.graph(self.graph):
                self.result = model(tokens, lengths)
        except Exception as e:
            torch.cuda.synchronize()
            raise Unsupported(f"CUDA graph capture failed ({one_line(e)})") from None

    def __call__(self, tokens: torch.Tensor, lengths: torch.Tensor) -> Any:
        self.graph.replay()  # on the inputs it was captured with: the workload's own
        return self.result


def capture(model: nn.Module, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[GraphRunner, float]:
    start = time.perf_counter()
    runner = GraphRunner(model, tokens, lengths)
    torch.cuda.synchronize()
    return runner, time.perf_counter() - start
