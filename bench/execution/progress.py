"""Progress bar and end-of-run table, with rich (a required dependency).

A terminal gets a live bar; a log file or CI job gets one plain line per case.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bench.records.rows import Row


class Bar:
    """``with Bar(n) as bar: bar.start(case_id); ...; bar.advance(case_id, status, detail)``."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self._started = time.perf_counter()
        self._progress = None
        # A log file or CI job gets one plain line per case; a terminal gets a live bar.
        if Console(stderr=True).is_terminal:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._task = self._progress.add_task("starting", total=total)

    def __enter__(self) -> Bar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def extend(self, more: int) -> None:
        """``more`` steps were added to the work (a case's extra rounds)."""
        self.total += more
        if self._progress is not None:
            self._progress.update(self._task, total=self.total)

    def start(self, case_id: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=case_id)

    def advance(self, case_id: str, status: str, detail: str = "") -> None:
        """One case done: its status and a short detail (its median, or its error)."""
        self.done += 1
        if self._progress is not None:
            self._progress.advance(self._task)
        else:
            line = f"[{self.done}/{self.total}] {case_id}: {status} {detail}".rstrip()
            print(line + self.eta(), file=sys.stderr, flush=True)

    def eta(self) -> str:
        """`` (ETA 3 min 20 s)``: the cases left at the mean pace so far; empty when done."""
        left = self.total - self.done
        if left <= 0 or self.done == 0:
            return ""
        seconds = round((time.perf_counter() - self._started) / self.done * left)
        minutes, seconds = divmod(seconds, 60)
        return f" (ETA {minutes} min {seconds} s)" if minutes else f" (ETA {seconds} s)"


def _cells(row: Row) -> list[str]:
    case_id = row.case.case_id
    if row.status != "ok" or row.median_ms is None:
        return [case_id, row.status, "", "", "", row.error[:60]]
    half = (row.ci_high_ms - row.ci_low_ms) / 2 / row.median_ms
    return [
        case_id,
        "ok",
        f"{row.median_ms:.3f}",
        f"±{half:.1%}",
        f"{row.tokens_per_s:.3g}",
        ("" if row.efficiency is None else f"{row.efficiency:.1%}")  # None: a model without a FLOP count
        + (" noisy" if row.note.startswith("noisy") else ""),
    ]


def _count_cells(row: Row) -> list[str]:
    case_id = row.case.case_id
    if row.status != "ok" or row.instructions is None:
        return [case_id, row.status, "", "", "", row.error[:60]]
    valid_tokens = row.case.batch_size * row.case.seq_len * (1 - (row.padding_fraction or 0.0))
    return [
        case_id,
        "ok",
        f"{row.instructions / 1e6:.3f}",
        f"{row.instructions_spread:.2%}",
        f"{row.instructions / valid_tokens:,.0f}",
        "",
    ]


def summary_table(rows: Sequence[Row], limit: int = 30) -> None:
    """The slowest (most instructions) ``limit`` cases plus every failed one, to stderr."""
    counted = any(r.metric == "instructions" for r in rows)
    failed = [r for r in rows if r.status != "ok"]
    size = (lambda r: r.instructions or 0) if counted else (lambda r: r.median_ms or 0.0)
    ok = sorted((r for r in rows if r.status == "ok"), key=lambda r: -size(r))
    shown = failed + ok[: max(0, limit - len(failed))]
    if counted:
        headers = ["case_id", "status", "M instructions", "spread", "per valid token", ""]
        title = f"{len(rows)} cases ({len(failed)} failed); most instructions first"
    else:
        headers = ["case_id", "status", "median_ms", "95% CI", "tokens/s", "efficiency"]
        title = f"{len(rows)} cases ({len(failed)} failed); slowest first"
    table = Table(*headers, title=title)
    for r in shown:
        table.add_row(*(_count_cells(r) if counted else _cells(r)))
    console = Console(stderr=True)
    if not console.is_terminal:
        console.width = 160  # logs and CI: room for whole case ids
    console.print(table)
    if len(rows) > len(shown):
        print(f"... and {len(rows) - len(shown)} more cases in the CSV", file=sys.stderr)
