"""The case table: one frozen ``Case`` per measurement, each field declaring its axis once.

``AXES``, case ids, the spec keys, the ``bench run`` flags and the CSV case
columns all come from these declarations (docs/architecture.md, "The case
table"). Values are parsed and checked here (``parse_value``), once.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from bench.core.errors import UsageError

# Largest size we accept on any axis: beyond this a (B, L) index tensor overflows
# what torch can index in practice, and no machine holds the activations anyway.
MAX_SIZE = 2**31 - 1
BOOL_WORDS = {"true": True, "false": False}


@dataclass(frozen=True)
class Axis:
    """One sweep axis, declared once on its ``Case`` field.

    ``AXES``, ``case_id``, ``Case.from_id``, the spec keys, the CLI flags and
    the CSV case columns are all derived from these declarations.
    """

    name: str
    kind: str  # "word" | "int" | "bool"
    default: tuple[Any, ...]
    help: str
    choices: tuple[str, ...] = ()  # allowed words (empty: free-form)
    minimum: int = 1
    id_prefix: str = ""  # before the value in a case_id: b32, l64, ...
    id_words: tuple[str, str] = ("true", "false")  # a bool's true/false in a case_id
    id_omitted: Any = None  # a value that adds nothing to the case_id (ids stay as before the axis)
    pattern: str = ""  # words matching this regular expression are allowed besides the choices
    pattern_help: str = ""  # what such a word is, for messages

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def id_part(self, value: Any) -> str | None:
        """This axis's part of a case_id (None: left out)."""
        if self.id_omitted is not None and value == self.id_omitted:
            return None
        if self.kind == "bool":
            return self.id_words[0] if value else self.id_words[1]
        return self.id_prefix + encode_id_value(str(value))

    def from_id_part(self, part: str, where: str) -> Any:
        """The value a case_id part gives (UsageError if it gives none)."""
        if not part.startswith(self.id_prefix):
            raise UsageError(f"{where}: {part!r} does not start with {self.id_prefix!r}")
        raw = decode_id_value(part[len(self.id_prefix) :])
        if self.kind == "bool":
            words = dict(zip(self.id_words, ("true", "false"), strict=True))
            raw = words.get(raw, raw)
        return parse_value(self, raw, where)

    def describe(self) -> str:
        """One line for ``--help``: what the axis is, its choices and default."""
        choices = f"; choices: {', '.join(self.choices)}" if self.choices else ""
        default = ",".join(str(v).lower() if isinstance(v, bool) else str(v) for v in self.default)
        return f"{self.help}{choices}; default: {default}"


# How a value is spelled in a case_id, which is also a file name and is split on "-":
# ':' (uniform:4, PACKAGE.MODULE:FACTORY) is '@', '/' (file:PATH) is '~', and '-', ' '
# and '%' are %-escaped. Values holding '@' or '~' themselves are refused where they are parsed.
ID_SPELLING = (("%", "%25"), ("-", "%2D"), (" ", "%20"), (":", "@"), ("/", "~"))


def encode_id_value(value: str) -> str:
    for char, spelled in ID_SPELLING:
        value = value.replace(char, spelled)
    return value


def decode_id_value(part: str) -> str:
    for char, spelled in reversed(ID_SPELLING):
        part = part.replace(spelled, char)
    return part


def _could_be(axis: Axis, part: str) -> bool:
    """Whether a case_id part is a value of an omittable axis (they are matched, not counted)."""
    value = part[len(axis.id_prefix) :] if part.startswith(axis.id_prefix) else None
    if value is None:
        return False
    if axis.choices:
        return value in axis.choices
    return value.isdigit() if axis.kind == "int" else bool(value)


def _axis(kind: str, default: tuple[Any, ...], help: str, **more: Any) -> Any:
    """A ``Case`` field that declares its sweep axis (the name is the field's)."""
    return field(metadata={"axis": {"kind": kind, "default": default, "help": help, **more}})


# A user's model: an importable module and the factory in it that builds the model.
MODEL_REFERENCE = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*"
EXAMPLE_ID = "lstm-cpu-float32-inference-b32-l64-n1-uni-packed-uniform-e256-h512-v100-default-t2"


@dataclass(frozen=True, kw_only=True)
class Case:
    """One sweep point. Identity only: no tensors, no modules.

    Field order is the order of CSV columns, case_id parts and grid nesting.
    """

    model: str = _axis(
        "word",
        ("lstm", "gru"),
        "recurrent model: the suite's lstm or gru, or your own as PACKAGE.MODULE:FACTORY (docs/user-models.md)",
        choices=("lstm", "gru"),
        pattern=MODEL_REFERENCE,
        pattern_help="a model reference PACKAGE.MODULE:FACTORY",
    )
    device: str = _axis(
        "word", ("auto",), "device (auto: the CPU, and CUDA where present)", choices=("auto", "cpu", "cuda")
    )
    dtype: str = _axis(
        "word", ("float32",), "parameter and activation dtype", choices=("float32", "bfloat16", "float16")
    )
    mode: str = _axis(
        "word",
        ("inference",),
        "forward only, forward + backward, or stream (one chunk per call, the state carried; docs/streaming.md)",
        choices=("inference", "training", "stream"),
    )
    batch_size: int = _axis("int", (32,), "sequences per batch", id_prefix="b")
    seq_len: int = _axis("int", (64,), "padded sequence length (time steps)", id_prefix="l")
    num_layers: int = _axis("int", (1,), "stacked recurrent layers", id_prefix="n")
    bidirectional: bool = _axis("bool", (False,), "both directions", id_words=("bi", "uni"))
    varlen: str = _axis(
        "word",
        ("padded",),
        "how variable lengths are fed: padded, packed (pack_padded_sequence) or exact (padded, exact results)",
        choices=("padded", "packed", "exact"),
    )
    lengths: str = _axis(
        "word", ("uniform",), "length distribution: full, uniform, uniform:MIN, pad:FRACTION or file:PATH"
    )
    embedding_dim: int = _axis("int", (256,), "embedding size", id_prefix="e")
    hidden_size: int = _axis("int", (512,), "hidden state size", id_prefix="h")
    vocab_size: int = _axis("int", (100,), "vocabulary size", minimum=2, id_prefix="v")
    backend: str = _axis(
        "word", ("default",), "native turns cuDNN (GPU) or oneDNN (CPU) off", choices=("default", "native")
    )
    threads: int = _axis("int", (0,), "intra-op CPU threads (0: torch's default)", minimum=0, id_prefix="t")
    impl: str = _axis(
        "word",
        ("module",),
        "what runs the model: module (nn.LSTM/nn.GRU), compiled (torch.compile), cells (a Python loop over the "
        "cell), onnxruntime (ONNX Runtime), cudagraph (CUDA graph replays) or quantized (int8 dynamic "
        "quantization); docs/runtimes.md",
        choices=("module", "compiled", "cells", "onnxruntime", "cudagraph", "quantized"),
        id_omitted="module",
    )
    tf32: str = _axis(
        "word",
        ("off",),
        "TF32 tensor cores for float32 on CUDA (cuDNN RNNs and matmuls); other cases run with it off",
        choices=("off", "on"),
        id_prefix="tf32",
        id_omitted="off",
    )
    chunk: int = _axis(
        "int",
        (1,),
        "tokens per call in --mode stream (a stream is fed its sequence chunk by chunk); other modes: 1",
        id_prefix="chunk",
        id_omitted=1,
    )

    @property
    def user_model(self) -> bool:
        """A model of the user's, named by ``PACKAGE.MODULE:FACTORY``, not the suite's own."""
        return self.model not in ("lstm", "gru")

    @property
    def packed(self) -> bool:
        return self.varlen == "packed"

    @property
    def case_id(self) -> str:
        """Readable and stable: the same axes give the same id in every run."""
        parts = (a.id_part(getattr(self, a.name)) for a in AXES)
        return "-".join(p for p in parts if p is not None)

    @classmethod
    def from_id(cls, case_id: str) -> Case:
        """The case a ``case_id`` names; UsageError if it names none."""
        bad = f"CASE {case_id!r} is not a case_id (like {EXAMPLE_ID})"
        parts = case_id.split("-")
        # First the shape, then the values: a misshapen id is "not a case_id", a bad value
        # names itself. Every axis without an id_omitted value has a part, in order; the
        # parts left over belong to the omittable axes (impl, tf32), each present or not.
        required = [a for a in AXES if a.id_omitted is None]
        given = dict(zip((a.name for a in required), parts, strict=False))
        rest = parts[len(required) :]
        for axis in (a for a in AXES if a.id_omitted is not None):
            if rest and _could_be(axis, rest[0]):
                given[axis.name] = rest.pop(0)
        shaped = (
            len(parts) >= len(required) and not rest and all(given[a.name].startswith(a.id_prefix) for a in required)
        )
        if not shaped:
            raise UsageError(bad)
        values: dict[str, Any] = {}
        for axis in AXES:
            if axis.name in given:
                values[axis.name] = axis.from_id_part(given[axis.name], f"CASE {case_id!r} {axis.name}")
            else:
                values[axis.name] = axis.id_omitted
        case = cls(**values)
        if case.case_id != case_id or case.device == "auto" or (case.tf32 == "on" and not case.tf32_matters):
            raise UsageError(bad)
        if case.chunk != 1 and not case.streaming:
            raise UsageError(bad)
        return case

    @property
    def streaming(self) -> bool:
        """``mode=stream``: calls of ``chunk`` tokens per stream, the state carried (bench.measure.streaming)."""
        return self.mode == "stream"

    @property
    def calls_per_sequence(self) -> int:
        """Stream calls that feed one whole sequence (chunk divides seq_len: checked before a run)."""
        return -(-self.seq_len // self.chunk)

    @property
    def tf32_matters(self) -> bool:
        """TF32 changes only float32 math on CUDA; elsewhere the axis is always off."""
        return self.device == "cuda" and self.dtype == "float32"

    @property
    def uses_tf32(self) -> bool:
        return self.tf32 == "on" and self.tf32_matters

    @property
    def num_dirs(self) -> int:
        return 2 if self.bidirectional else 1

    def axes(self) -> dict[str, Any]:
        """The fields: ``Case(**case.axes())`` is the same case."""
        return dataclasses.asdict(self)

    def wire_axes(self) -> dict[str, Any]:
        """The axes as a worker of any rnnbench tree reads them (``from_axes``).

        Trees from before the varlen and impl axes build ``Case(**axes)`` with a
        ``packed`` field; cases they can run are sent in that form, so that
        ``--against`` an older commit keeps working.
        """
        axes = self.axes()
        if self.tf32 == "off":  # trees from before the tf32 axis
            del axes["tf32"]
        if self.chunk == 1:  # trees from before the chunk axis
            del axes["chunk"]
        if self.impl == "module" and self.varlen in ("padded", "packed"):
            del axes["impl"], axes["varlen"]
            axes = {**axes, "packed": self.packed}
        return axes

    @classmethod
    def from_axes(cls, axes: dict[str, Any]) -> Case:
        """The inverse of ``wire_axes`` (and of ``axes``)."""
        axes = dict(axes)
        if "packed" in axes:
            axes["varlen"] = "packed" if axes.pop("packed") else "padded"
        axes.setdefault("impl", "module")
        axes.setdefault("tf32", "off")
        axes.setdefault("chunk", 1)
        return cls(**axes)

    def columns(self) -> dict[str, Any]:
        """The case columns of a results row (the axes plus the derived ``packed``)."""
        axes = self.axes()
        return {name: self.packed if name == "packed" else axes[name] for name in CASE_COLUMN_NAMES}


AXES: tuple[Axis, ...] = tuple(Axis(name=f.name, **f.metadata["axis"]) for f in dataclasses.fields(Case))
AXIS_BY_NAME = {a.name: a for a in AXES}
# `packed` was an axis before `varlen` took its place; it is still read (TOML key,
# --packed flag) as `varlen` packed/padded, and still written as a CSV column that
# is true exactly for varlen=packed, so older results and compares keep working.
PACKED_ALIAS = Axis("packed", "bool", (False,), "old spelling: true = --varlen packed, false = --varlen padded")
INPUT_AXES: tuple[Axis, ...] = (*AXES, PACKED_ALIAS)
INPUT_AXES_BY_NAME = {a.name: a for a in INPUT_AXES}
CASE_COLUMN_NAMES: tuple[str, ...] = tuple(
    name for a in AXES for name in (("packed", a.name) if a.name == "varlen" else (a.name,))
)


def parse_value(axis: Axis, raw: Any, where: str) -> Any:
    """One axis value from TOML or a CLI string, checked; UsageError if bad."""
    if axis.kind == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in BOOL_WORDS:
            return BOOL_WORDS[raw.strip().lower()]
        raise UsageError(f"{where}: {raw!r} is not a boolean (use true or false)")
    if axis.kind == "int":
        value = raw
        if isinstance(raw, str):
            text = raw.strip()
            if not text.lstrip("-").isdigit():
                raise UsageError(f"{where}: {raw!r} is not an integer")
            value = int(text)
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{where}: {raw!r} is not an integer")
        if not axis.minimum <= value <= MAX_SIZE:
            raise UsageError(f"{where}: {value} is out of range (allowed: {axis.minimum} to {MAX_SIZE})")
        return value
    if not isinstance(raw, str) or not raw.strip():
        raise UsageError(f"{where}: {raw!r} is not a word")
    value = raw.strip()
    if axis.choices and value not in axis.choices and not (axis.pattern and re.fullmatch(axis.pattern, value)):
        also = f", or {axis.pattern_help}" if axis.pattern_help else ""
        raise UsageError(f"{where}: {value!r} is not allowed (choose from {', '.join(axis.choices)}{also})")
    return value


def parse_list(axis: Axis, raw: Any, where: str) -> tuple[Any, ...]:
    """A list of values (TOML list, one value, or a comma list string)."""
    if isinstance(raw, str):
        items: list[Any] = raw.split(",")
    elif isinstance(raw, list):
        items = raw
    else:
        items = [raw]
    if not items:
        raise UsageError(f"{where}: the list is empty")
    values = tuple(parse_value(axis, item, where) for item in items)
    return tuple(dict.fromkeys(values))  # drop repeats, keep order
