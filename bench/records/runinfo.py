"""The run JSON (``<run>.json``): one versioned shape, written by a sweep and by ``bench merge``.

``format_version`` history:

* 0 (no ``format_version`` key): two shapes. A sweep wrote ``run_id``, ``schema_version``,
  ``spec_source``, ``axes``, ``timer``, ``cases``, ``sweep_cases``, ``environment``,
  ``started``, ``metric``, ``rounds`` and, when it ended, ``peak_gflop_per_s``,
  ``finished`` and ``status_counts``; ``bench merge`` wrote only ``merged_from``,
  ``missing_cases``, ``sweep_cases`` and ``rows``.
* 1: both write every field of ``RunInfo``; a merged run's ``merged_from`` lists its
  parts, a sweep's is empty.
* 2: ``roofs``: the compute roof per device, dtype, threads and TF32 with every engine
  tried and the theoretical figure, the bandwidth of each memory level, and the overhead
  floors (``bench.measure.peaks.RoofCache.as_dict``); ``peak_gflop_per_s`` keeps the
  compute roofs alone. Older runs have ``roofs`` empty.

Readers get a ``RunInfo`` whatever the version (``read_run_info``); a newer version
than this rnnbench knows is refused in one line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from bench.core.errors import UsageError
from bench.records.files import write_json_atomic

RUN_FORMAT_VERSION = 2


@dataclass
class RunInfo:
    """What a results CSV's rows do not say: how the run was asked for and where it ran."""

    run_id: str = ""
    schema_version: int | None = None  # of the rows this run wrote
    metric: str = "time"
    spec_source: str = ""
    axes: dict[str, list[Any]] = field(default_factory=dict)
    timer: dict[str, Any] = field(default_factory=dict)
    rounds: int | None = None  # time runs: the spec's rounds per case
    cases: list[str] = field(default_factory=list)  # this run's (or shard's) cases
    sweep_cases: list[str] = field(default_factory=list)  # the whole sweep, when this is one shard
    environment: dict[str, Any] = field(default_factory=dict)
    peak_gflop_per_s: dict[str, Any] = field(default_factory=dict)  # the compute roof per key
    roofs: dict[str, Any] = field(default_factory=dict)  # compute, bandwidth and floors (version 2)
    started: str = ""
    finished: str = ""
    status_counts: dict[str, int] = field(default_factory=dict)
    rows: int | None = None
    merged_from: list[dict[str, Any]] = field(default_factory=list)  # bench merge: its parts
    missing_cases: list[str] = field(default_factory=list)  # bench merge: sweep cases in no part

    def write(self, path: Path) -> None:
        write_json_atomic(path, {"format_version": RUN_FORMAT_VERSION, **asdict(self)})


def upgrade(data: dict[str, Any], where: str) -> dict[str, Any]:
    """A run JSON of any known version as the fields of the current one."""
    version = data.get("format_version", 0)
    if not isinstance(version, int) or version > RUN_FORMAT_VERSION:
        raise UsageError(f"{where}: run JSON format_version {version!r} is newer than this rnnbench reads")
    if version == 0 and "merged_from" in data:  # a merge's shape: its rows say the rest
        data = data | {"cases": [], "rows": data.get("rows")}
    known = {f.name for f in fields(RunInfo)}
    return {k: v for k, v in data.items() if k in known}


def read_run_info(path: Path) -> RunInfo:
    """A run JSON, or an empty ``RunInfo`` where there is none (a results CSV alone is still readable)."""
    if not path.is_file():
        return RunInfo()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: not a run JSON ({e})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: not a run JSON (not an object)")
    return RunInfo(**upgrade(data, str(path)))
