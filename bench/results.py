"""Results files: the one place that writes and reads them.

A run writes three files side by side:

* ``<run>.csv``: one row per case (a ``Row``), appended and flushed as each
  case ends, so an interrupted run keeps every finished case;
* ``<run>.samples.csv``: the raw samples (``case_id, phase, index, ms`` and,
  for runs measured in blocks against another tree, ``block``);
* ``<run>.json``: the spec, the environment and the measured peaks.

Every reader of results and samples (report, compare, history, merge, resume)
goes through ``read_results`` and ``read_samples``. They accept what the
writer writes and what pandas writes back after a user filtered a run
(``True``/``False``, ``1``/``0``, ``1.0`` for an integer, empty cells for NaN),
and they upgrade older files (columns added since are filled in). The column
contract is in docs/architecture.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import socket
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import filelock
import numpy as np

from bench.errors import UsageError
from bench.noise import contended_note
from bench.spec import AXES, CASE_COLUMN_NAMES, INPUT_AXES, Case
from bench.stats import RoundsSummary, summarize, summarize_rounds
from bench.timer import Measurement

if TYPE_CHECKING:  # pandas is imported by the readers alone: see _pandas()
    import pandas as pd

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
#   3: rounds (bench.rounds): rounds, within_round_rel_ci and between_round_rel_sd; with two
#      rounds or more, median_ms and the CI come from the rounds (bench.stats.summarize_rounds).
#      Samples gain a round column. Older rows were one round (one process): rounds is filled
#      in as 1 for their time rows, and their CI covers that one process only.
#   4: the machine's identity beside cpu_model: cpu_count (logical CPUs the OS shows) and
#      mem_gib (its memory), so that a report names machines by what they are. Older
#      rows have them empty (a report fills cpu_count from the run JSON where it has it).
SCHEMA_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)

METRICS = ("time", "instructions")
STATUSES = ("ok", "oom", "error", "unsupported")
FAILED_STATUSES = ("oom", "error")  # unsupported: a user's model declined the case, nothing failed
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


@dataclass(frozen=True)
class WorkFacts:
    """What a row needs to know of a built workload besides its timings."""

    valid_tokens: int
    padding_fraction: float
    gflop: float | None  # None: not counted (a user's model FlopCounterMode counts nothing of)


@dataclass(frozen=True)
class Measured:
    """A case that ran: its samples and what else was measured around them."""

    measurement: Measurement
    facts: WorkFacts
    peak_gflop_per_s: float
    target_rel_ci: float | None = None  # the precision target the schedule aimed for, if any
    extra: Mapping[str, float | None] = field(default_factory=dict)  # errors, compile_s, peak_mem_mb
    schedule: str = ""  # how it was sampled, when not alone (side by side, blocks)
    kernel_settings: str = ""  # bench.backends.settings_now() while the case ran


@dataclass(frozen=True)
class Counted:
    """A case whose steps were counted under callgrind (``bench.callgrind``): instructions
    per phase, one count per counted step."""

    counts: Mapping[str, Sequence[int]]
    facts: WorkFacts
    kernel_settings: str = ""

    @property
    def totals(self) -> np.ndarray:
        """Each counted step's instructions, its phases summed."""
        return np.sum([np.asarray(v, dtype=np.int64) for v in self.counts.values()], axis=0)


@dataclass(frozen=True)
class Failed:
    """A case that did not run: ``oom`` or ``error``, with one line saying why."""

    status: str
    error: str


Outcome = Measured | Counted | Failed


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
    rounds: int | None = None  # fresh processes the case was measured in (bench.rounds)
    within_round_rel_ci: float | None = None  # median over rounds of each round's CI half-width / its median
    between_round_rel_sd: float | None = None  # standard deviation of the log round medians
    fwd_median_ms: float | None = None  # training only: the phases apart
    bwd_median_ms: float | None = None
    instructions: int | None = None  # median instructions of a step (1 thread, under callgrind)
    fwd_instructions: int | None = None  # training only: the phases apart
    bwd_instructions: int | None = None
    instructions_spread: float | None = None  # (max - min) / median of the counted steps
    tokens_per_s: float | None = None  # valid tokens only
    padding_fraction: float | None = None
    gflop: float | None = None  # useful work of one step (valid tokens)
    gflop_per_s: float | None = None
    peak_gflop_per_s: float | None = None  # measured matmul peak of the device, dtype, threads
    efficiency: float | None = None
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


CASE_COLUMNS: tuple[str, ...] = ("case_id", *CASE_COLUMN_NAMES)
_ROW_FIELDS = tuple(f.name for f in fields(Row) if f.name != "case")
PROVENANCE_COLUMNS: tuple[str, ...] = _ROW_FIELDS[_ROW_FIELDS.index("run_id") :]
MEASURE_COLUMNS: tuple[str, ...] = _ROW_FIELDS[: _ROW_FIELDS.index("run_id")]
COLUMNS: tuple[str, ...] = CASE_COLUMNS + MEASURE_COLUMNS + PROVENANCE_COLUMNS


def make_row(case: Case, outcome: Outcome, provenance: Mapping[str, str], run_id: str) -> Row:
    """The one way a row is made: a case, what happened to it, where and in which run.

    ``provenance`` holds the environment columns (``bench.env.provenance``, plus
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
    if by_rounds is not None:  # the centre and CI across the rounds (bench.stats)
        row.median_ms, row.ci_low_ms, row.ci_high_ms = by_rounds.centre_ms, by_rounds.ci_low_ms, by_rounds.ci_high_ms
        row.within_round_rel_ci = by_rounds.within_round_rel_ci
        row.between_round_rel_sd = by_rounds.between_round_rel_sd
    else:
        row.within_round_rel_ci = s.rel_ci_half_width
    rel_ci = (row.ci_high_ms - row.ci_low_ms) / 2 / row.median_ms
    if len(m.phases) > 1:  # training: forward and backward apart
        row.fwd_median_ms = phase_centre(m, "fwd")
        row.bwd_median_ms = phase_centre(m, "bwd")
    seconds = row.median_ms / 1e3
    row.tokens_per_s = facts.valid_tokens / seconds
    row.padding_fraction = facts.padding_fraction
    row.gflop = facts.gflop
    row.peak_gflop_per_s = outcome.peak_gflop_per_s
    row.kernel_settings = outcome.kernel_settings
    if facts.gflop is not None:
        row.gflop_per_s = facts.gflop / seconds
        peak = outcome.peak_gflop_per_s
        row.efficiency = row.gflop_per_s / peak if peak and peak > 0 else math.nan
    for name, value in outcome.extra.items():
        if name not in MEASURE_COLUMNS:  # a typo here would silently drop a column
            raise KeyError(f"{name!r} is not a results column")
        setattr(row, name, value)
    notes = []
    if facts.gflop is None:
        notes.append("no FLOP count: FlopCounterMode counted none of this model's ops (no efficiency)")
    if m.reached_target is False and outcome.target_rel_ci is not None:
        notes.append(
            f"noisy: CI ±{rel_ci:.1%} of the median, target ±{outcome.target_rel_ci:.0%}, "
            f"{s.samples} samples in {m.round_count} round(s), {m.sampling_s:.1f} s"
        )
    if m.reached_target is None:
        notes.append("no precision target")
    notes.append(rounds_note(by_rounds))
    contended = contended_note(row.other_cpu_cores)
    if contended:
        notes.append(contended)
    if outcome.schedule:
        notes.append(outcome.schedule)
    row.note = "; ".join(notes)
    return row


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


# --- writing ----------------------------------------------------------------------------------


def run_paths(csv_path: Path) -> tuple[Path, Path]:
    """The samples CSV and run JSON that belong to a results CSV."""
    stem = csv_path.with_suffix("")
    return stem.with_name(stem.name + ".samples.csv"), stem.with_name(stem.name + ".json")


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def repair_torn_tail(path: Path) -> bool:
    """Cut a half-written last line (a hard kill mid-write). True if it cut one."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with path.open("rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return False
        f.truncate(data.rfind(b"\n") + 1)
    return True


class AppendWriter:
    """Appends rows to a CSV, writing the header for a new file; flushes each row."""

    def __init__(self, path: Path, columns: tuple[str, ...], exclusive: bool = False) -> None:
        self.path = path
        self.columns = columns
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock: filelock.BaseFileLock | None = None
        if exclusive:  # two runs appending to one file would interleave rows
            # filelock (a torch dependency) works on every OS; the lock file sits beside the CSV.
            self._lock = filelock.FileLock(str(path) + ".lock")
            try:
                self._lock.acquire(timeout=0)
            except filelock.Timeout:
                raise UsageError(f"{path}: another run is writing this file") from None
        new = not path.exists() or path.stat().st_size == 0
        self._file = path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=columns, lineterminator="\n")
        if new:
            self._writer.writeheader()
            self._flush()

    def write(self, row: Row | Mapping[str, Any]) -> None:
        self.write_many([row])

    def write_many(self, rows: Iterable[Row | Mapping[str, Any]]) -> None:
        for row in rows:
            values = row.as_dict() if isinstance(row, Row) else row
            self._writer.writerow({c: format_value(values.get(c)) for c in self.columns})
        self._flush()

    def _flush(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()
        if self._lock is not None:
            self._lock.release()
            Path(self._lock.lock_file).unlink(missing_ok=True)  # no lock file left beside the results
            self._lock = None


def keep_samples(path: Path, case_ids: set[str], columns: tuple[str, ...]) -> None:
    """Rewrite a samples file keeping only the rows of ``case_ids`` (``--resume``: the cases
    whose rows are out; the rounds ledger gives back the rest). Rows of a file from before
    rounds get round 0: they were measured in one process."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open(newline="", encoding="utf-8") as f:
        kept = [r for r in csv.DictReader(f) if r.get("case_id") in case_ids]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for r in kept:
            writer.writerow({c: r.get(c) or ("0" if c == "round" else "") for c in columns})
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary file and rename it, so readers never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    """A run JSON, or {} where there is none (a results CSV on its own is still readable)."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: not a run JSON ({e})") from None


# --- reading ----------------------------------------------------------------------------------

TEXT_COLUMNS = ("status", "error", "metric", "note", *PROVENANCE_COLUMNS[:-1])  # schema_version is a number
NUMERIC_COLUMNS = tuple(c for c in MEASURE_COLUMNS if c not in TEXT_COLUMNS)
# Present in every version-1 file; the rest is filled in for files from before it was added.
REQUIRED_COLUMNS = (
    *(c for c in CASE_COLUMNS if c not in ("varlen", "impl", "tf32")),
    "status",
    "median_ms",
    "ci_low_ms",
    "ci_high_ms",
    "run_id",
    "schema_version",
)
INT_AXES = tuple(a.name for a in AXES if a.kind == "int")
BOOL_AXES = tuple(a.name for a in INPUT_AXES if a.kind == "bool")
# What our writer and pandas (after read_csv/to_csv) write for booleans.
BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}


def _pandas() -> Any:
    """pandas, imported when a file is read: the instruction-count worker imports this module
    under valgrind to write nothing, and importing pandas there costs ~20 s of instrumented code."""
    import pandas

    return pandas


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    """A CSV as strings (empty cells as ""); UsageError for anything unreadable."""
    pd = _pandas()
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise UsageError(f"{path}: empty file, not a {what}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise UsageError(f"{path}: cannot read as CSV ({str(e).splitlines()[0]})") from None


def _integers(path: Path, df: pd.DataFrame, col: str) -> pd.Series:
    values = _pandas().to_numeric(df[col], errors="coerce")
    if values.isna().any() or (values != values.round()).any():
        bad = df[col][values.isna() | (values != values.round())].iloc[0]
        raise UsageError(f"{path}: column {col!r} holds a non-integer ({bad!r})")
    return values.astype(int)


def read_results(path: Path, allow_empty: bool = False) -> pd.DataFrame:
    """One results CSV as a typed frame (upgraded to the current columns); UsageError for anything off."""
    pd = _pandas()
    df = _read_csv(path, "results CSV")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise UsageError(f"{path}: not a results CSV (missing column {missing[0]!r})")
    if df.empty and not allow_empty:
        raise UsageError(f"{path}: no rows")
    readable = {str(v) for v in READABLE_VERSIONS}
    # "1.0" is pandas' way of writing 1 back.
    versions = df["schema_version"].str.strip().str.replace(r"\.0$", "", regex=True)
    unknown = sorted(set(versions) - readable)
    if unknown:
        supported = ", ".join(sorted(readable))
        raise UsageError(f"{path}: schema_version {unknown[0]!r} is not supported (this rnnbench reads {supported})")
    df["schema_version"] = SCHEMA_VERSION  # upgraded below
    dup = df["case_id"][df["case_id"].duplicated()]
    if not dup.empty:
        raise UsageError(f"{path}: duplicate case_id {dup.iloc[0]!r}")
    bad_status = set(df["status"]) - set(STATUSES)
    if bad_status:
        raise UsageError(f"{path}: status {sorted(bad_status)[0]!r} is not one of {', '.join(STATUSES)}")
    for col in INT_AXES:
        df[col] = _integers(path, df, col)
    for col in BOOL_AXES:
        parsed = df[col].str.strip().str.lower().map(BOOL_TEXT)
        if parsed.isna().any():
            raise UsageError(f"{path}: column {col!r} must hold true/false (found {df[col][parsed.isna()].iloc[0]!r})")
        df[col] = parsed.astype(bool)
    if "varlen" not in df.columns:  # before the varlen axis: packed or padded
        df["varlen"] = df["packed"].map({True: "packed", False: "padded"})
    if "impl" not in df.columns:  # before the impl axis: the nn.LSTM/nn.GRU modules
        df["impl"] = "module"
    if "tf32" not in df.columns:  # before the tf32 axis
        df["tf32"] = "off"
    if "rounds" not in df.columns:  # before rounds: every time row was measured in one process
        df["rounds"] = ((df["status"] == "ok") & (df.get("metric", "time") == "time")).map({True: "1", False: ""})
    for col in NUMERIC_COLUMNS:
        if col not in df.columns:
            df[col] = ""  # a column added after this file was written
        raw = df[col]
        df[col] = pd.to_numeric(raw, errors="coerce")
        wrong = df[col].isna() & (raw.str.strip() != "") & (raw.str.lower() != "nan")
        if wrong.any():
            raise UsageError(f"{path}: column {col!r} holds a non-number ({raw[wrong].iloc[0]!r})")
    for col in TEXT_COLUMNS:
        if col not in df.columns:
            df[col] = "time" if col == "metric" else ""  # a version-1 file: every row timed
    bad_metric = set(df["metric"]) - set(METRICS)
    if bad_metric:
        raise UsageError(f"{path}: metric {sorted(bad_metric)[0]!r} is not one of {', '.join(METRICS)}")
    # pandas writes an integer column with a gap as floats: cuDNN 90100 comes back as 90100.0.
    df["cudnn_version"] = df["cudnn_version"].str.replace(r"^(\d+)\.0$", r"\1", regex=True)
    ok = df["status"] == "ok"
    timed = df["metric"] == "time"
    if (ok & timed & ~(df["median_ms"] > 0)).any():
        raise UsageError(f"{path}: an ok time row has no positive median_ms")
    if (ok & ~timed & ~(df["instructions"] > 0)).any():
        raise UsageError(f"{path}: an ok instructions row has no positive instructions count")
    df["source"] = path.name
    return df


def read_samples(csv_path: Path) -> pd.DataFrame:
    """The raw samples of a results CSV: case_id, phase, index, then ms (and block, if blocked),
    or instructions for an instruction run."""
    pd = _pandas()
    path, _ = run_paths(csv_path)
    if not path.is_file():
        raise UsageError(f"{csv_path}: its raw samples {path.name} are missing")
    df = _read_csv(path, "samples CSV")
    if list(df.columns)[:4] not in (list(SAMPLE_COLUMNS), list(COUNT_SAMPLE_COLUMNS)):
        raise UsageError(f"{path}: not a samples CSV (want columns {', '.join(SAMPLE_COLUMNS)})")
    for col in ("ms", "instructions", "index", "block", "round"):
        if col in df:
            values = pd.to_numeric(df[col], errors="coerce")
            if values.isna().any():
                raise UsageError(f"{path}: column {col!r} holds a non-number")
            df[col] = values if col == "ms" else values.astype("int64")
    return df


def results_files(inputs: Sequence[Path], what: str, recursive: bool = False) -> list[Path]:
    """Results CSVs named directly or found in folders (samples files left out)."""
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = p.rglob("*.csv") if recursive else p.glob("*.csv")
            files += sorted(f for f in found if not f.name.endswith(".samples.csv"))
        elif p.is_file():
            files.append(p)
        else:
            raise UsageError(f"{p}: no such file or folder")
    if not files:
        raise UsageError(f"no {what} in {', '.join(map(str, inputs))}")
    return files
