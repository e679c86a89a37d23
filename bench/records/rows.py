"""The results row: its columns, the schema version, and the one way a row is made.

Column changes bump ``SCHEMA_VERSION``; ``bench.records.reading`` upgrades older files by
version. The column contract is in docs/architecture.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import socket
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from bench.core.cases import CASE_COLUMN_NAMES, Case
from bench.core.noise import contended_note
from bench.core.roofline import place
from bench.core.stats import PERCENTILES, RoundsSummary, summarize, summarize_percentile, summarize_rounds
from bench.core.timer import Measurement
from bench.records.outcomes import Counted, Failed, Outcome

# Schema versions (``schema_version`` in every row):
#   1: the first release: case axes, timings, throughput, efficiency, errors, provenance.
#      Added later without a new version, and filled in when missing: varlen and impl
#      (an older row is varlen packed/padded from its `packed` column, impl module),
#      state_max_abs_err and compile_s (empty); the tf32 axis (off) and kernel_settings (empty:
#      not recorded). CUDA float32 rows written before the tf32 axis ran cuDNN with TF32 on
#      (torch.backends.cudnn.flags() switched it on); no rnnbench release had run on a GPU then.
#   2: instruction counts (`bench run --metric instructions`): the metric column (time or
#      instructions; a version-1 row is time), instructions, fwd_instructions,
#      bwd_instructions and instructions_spread, and the provenance that counts depend on,
#      cpu_capability (torch's CPU kernel level: AVX2, AVX512, ...) and python_version.
#   3: rounds (bench.execution.rounds): rounds, within_round_rel_ci and between_round_rel_sd; with two
#      rounds or more, median_ms and the CI come from the rounds (bench.core.stats.summarize_rounds).
#      Samples gain a round column. Older rows were one round (one process): rounds is filled
#      in as 1 for their time rows, and their CI covers that one process only.
#   4: the machine's identity beside cpu_model: cpu_count (logical CPUs the OS shows) and
#      mem_gib (its memory), so that a report names machines by what they are. Older
#      rows have them empty (a report fills cpu_count from the run JSON where it has it).
#   5: the roofline (bench.core.roofline): peak_gflop_per_s becomes the compute roof (the best of
#      several engines, named in peak_engine; before, torch.mm of n×n alone), and traffic_mb,
#      intensity_flop_per_byte, attained_gb_per_s, weights_level, level_gb_per_s,
#      roof_gflop_per_s, roof_fraction, floor_ms and bound are added. Older rows have them empty.
#   6: streaming (mode=stream, bench.measure.streaming): the chunk axis (older rows: 1), each
#      call's percentiles with their 95% CIs (p50_ms, p50_ci_low_ms, p50_ci_high_ms and the
#      same for p90, p99, p99_9), cold_call_ms, whole_forward_ms, stream_sequence_ms and
#      stream_overhead. Older rows have them empty.
SCHEMA_VERSION = 6
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6)


SAMPLE_COLUMNS: tuple[str, ...] = ("case_id", "phase", "index", "ms")
# A sweep's samples: each run tagged with its round (0-based; the fresh process it ran in).
ROUND_SAMPLE_COLUMNS: tuple[str, ...] = (*SAMPLE_COLUMNS, "round")
BLOCK_SAMPLE_COLUMNS: tuple[str, ...] = (*SAMPLE_COLUMNS, "block")
# An instruction run's samples: one count per phase of each counted step.
COUNT_SAMPLE_COLUMNS: tuple[str, ...] = ("case_id", "phase", "index", "instructions")


def new_run_id() -> str:
    """A run's id: when, where, and four random hex digits against collisions."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{socket.gethostname().split('.')[0]}-{uuid.uuid4().hex[:4]}"


def now_iso() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass
class Row:
    """One row of a results CSV; its field order (after the case) is the column order."""

    case: Case
    status: str
    error: str = ""
    metric: str = "time"  # what the row measured: time (the *_ms columns) or instructions
    samples: int | None = None  # timed runs, or counted steps
    median_ms: float | None = None
    iqr_ms: float | None = None
    mean_ms: float | None = None
    std_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    ci_low_ms: float | None = None
    ci_high_ms: float | None = None
    rounds: int | None = None  # fresh processes the case was measured in (bench.execution.rounds)
    within_round_rel_ci: float | None = None  # median over rounds of each round's CI half-width / its median
    between_round_rel_sd: float | None = None  # standard deviation of the log round medians
    fwd_median_ms: float | None = None  # training only: the phases apart
    bwd_median_ms: float | None = None
    instructions: int | None = None  # median instructions of a step (1 thread, under callgrind)
    fwd_instructions: int | None = None  # training only: the phases apart
    bwd_instructions: int | None = None
    instructions_spread: float | None = None  # (max - min) / median of the counted steps
    # mode=stream: percentiles of a call's latency over every call of every round, each with its
    # distribution-free 95% CI (bench.core.stats.summarize_percentile); empty with too few calls.
    p50_ms: float | None = None
    p50_ci_low_ms: float | None = None
    p50_ci_high_ms: float | None = None
    p90_ms: float | None = None
    p90_ci_low_ms: float | None = None
    p90_ci_high_ms: float | None = None
    p99_ms: float | None = None
    p99_ci_low_ms: float | None = None
    p99_ci_high_ms: float | None = None
    p99_9_ms: float | None = None
    p99_9_ci_low_ms: float | None = None
    p99_9_ci_high_ms: float | None = None
    cold_call_ms: float | None = None  # the first call after the model was built (median over rounds)
    whole_forward_ms: float | None = None  # one eager forward over the streams' whole sequences
    stream_sequence_ms: float | None = None  # the mean call times the calls that feed one sequence
    stream_overhead: float | None = None  # stream_sequence_ms over whole_forward_ms
    tokens_per_s: float | None = None  # valid tokens only
    padding_fraction: float | None = None
    gflop: float | None = None  # useful work of one step (valid tokens)
    gflop_per_s: float | None = None
    peak_gflop_per_s: float | None = None  # the compute roof of the device, dtype, threads and TF32
    efficiency: float | None = None  # gflop_per_s over the compute roof
    peak_engine: str = ""  # what reached the compute roof
    traffic_mb: float | None = None  # modelled memory traffic of one step (MB), bench.core.roofline
    intensity_flop_per_byte: float | None = None
    attained_gb_per_s: float | None = None  # traffic over the median time
    weights_level: str = ""  # the memory level the recurrent weights fit in (L1, L2, L3, DRAM; L2, HBM)
    level_gb_per_s: float | None = None  # that level's measured bandwidth
    roof_gflop_per_s: float | None = None  # min(compute roof, intensity × level bandwidth)
    roof_fraction: float | None = None  # gflop_per_s over roof_gflop_per_s
    floor_ms: float | None = None  # the case's overhead floor: its cell steps at the tiny case's cost
    bound: str = ""  # compute, memory or overhead
    peak_mem_mb: float | None = None  # CUDA allocator peak
    max_abs_err: float | None = None  # outputs against the packed module
    state_max_abs_err: float | None = None  # final states against the packed module
    compile_s: float | None = None
    other_cpu_cores: float | None = None  # cores other processes kept busy while the case ran
    load_avg_1m: float | None = None  # the machine's load average as the case ended
    note: str = ""
    run_id: str = ""
    timestamp: str = ""
    host: str = ""
    cpu_model: str = ""
    cpu_count: str = ""  # logical CPUs; with cpu_model, what names the machine in a report
    mem_gib: str = ""
    gpu_name: str = ""
    torch_version: str = ""
    cuda_version: str = ""
    cudnn_version: str = ""
    cpu_capability: str = ""  # the CPU kernels torch picked (AVX2, AVX512, ...): counts depend on it
    python_version: str = ""
    kernel_settings: str = ""  # cuDNN/oneDNN and TF32 switches as torch reported them during the case
    git_commit: str = ""
    schema_version: int = SCHEMA_VERSION

    def as_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "case"}
        return {"case_id": self.case.case_id, **self.case.columns(), **values}


STREAM_COLUMNS = (
    *(f"{name}{part}" for name in PERCENTILES for part in ("_ms", "_ci_low_ms", "_ci_high_ms")),
    "cold_call_ms",
    "whole_forward_ms",
    "stream_sequence_ms",
    "stream_overhead",
)
PLACEMENT_COLUMNS = (
    "traffic_mb",
    "intensity_flop_per_byte",
    "attained_gb_per_s",
    "weights_level",
    "level_gb_per_s",
    "roof_gflop_per_s",
    "roof_fraction",
    "floor_ms",
    "bound",
)
CASE_COLUMNS: tuple[str, ...] = ("case_id", *CASE_COLUMN_NAMES)
_ROW_FIELDS = tuple(f.name for f in fields(Row) if f.name != "case")
PROVENANCE_COLUMNS: tuple[str, ...] = _ROW_FIELDS[_ROW_FIELDS.index("run_id") :]
MEASURE_COLUMNS: tuple[str, ...] = _ROW_FIELDS[: _ROW_FIELDS.index("run_id")]
COLUMNS: tuple[str, ...] = CASE_COLUMNS + MEASURE_COLUMNS + PROVENANCE_COLUMNS


def make_row(case: Case, outcome: Outcome, provenance: Mapping[str, str], run_id: str) -> Row:
    """The one way a row is made: a case, what happened to it, where and in which run.

    ``provenance`` holds the environment columns (``bench.measure.env.provenance``, plus
    ``gpu_name`` for CUDA cases).
    """
    known = {k: v for k, v in provenance.items() if k in PROVENANCE_COLUMNS}
    row = Row(case=case, status="ok", run_id=run_id, timestamp=now_iso(), **known)
    if isinstance(outcome, Failed):
        row.status, row.error = outcome.status, outcome.error
        return row
    if isinstance(outcome, Counted):
        return _counted_row(row, outcome)
    m, facts = outcome.measurement, outcome.facts
    s = summarize(m.total_ms)
    for name, value in asdict(s).items():  # samples, median_ms, ..., ci_high_ms: columns of the same name
        setattr(row, name, value)
    row.rounds = m.round_count
    by_rounds = summarize_rounds(m.total_ms, m.rounds) if m.round_count > 1 else None
    if by_rounds is not None:  # the centre and CI across the rounds (bench.core.stats)
        row.median_ms, row.ci_low_ms, row.ci_high_ms = by_rounds.centre_ms, by_rounds.ci_low_ms, by_rounds.ci_high_ms
        row.within_round_rel_ci = by_rounds.within_round_rel_ci
        row.between_round_rel_sd = by_rounds.between_round_rel_sd
    else:
        row.within_round_rel_ci = s.rel_ci_half_width
    rel_ci = (row.ci_high_ms - row.ci_low_ms) / 2 / row.median_ms
    stream_notes = _stream_columns(row, case, m) if case.streaming else []
    if len(m.phases) > 1:  # training: forward and backward apart
        row.fwd_median_ms = phase_centre(m, "fwd")
        row.bwd_median_ms = phase_centre(m, "bwd")
    seconds = row.median_ms / 1e3
    # A stream's throughput is its tokens over the time of all its calls (the mean call), tails included.
    row.tokens_per_s = facts.valid_tokens / ((row.mean_ms if case.streaming else row.median_ms) / 1e3)
    row.padding_fraction = facts.padding_fraction
    row.gflop = facts.gflop
    row.peak_gflop_per_s = outcome.peak_gflop_per_s
    row.kernel_settings = outcome.kernel_settings
    if facts.gflop is not None:
        row.gflop_per_s = facts.gflop / seconds
        peak = outcome.peak_gflop_per_s
        row.efficiency = row.gflop_per_s / peak if peak and peak > 0 else math.nan
    # A stream call is a forward over a (streams, chunk) batch of full sequences: placed as one.
    shape = dataclasses.replace(case, mode="inference", seq_len=case.chunk, chunk=1) if case.streaming else case
    placed = place(shape, facts.valid_tokens, facts.gflop, row.median_ms, outcome.roofs) if outcome.roofs else None
    if outcome.roofs is not None:
        row.peak_engine = outcome.roofs.engine
    if placed is not None:
        for name in PLACEMENT_COLUMNS:
            setattr(row, name, getattr(placed, name))
    for name, value in outcome.extra.items():
        if name not in MEASURE_COLUMNS:  # a typo here would silently drop a column
            raise KeyError(f"{name!r} is not a results column")
        setattr(row, name, value)
    if case.streaming and row.whole_forward_ms and row.stream_sequence_ms:
        row.stream_overhead = row.stream_sequence_ms / row.whole_forward_ms
    notes = list(stream_notes)
    if facts.gflop is None:
        notes.append("no FLOP count: FlopCounterMode counted none of this model's ops (no efficiency)")
    if m.reached_target is False and outcome.target_rel_ci is not None:
        notes.append(
            f"noisy: CI ±{rel_ci:.1%} of the median, target ±{outcome.target_rel_ci:.0%}, "
            f"{s.samples} samples in {m.round_count} round(s), {m.sampling_s:.1f} s"
        )
    if m.reached_target is None and not case.streaming:
        notes.append("no precision target")  # first: readers look for it at the start of the note
    if placed is not None and placed.above:
        notes.append(
            f"above its roof: beat the {' and the '.join(placed.above)} "
            f"({row.gflop_per_s:.1f} GFLOP/s, {placed.attained_gb_per_s:.1f} GB/s modelled)"
        )
    elif row.efficiency is not None and row.efficiency > 1:
        notes.append(f"above the compute roof ({row.efficiency:.0%} of {outcome.peak_gflop_per_s:.1f} GFLOP/s)")
    notes.append(rounds_note(by_rounds))
    contended = contended_note(row.other_cpu_cores)
    if contended:
        notes.append(contended)
    if outcome.schedule:
        notes.append(outcome.schedule)
    row.note = "; ".join(notes)
    return row


def _stream_columns(row: Row, case: Case, m: Measurement) -> list[str]:
    """A stream row's percentiles (each call is a sample) and its sequence time; notes for
    percentiles with too few calls for a CI."""
    calls = m.total_ms
    notes = [f"stream: {calls.size} calls of {case.chunk} token(s) x {case.batch_size} stream(s)"]
    short = []
    for name in PERCENTILES:
        p = summarize_percentile(calls, m.rounds if m.round_count > 1 else None, name)
        if p.value_ms is None:
            short.append(f"{p.label} ({p.too_few})")
            continue
        setattr(row, f"{name}_ms", p.value_ms)
        setattr(row, f"{name}_ci_low_ms", p.ci_low_ms)
        setattr(row, f"{name}_ci_high_ms", p.ci_high_ms)
    if short:
        notes.append(
            "too few calls for a 95% CI (order statistics need 1 - q^n >= 97.5%), left empty: " + ", ".join(short)
        )
    row.stream_sequence_ms = float(np.mean(calls)) * case.calls_per_sequence
    return notes


def phase_centre(m: Measurement, phase: str) -> float | None:
    """A phase's median, across rounds as the row's own (the geometric mean of round medians)."""
    if phase not in m.phases:
        return None
    values = m.phases[phase]
    if m.round_count > 1:
        return summarize_rounds(values, m.rounds).centre_ms
    return summarize(values).median_ms


def rounds_note(by_rounds: RoundsSummary | None) -> str:
    """What the CI covers, and which spread dominates it."""
    if by_rounds is None:
        return "1 round: the CI covers one process only (a rerun may land outside it)"
    spread = (
        f"between rounds ±{by_rounds.between_round_rel_sd:.1%} sd, "
        f"within a round CI ±{by_rounds.within_round_rel_ci:.1%}"
    )
    which = "between rounds dominates" if by_rounds.between_dominates else "within rounds dominates"
    return f"{by_rounds.rounds} rounds: {which} ({spread})"


def _counted_row(row: Row, outcome: Counted) -> Row:
    """An instruction row: counts, no times (the *_ms, throughput and efficiency columns stay empty)."""
    totals = outcome.totals
    median = float(np.median(totals))
    row.metric = "instructions"
    row.samples = int(totals.size)
    row.instructions = round(median)
    if len(outcome.counts) > 1:  # training: forward and backward apart
        row.fwd_instructions = round(float(np.median(outcome.counts["fwd"])))
        row.bwd_instructions = round(float(np.median(outcome.counts["bwd"])))
    row.instructions_spread = float((totals.max() - totals.min()) / median) if median > 0 else math.nan
    row.padding_fraction = outcome.facts.padding_fraction
    row.gflop = outcome.facts.gflop
    row.kernel_settings = outcome.kernel_settings
    row.note = f"instructions: median of {totals.size} counted steps, 1 thread, under callgrind"
    return row


def sample_rows(
    case_id: str, m: Measurement | Counted, blocks: Sequence[int] | None = None, first_index: int = 0
) -> Iterable[dict[str, Any]]:
    """The samples file's rows of one measured case; ``blocks`` gives each run's block, if blocked.

    ``first_index`` numbers the runs on from a case's earlier rounds, so that (case, phase, index)
    stays unique in a file written round by round."""
    if isinstance(m, Counted):
        for phase, counts in m.counts.items():
            for i, count in enumerate(counts):
                yield {"case_id": case_id, "phase": phase, "index": i, "instructions": int(count)}
        return
    for phase, values in m.phases.items():
        for i, ms in enumerate(values):
            row = {"case_id": case_id, "phase": phase, "index": first_index + i, "ms": ms}
            if m.rounds is not None:
                row["round"] = m.rounds[i]
            yield row if blocks is None else row | {"block": blocks[i]}
