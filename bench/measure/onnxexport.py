"""Export a case's model to ONNX, once per model, weights and sequence length, kept on disk.

Two exporters write ``nn.LSTM``/``nn.GRU`` as ONNX's ``LSTM``/``GRU`` operators:
TorchScript's (``torch.onnx.export(..., dynamo=False)``) and torch.export's
(``dynamo=True``, torch's default since 2.9). The TorchScript one is used where
this torch still has it: it exports the suite's models in about 0.1 s, where
torch.export's took 5 to 15 s each on a 2-vCPU AMD EPYC VM (torch 2.13.0),
which alone would spend the ``runtimes`` preset's budget. It is deprecated;
where it is gone or fails, torch.export's exporter is used (the row's
``kernel_settings`` names which). A graph is exported with the batch dimension
dynamic (one export serves every batch size; the sequence length stays fixed)
and kept in a cache folder, keyed by everything that decides its contents:
the torch and ONNX package versions, the model's class and the source of its
code, every weight's bytes, dtype, sequence length and variable-length mode. Later rounds (fresh
processes) and later runs load it.

``varlen=exact`` for the suite's models: the padded model is exported and its
``LSTM``/``GRU`` nodes are given the lengths as ``sequence_lens``, ONNX's own
exact variable-length input (each sequence stops at its end, padded outputs are
zero, final states are each sequence's last), the same results as packing.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import io
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.core.cases import Case
from bench.core.errors import one_line
from bench.measure.usermodels import Unsupported

EXPORT_FORMAT = 1  # bump when what is written for a key changes (the surgery, the inputs)
CACHE_ENV = "RNNBENCH_CACHE_DIR"
INPUT_NAMES = ("tokens", "lengths")
SAMPLE_BATCH = 2  # torch.export fixes a dimension sampled at 1; 2 keeps the batch dynamic
RECURRENT_OPS = ("LSTM", "GRU")
SEQUENCE_LENS_INPUT = 4  # X, W, R, B, sequence_lens, initial_h, (initial_c, P)
SEQUENCE_LENS = "sequence_lens"  # the graph input the exact path adds


@dataclass(frozen=True)
class Exported:
    """An ONNX graph of a case's model and what exporting it cost when it was made."""

    model_bytes: bytes
    export_s: float  # the export's time when it ran (a graph from the cache keeps its first time)
    exporter: str  # "torchscript" or "dynamo"
    from_cache: bool


def cache_dir() -> Path:
    """``$RNNBENCH_CACHE_DIR/onnx``, else ``~/.cache/rnnbench/onnx`` (safe to delete)."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rnnbench"
    )
    return Path(root) / "onnx"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def weights_digest(model: nn.Module) -> str:
    """A hash of every parameter and buffer, by name: equal digests, equal weights."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if not isinstance(tensor, torch.Tensor):
            continue
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        # reshape first: a 0-dim buffer (BatchNorm's num_batches_tracked) has no byte view of its own.
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def code_digest(model: nn.Module) -> str:
    """A hash of the source files that decide what the model's forward does: its class's module and,
    for a model of a package (the suite's ``rnnmodels``), every module of that package. Changed
    code is another graph, even with the same weights."""
    digest = hashlib.sha256()
    module = sys.modules.get(type(model).__module__)
    files = []
    source = getattr(module, "__file__", None)
    if source:
        files.append(Path(source))
        package = getattr(module, "__package__", "") or ""
        root = sys.modules.get(package.split(".")[0]) if package else None
        root_file = getattr(root, "__file__", None)
        if root_file and Path(root_file).name == "__init__.py":
            files += sorted(Path(root_file).parent.rglob("*.py"))
    for path in dict.fromkeys(files):
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(str(path).encode())
    return digest.hexdigest()


def cache_key(model: nn.Module, case: Case, batch: int | None) -> str:
    """What decides the exported graph's contents (``batch`` None: the batch dimension is dynamic)."""
    what = {
        "format": EXPORT_FORMAT,
        "torch": torch.__version__,
        "onnxscript": _version("onnxscript"),
        "onnx": _version("onnx"),
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "model": case.model,
        "varlen": case.varlen if case.user_model else "padded",  # the suite's exact graph is its padded one's
        "dtype": case.dtype,
        "seq_len": case.seq_len,
        "batch": batch,
        "weights": weights_digest(model),
        "code": code_digest(model),
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]


def export(model: nn.Module, case: Case, sequence_lens: bool) -> Exported:
    """The ONNX graph of ``model`` for ``case``'s inputs (from the cache where it is there).

    ``sequence_lens``: feed the lengths to every LSTM/GRU node (the suite's exact path; done
    on the cached graph, so the padded and exact cases of a model share one export).
    Unsupported (with the exporter's one-line reason) where no graph can be made.
    """
    graph = _exported(model, case)
    if not sequence_lens:
        return graph
    import onnx

    proto = onnx.load_from_string(graph.model_bytes)
    try:
        add_sequence_lens(proto)
    except ValueError as e:
        raise Unsupported(f"varlen=exact on ONNX Runtime: {e}") from None
    return dataclasses.replace(graph, model_bytes=proto.SerializeToString())


def _exported(model: nn.Module, case: Case) -> Exported:
    error: Exception | None = None
    for batch in (None, case.batch_size):  # a dynamic batch first; a model that refuses one, fixed
        key = cache_key(model, case, batch)
        found = _load(key)
        if found is not None:
            return found
        try:
            start = time.perf_counter()
            proto, exporter = _export(model, case, batch)
            model_bytes = proto.SerializeToString()
            export_s = time.perf_counter() - start
        except Exception as e:
            error = e
            continue
        _store(key, model_bytes, export_s, exporter)
        return Exported(model_bytes, export_s, exporter, from_cache=False)
    raise Unsupported(f"the ONNX export failed ({one_line(error)})")


def _export(model: nn.Module, case: Case, batch: int | None) -> tuple[Any, str]:
    """(the ONNX model proto, the exporter that made it): TorchScript's where this torch has
    it and it succeeds, else torch.export's (the module docstring says why)."""
    cpu_model = copy.deepcopy(model).to("cpu").eval()  # the graph holds the weights, not the device
    rows = batch or SAMPLE_BATCH
    tokens = torch.zeros(rows, case.seq_len, dtype=torch.long)
    lengths = torch.full((rows,), case.seq_len, dtype=torch.long)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        # The exporters print their progress and warn of their own deprecations: none of it is ours.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            try:
                return _torchscript(cpu_model, tokens, lengths, dynamic=batch is None), "torchscript"
            except Exception:
                return _dynamo(cpu_model, tokens, lengths, dynamic=batch is None), "dynamo"
    finally:
        quiet.setLevel(level)


def _torchscript(model: nn.Module, tokens: torch.Tensor, lengths: torch.Tensor, dynamic: bool) -> Any:
    import onnx

    buffer = io.BytesIO()
    axes = {name: {0: "batch"} for name in INPUT_NAMES} if dynamic else None
    torch.onnx.export(model, (tokens, lengths), buffer, dynamo=False, input_names=list(INPUT_NAMES), dynamic_axes=axes)
    return onnx.load_from_string(buffer.getvalue())


def _dynamo(model: nn.Module, tokens: torch.Tensor, lengths: torch.Tensor, dynamic: bool) -> Any:
    shapes = None
    if dynamic:
        dim = torch.export.Dim("batch", min=1)
        shapes = ({0: dim}, {0: dim})
    program = torch.onnx.export(
        model, (tokens, lengths), dynamo=True, verbose=False, input_names=list(INPUT_NAMES),
        dynamic_shapes=shapes, optimize=True,
    )  # fmt: skip
    return program.model_proto


def add_sequence_lens(proto: Any) -> int:
    """Give every LSTM/GRU node a new graph input, ``sequence_lens`` (int32, one per sequence).

    An input of its own rather than a cast of ``lengths`` inside the graph: ONNX Runtime's CUDA
    LSTM/GRU read ``sequence_lens`` from host memory, where it can then be bound, instead of
    copying a cast result back from the GPU on every call. Returns the number of nodes changed;
    none is an error.
    """
    from onnx import TensorProto, helper

    graph = proto.graph
    tokens = next(i for i in graph.input if i.name == "tokens")
    batch_dim = tokens.type.tensor_type.shape.dim[0]
    batch = batch_dim.dim_param or batch_dim.dim_value
    changed = 0
    for node in graph.node:
        if node.op_type in RECURRENT_OPS:
            inputs = list(node.input) + [""] * max(0, SEQUENCE_LENS_INPUT + 1 - len(node.input))
            inputs[SEQUENCE_LENS_INPUT] = SEQUENCE_LENS
            del node.input[:]
            node.input.extend(inputs)
            changed += 1
    if not changed:
        raise ValueError("the exported graph has no LSTM or GRU node to give the lengths to")
    graph.input.append(helper.make_tensor_value_info(SEQUENCE_LENS, TensorProto.INT32, [batch]))
    return changed


def _load(key: str) -> Exported | None:
    folder = cache_dir()
    try:
        facts = json.loads((folder / f"{key}.json").read_text())
        model_bytes = (folder / f"{key}.onnx").read_bytes()
        return Exported(model_bytes, float(facts["export_s"]), str(facts["exporter"]), from_cache=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _store(key: str, model_bytes: bytes, export_s: float, exporter: str) -> None:
    """Written to a temporary name and renamed: a reader never sees half a graph. A folder
    that cannot be written only costs the next process an export."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        facts = json.dumps({"export_s": export_s, "exporter": exporter}).encode()
        for suffix, data in ((".onnx", model_bytes), (".json", facts)):
            with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".tmp") as f:
                f.write(data)
            os.replace(f.name, folder / f"{key}{suffix}")
    except OSError:
        pass
