"""Sweep specs: a TOML preset plus command-line overrides, expanded into Cases.

A spec file has up to two tables; every key is optional::

    [axes]                      # each axis: a list of values (or one value)
    model = ["lstm", "gru"]
    batch_size = [1, 8, 32]

    [[grid]]                    # optional sub-grids: each overrides some axes;
    num_layers = [1, 2]         # the sweep is the union of their products
    [[grid]]
    batch_size = [1, 64]

    [timer]                     # see bench.core.timer.TimerConfig
    target_rel_ci = 0.02
    min_samples = 10
    budget_s = 1.0

Axes left out take the defaults in ``AXES``. Sub-grids keep a sweep affordable:
a size scan and a structure scan instead of one product of everything. Input is validated here, once, and
every problem is a ``UsageError`` naming the field and the bad value.
"""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bench.core.cases import AXES, AXIS_BY_NAME, INPUT_AXES_BY_NAME, PACKED_ALIAS, Case, parse_list
from bench.core.errors import UsageError
from bench.core.timer import TimerConfig


@dataclass(frozen=True)
class Spec:
    """Axis values (validated, not yet expanded) and the timer settings."""

    axes: dict[str, tuple[Any, ...]]
    timer: TimerConfig
    source: str
    grids: tuple[dict[str, tuple[Any, ...]], ...] = ()


PRESET_DIR = resources.files("bench") / "presets"


def preset_names() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in PRESET_DIR.iterdir() if p.name.endswith(".toml"))


def load_spec(preset: str | None = None, spec_file: str | None = None) -> Spec:
    """Read a preset by name or a spec file (neither: all axis defaults)."""
    if preset and spec_file:
        raise UsageError("--preset and --spec exclude each other: give one")
    if spec_file:
        path = Path(spec_file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--spec {spec_file}: cannot read ({e.__class__.__name__}: {e})") from None
        source = str(path)
    elif preset:
        if preset not in preset_names():
            raise UsageError(f"--preset {preset!r} is unknown (choose from {', '.join(preset_names())})")
        text = (PRESET_DIR / f"{preset}.toml").read_text(encoding="utf-8")
        source = f"preset:{preset}"
    else:
        return Spec({a.name: a.default for a in AXES}, TimerConfig(), "defaults")
    return spec_from_toml(text, source)


def spec_from_toml(text: str, source: str) -> Spec:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{source}: not valid TOML ({e})") from None
    unknown = set(data) - {"axes", "grid", "timer", "description"}
    if unknown:
        raise UsageError(f"{source}: unknown table(s) {', '.join(sorted(unknown))} (allowed: axes, grid, timer)")
    base = _parse_axes(data.get("axes", {}), f"{source} axes")
    axes = {a.name: base.get(a.name, a.default) for a in AXES}
    raw_grids = data.get("grid", [])
    if not isinstance(raw_grids, list):
        raise UsageError(f"{source}: grid must be an array of tables ([[grid]])")
    grids = tuple(_parse_axes(g, f"{source} grid[{i}]") for i, g in enumerate(raw_grids))
    timer = TimerConfig.from_mapping(data.get("timer", {}), f"{source} timer")
    return Spec(axes, timer, source, grids)


def _parse_axes(raw: Any, where: str) -> dict[str, tuple[Any, ...]]:
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: must be a table")
    bad = set(raw) - set(AXIS_BY_NAME) - {"packed"}
    if bad:
        raise UsageError(f"{where}: unknown axis {sorted(bad)[0]!r} (axes: {', '.join(AXIS_BY_NAME)})")
    parsed = {name: parse_list(INPUT_AXES_BY_NAME[name], value, f"{where}.{name}") for name, value in raw.items()}
    return _packed_as_varlen(parsed, f"{where}.packed")


def _packed_as_varlen(axes: dict[str, tuple[Any, ...]], where: str) -> dict[str, tuple[Any, ...]]:
    """Turn the old ``packed`` true/false axis into ``varlen`` packed/padded."""
    if "packed" not in axes:
        return axes
    if "varlen" in axes:
        raise UsageError(f"{where}: give varlen or packed, not both (packed true/false = varlen packed/padded)")
    axes = dict(axes)
    axes["varlen"] = tuple("packed" if p else "padded" for p in axes.pop("packed"))
    return axes


def with_overrides(spec: Spec, overrides: dict[str, str | None]) -> Spec:
    """Replace axes by CLI comma lists (``None`` = not given), in every sub-grid too."""
    axes = dict(spec.axes)
    given = {}
    for name, raw in overrides.items():
        if raw is not None:
            axis = INPUT_AXES_BY_NAME[name]
            given[name] = parse_list(axis, raw, axis.flag)
    given = _packed_as_varlen(given, PACKED_ALIAS.flag)
    axes.update(given)
    grids = tuple({k: v for k, v in g.items() if k not in given} for g in spec.grids)
    return dataclasses.replace(spec, axes=axes, grids=grids)


def expand(spec: Spec, cuda_available: bool, default_threads: int) -> list[Case]:
    """The sweep as Cases: each sub-grid's product in turn, repeats dropped."""
    cases: dict[str, Case] = {}
    for grid in spec.grids or ({},):
        for case in _expand_grid(spec.axes | grid, cuda_available, default_threads):
            cases.setdefault(case.case_id, case)
    return list(cases.values())


def _expand_grid(axes: dict[str, tuple[Any, ...]], cuda_available: bool, default_threads: int) -> list[Case]:
    """One grid's product, in axis order (``bench.measure.checks.check_cases`` checks what needs torch)."""
    axes = dict(axes)
    devices: list[str] = []
    for d in axes["device"]:
        if d == "auto":
            devices += ["cpu", "cuda"] if cuda_available else ["cpu"]
        elif d == "cuda" and not cuda_available:
            raise UsageError(
                "--device: 'cuda' was asked for but torch.cuda.is_available() is False here "
                "(--device cpu runs the sweep on the CPU)"
            )
        else:
            devices.append(d)
    axes["device"] = tuple(dict.fromkeys(devices))
    axes["threads"] = tuple(dict.fromkeys(t or default_threads for t in axes["threads"]))
    names = [a.name for a in AXES]
    cases = [Case(**dict(zip(names, values, strict=True))) for values in itertools.product(*(axes[n] for n in names))]
    # tf32=on is kept only where it changes something, and so is a chunk (repeats are dropped by
    # expand). A stream is fed its whole sequence, with no padding: its varlen and lengths are
    # padded and full whatever the grid says (docs/streaming.md).
    return [_normalized(c) for c in cases]


def _normalized(case: Case) -> Case:
    if not case.tf32_matters:
        case = dataclasses.replace(case, tf32="off")
    if case.streaming:
        return dataclasses.replace(case, varlen="padded", lengths="full")
    return dataclasses.replace(case, chunk=1)


def with_timer_flags(spec: Spec, budget_s: float | None, target_ci: float | None, rounds: int | None) -> Spec:
    """The spec with ``--budget-s``, ``--target-ci`` and ``--rounds`` applied, each checked."""
    timer = spec.timer
    if budget_s is not None:
        if not budget_s > 0:
            raise UsageError(f"--budget-s: {budget_s} must be positive")
        timer = dataclasses.replace(timer, budget_s=budget_s)
    if target_ci is not None:
        if not 0 < target_ci < 1:
            raise UsageError(f"--target-ci: {target_ci} must be a fraction between 0 and 1")
        timer = dataclasses.replace(timer, target_rel_ci=target_ci)
    if rounds is not None:
        timer = timer.with_rounds(rounds)
    return dataclasses.replace(spec, timer=timer)
