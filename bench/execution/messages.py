"""Every message between the suite's processes, built and parsed here, each with a version.

Four conversations:

* the ``--against`` worker (``bench.worker``, JSON lines over stdin/stdout). The other tree
  may be older or newer than this one, so replies are read by key and an older tree's
  unversioned reply (version 0) is still read: it may lack ``status`` (it sent
  ``oom``), the error columns, ``compile_s`` and ``kernel_settings``;
* the callgrind counter (``bench.execution.callgrind``: a job file in, JSON lines out);
* the ``--isolate`` child (``bench.execution.isolate``: one pickled outcome over a pipe);
* a round's worker (``bench.execution.rounds``: pickled requests and replies over a pipe).

``MESSAGE_VERSION`` history: 0, no ``v`` key (before this module); 1, every message has
``"v": 1``, with the fields it had at version 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.core.cases import Case
from bench.records.outcomes import Counted, Failed, Outcome, WorkFacts

MESSAGE_VERSION = 1
ERROR_COLUMNS = ("max_abs_err", "state_max_abs_err", "compile_s")


def stamp(body: Mapping[str, Any]) -> dict[str, Any]:
    """A message: its body with the version."""
    return {"v": MESSAGE_VERSION, **body}


def version_of(message: Mapping[str, Any]) -> int:
    """A message's version; 0 for an older tree's unversioned one."""
    version = message.get("v", 0)
    return version if isinstance(version, int) else 0


def to_line(message: Mapping[str, Any]) -> str:
    return json.dumps(message) + "\n"


def from_line(line: str) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError(f"not a message: {line[:80]!r}")
    return message


# --- the --against worker ----------------------------------------------------------------------


def case_request(case: Case) -> dict[str, Any]:
    """Build and warm up ``case`` (an older worker reads ``case`` and ignores ``v``)."""
    return stamp({"case": case.wire_axes()})


def block_request(block_s: float) -> dict[str, Any]:
    """Measure one block of about ``block_s`` seconds."""
    return stamp({"block_s": block_s})


@dataclass(frozen=True)
class CaseRequest:
    axes: dict[str, Any]


@dataclass(frozen=True)
class BlockRequest:
    block_s: float


def parse_request(message: Mapping[str, Any]) -> CaseRequest | BlockRequest | None:
    """What the worker is asked; None for a request it does not know."""
    if "case" in message:
        return CaseRequest(dict(message["case"]))
    if "block_s" in message:
        return BlockRequest(float(message["block_s"]))
    return None


@dataclass(frozen=True)
class Ready:
    """A worker's case, built and warmed up: what a row needs besides the samples."""

    facts: WorkFacts
    extra: dict[str, float | None]  # ERROR_COLUMNS
    peak_gflop_per_s: float
    kernel_settings: str
    provenance: dict[str, str]
    gpu_name: str


def ready_reply(ready: Ready) -> dict[str, Any]:
    return stamp(
        {
            "ready": True,
            **asdict(ready.facts),
            **ready.extra,
            "peak_gflop_per_s": ready.peak_gflop_per_s,
            "kernel_settings": ready.kernel_settings,
            "provenance": ready.provenance,
            "gpu_name": ready.gpu_name,
        }
    )


def failed_reply(failed: Failed, trace: str = "") -> dict[str, Any]:
    # "oom" too, for an older tree's parent that reads it instead of status.
    return stamp({"error": failed.error, "oom": failed.status == "oom", "status": failed.status, "trace": trace})


def phases_reply(phases: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    return stamp({"phases": {name: list(values) for name, values in phases.items()}})


def unknown_reply(message: Mapping[str, Any]) -> dict[str, Any]:
    return stamp({"error": f"unknown request {sorted(message)}", "status": "error"})


def _failed(reply: Mapping[str, Any]) -> Failed:
    # Version 0 replies before the unsupported status sent only "oom".
    status = reply.get("status") or ("oom" if reply.get("oom") else "error")
    return Failed(status, str(reply["error"]))


def parse_ready(reply: Mapping[str, Any]) -> Ready | Failed:
    """A reply to ``case_request``, of any version."""
    if "error" in reply:
        return _failed(reply)
    return Ready(
        facts=WorkFacts(reply["valid_tokens"], reply["padding_fraction"], reply["gflop"]),
        extra={k: reply.get(k) for k in ERROR_COLUMNS},  # absent from older trees' replies
        peak_gflop_per_s=reply["peak_gflop_per_s"],
        kernel_settings=reply.get("kernel_settings", ""),
        provenance=dict(reply["provenance"]),
        gpu_name=reply.get("gpu_name", ""),
    )


def parse_phases(reply: Mapping[str, Any]) -> dict[str, list[float]] | Failed:
    """A reply to ``block_request``: each phase's times (ms), or why the block failed."""
    if "error" in reply:
        return _failed(reply)
    return {name: [float(ms) for ms in values] for name, values in reply["phases"].items()}


# --- the callgrind counter ---------------------------------------------------------------------


@dataclass(frozen=True)
class CountJob:
    """A counting process's share of the cases."""

    cases: list[Case]
    repeats: int
    warmups: int
    sys_path: list[str]  # the parent's import path, so that the counter runs the same code


def count_job(job: CountJob) -> dict[str, Any]:
    return stamp(
        {
            "cases": [c.wire_axes() for c in job.cases],
            "repeats": job.repeats,
            "warmups": job.warmups,
            "sys_path": job.sys_path,
        }
    )


def parse_count_job(message: Mapping[str, Any]) -> CountJob:
    cases = [Case.from_axes(axes) for axes in message["cases"]]
    return CountJob(cases, int(message["repeats"]), int(message["warmups"]), list(message["sys_path"]))


def counted_record(case_id: str, counted: Counted) -> dict[str, Any]:
    counts = {name: [int(c) for c in values] for name, values in counted.counts.items()}
    body = {"case_id": case_id, "status": "ok", "counts": counts, "facts": asdict(counted.facts)}
    return stamp(body | {"kernel_settings": counted.kernel_settings})


def failed_record(case_id: str, failed: Failed) -> dict[str, Any]:
    return stamp({"case_id": case_id, "status": failed.status, "error": failed.error})


def fatal_record(why: str) -> dict[str, Any]:
    """Nothing in this process can count (torch without valgrind support, ...)."""
    return stamp({"fatal": why})


@dataclass(frozen=True)
class Fatal:
    why: str


def parse_count_record(message: Mapping[str, Any]) -> tuple[str, Outcome] | Fatal:
    """A counter's line: a case id and its outcome, or why nothing can be counted."""
    if "fatal" in message:
        return Fatal(str(message["fatal"]))
    case_id = str(message["case_id"])
    if message["status"] != "ok":
        return case_id, Failed(message["status"], message["error"])
    facts = WorkFacts(**message["facts"])
    return case_id, Counted(message["counts"], facts, message.get("kernel_settings", ""))


# --- a round's worker --------------------------------------------------------------------------


def round_request(cases: Sequence[Case], config: Any, peaks: Mapping[Case, float]) -> dict[str, Any]:
    """Measure one unit's ``cases`` under the timer ``config``, against their ``peaks``."""
    return stamp({"cases": list(cases), "config": config, "peaks": dict(peaks)})


def parse_round_request(message: Any) -> tuple[list[Case], Any, dict[Case, float]]:
    """(cases, timer config, peaks); before version 1 the request was that tuple itself."""
    if isinstance(message, dict):
        return list(message["cases"]), message["config"], dict(message["peaks"])
    cases, config, peaks = message
    return list(cases), config, dict(peaks)


def round_reply(outcomes: Sequence[tuple[Case, Outcome]]) -> dict[str, Any]:
    return stamp({"outcomes": list(outcomes)})


def parse_round_reply(message: Any) -> list[tuple[Case, Outcome]]:
    """The unit's outcomes; before version 1 the reply was the list itself."""
    return list(message["outcomes"]) if isinstance(message, dict) else list(message)


# --- the --isolate child -----------------------------------------------------------------------


def isolate_reply(result: Any) -> dict[str, Any]:
    """What the child sends back: whatever its callable returned (pickled with the message)."""
    return stamp({"result": result})


def parse_isolate_reply(message: Any) -> Any:
    """The child's result; an unversioned message (before version 1) is the result itself."""
    if isinstance(message, dict) and "result" in message and version_of(message) >= 1:
        return message["result"]
    return message
