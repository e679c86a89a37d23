"""Users' own models on the model axis: ``--model PACKAGE.MODULE:FACTORY``.

The contract (docs/user-models.md): the factory is imported from the working
directory, ``PYTHONPATH`` and ``--model-path``, and called with the case's
dimensions as keyword arguments (those in ``CASE_KWARGS`` that it accepts).
It returns an ``nn.Module`` whose ``forward(tokens, lengths)`` takes a
``(batch, seq)`` LongTensor and a ``(batch,)`` LongTensor of valid lengths (on
the CPU) and returns the output tensor, or a tuple whose first element is it.
A factory that raises ``NotImplementedError`` for a case makes that case's row
``unsupported``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from bench.core.cases import Case
from bench.core.errors import UsageError

CASE_KWARGS = ("vocab_size", "embedding_dim", "hidden_size", "num_layers", "bidirectional", "varlen")


class Unsupported(Exception):
    """The model's factory refused the case (it raised ``NotImplementedError``)."""


def add_model_paths(folders: list[str]) -> None:
    """``--model-path``: import from these folders, here and in every child process."""
    for folder in reversed(folders):
        path = os.path.abspath(folder)
        if not os.path.isdir(path):
            raise UsageError(f"--model-path {folder}: no such folder")
        sys.path.insert(0, path)
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (path, os.environ.get("PYTHONPATH")) if p)


def load_factory(reference: str) -> Callable[..., Any]:
    """The factory a reference names; UsageError (one line) if it names none."""
    module_name, attr = reference.split(":")
    if os.getcwd() not in sys.path:  # `rnnbench` (the console script) does not put it there
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        last = (str(e).strip().splitlines() or [""])[-1]
        raise UsageError(f"--model {reference}: cannot import {module_name} ({e.__class__.__name__}: {last})") from None
    factory = getattr(module, attr, None)
    if factory is None:
        raise UsageError(f"--model {reference}: module {module_name} has no {attr!r}")
    if not callable(factory):
        raise UsageError(f"--model {reference}: {attr} is a {type(factory).__name__}, not a callable factory")
    return factory


def _parameters(factory: Callable[..., Any]) -> set[str] | None:
    """The keyword names the factory takes; None if it takes any (``**kwargs``) or cannot be inspected."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


def accepts(factory: Callable[..., Any], name: str) -> bool:
    names = _parameters(factory)
    return names is None or name in names


def factory_kwargs(factory: Callable[..., Any], case: Case, varlen: str | None = None) -> dict[str, Any]:
    """The case's dimensions the factory accepts, by keyword."""
    values = {
        "vocab_size": case.vocab_size,
        "embedding_dim": case.embedding_dim,
        "hidden_size": case.hidden_size,
        "num_layers": case.num_layers,
        "bidirectional": case.bidirectional,
        "varlen": varlen or case.varlen,
    }
    names = _parameters(factory)
    return values if names is None else {k: v for k, v in values.items() if k in names}


def build_model(case: Case, varlen: str | None = None) -> nn.Module:
    """The user's model for ``case`` (``varlen`` overrides the case's, for the packed reference)."""
    factory = load_factory(case.model)
    try:
        model = factory(**factory_kwargs(factory, case, varlen))
    except NotImplementedError as e:
        raise Unsupported(str(e) or f"{case.model} does not support this case") from None
    if not isinstance(model, nn.Module):
        raise TypeError(f"{case.model} returned a {type(model).__name__}, not an nn.Module")
    return model


def output_of(result: Any) -> torch.Tensor:
    """The output tensor of a forward's result: the tensor itself, or a tuple's first element."""
    if isinstance(result, torch.Tensor):
        return result
    if isinstance(result, tuple | list) and result and isinstance(result[0], torch.Tensor):
        return result[0]
    first = type(result[0]).__name__ if isinstance(result, tuple | list) and result else None
    got = f"a {type(result).__name__}" + (f" whose first element is a {first}" if first else "")
    raise TypeError(f"forward returned {got}, not a tensor or a tuple starting with the output tensor")


def counted_gflop(run: Callable[[], None]) -> float | None:
    """GFLOP that ``torch.utils.flop_counter.FlopCounterMode`` counts over ``run``; None if it counts none.

    It counts the ops it has formulas for (matrix products, convolutions,
    attention), whatever they compute, padding included; fused RNN kernels
    (cuDNN, oneDNN) are not among them.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        run()
    total = counter.get_total_flops()
    return total / 1e9 if total else None
