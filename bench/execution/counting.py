"""Run cases under callgrind (``bench run --metric instructions``) and collect their counts.

The cases are dealt round-robin to ``jobs`` valgrind processes (``bench.execution.callgrind``),
which run at once: instruction counts do not care what else the machine is doing,
so the processes may share the cores. Each reports a case as soon as it is counted;
the outcomes are yielded in that order, so the sweep writes every row as it comes
and a crash loses only the cases not yet counted (they become error rows).
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from bench.core.cases import Case
from bench.core.errors import UsageError
from bench.core.paths import REPO_ROOT
from bench.execution import messages
from bench.execution.callgrind import OUT_FILE_ENV
from bench.execution.trees import tree_env
from bench.records.outcomes import Failed, Outcome

INSTALL_HINT = (
    "--metric instructions needs valgrind, which is not installed here "
    "(Debian/Ubuntu: apt-get install valgrind; Fedora: dnf install valgrind)"
)
REPEATS = 5  # counted steps per case: the row keeps their median and spread
WARMUPS = 20  # uncounted steps first: allocator growth, oneDNN primitives, Python's specializing interpreter
# Python's string hashes change the work of dict and set operations: one seed for
# every counting process makes their counts comparable to the instruction.
HASH_SEED = "0"


def valgrind() -> str:
    """The valgrind executable; UsageError (exit 2) with how to install it where there is none."""
    path = shutil.which("valgrind")
    if path is None:
        raise UsageError(INSTALL_HINT)
    return path


def command(out_file: Path, job: Path) -> list[str]:
    return [
        valgrind(),
        "--tool=callgrind",
        "--quiet",
        "--collect-atstart=no",  # nothing counts until the clock switches collection on
        "--dump-instr=no",  # the dumps' totals are all we read: keep them small
        "--dump-line=no",
        f"--callgrind-out-file={out_file}",
        sys.executable,
        "-m",
        "bench.execution.callgrind",
        str(job),
    ]


class _Worker:
    """One valgrind process counting its share of the cases."""

    def __init__(self, cases: Sequence[Case], folder: Path, lines: queue.Queue) -> None:
        self.cases = {c.case_id: c for c in cases}
        self.folder = folder
        self.stderr_path = folder / "stderr.log"
        job = folder / "job.json"
        sys_path = [str(REPO_ROOT), *(p for p in sys.path if p)]
        message = messages.count_job(messages.CountJob(list(cases), REPEATS, WARMUPS, sys_path))
        job.write_text(messages.to_line(message), encoding="utf-8")
        out_file = folder / "callgrind.out.%p"  # one file name per process: the parent and each case's child
        env = (
            os.environ
            | {
                OUT_FILE_ENV: str(out_file),
                "PYTHONHASHSEED": HASH_SEED,
                "OMP_NUM_THREADS": "1",  # counts are per step on one thread
            }
            | {"PYTHONPATH": tree_env(REPO_ROOT)["PYTHONPATH"]}
        )
        # cwd: the checkout, not this temporary folder. `python -m` puts the cwd on sys.path,
        # and a random folder name there changed counts by up to 0.4% between runs.
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                command(out_file, job), stdout=subprocess.PIPE, stderr=stderr, env=env, text=True, cwd=REPO_ROOT
            )
        assert self.process.stdout is not None
        self.reader = threading.Thread(target=self._read, args=(self.process.stdout, lines), daemon=True)
        self.reader.start()

    def _read(self, stdout: IO[str], lines: queue.Queue) -> None:
        for line in stdout:
            lines.put((self, line))
        lines.put((self, None))

    def why_ended(self) -> str:
        """One line on why the process stopped early: its exit code and its last words."""
        code = self.process.wait()
        tail = [line for line in self.stderr_path.read_text(errors="replace").splitlines() if line.strip()]
        return f"the counting process exited with {code}" + (f": {tail[-1].strip()}" if tail else "")


def count_cases(cases: Sequence[Case], jobs: int) -> Iterator[tuple[Case, Outcome]]:
    """Every case's outcome, as the valgrind processes report them."""
    if not cases:
        return
    jobs = max(1, min(jobs, len(cases)))
    lines: queue.Queue = queue.Queue()
    with tempfile.TemporaryDirectory(prefix="rnnbench-callgrind-") as tmp:
        workers: list[_Worker] = []
        try:
            for k in range(jobs):
                folder = Path(tmp) / f"worker{k}"
                folder.mkdir()
                workers.append(_Worker(cases[k::jobs], folder, lines))
            running = len(workers)
            while running:
                worker, line = lines.get()
                if line is None:  # the process closed its output: what it did not report failed
                    running -= 1
                    why = worker.why_ended()
                    for case in worker.cases.values():
                        yield case, Failed("error", why)
                    worker.cases.clear()
                    continue
                record = messages.parse_count_record(messages.from_line(line))
                if isinstance(record, messages.Fatal):  # nothing in this process can count
                    raise UsageError(f"--metric instructions: {record.why}")
                case_id, outcome = record
                yield worker.cases.pop(case_id), outcome
        finally:
            for worker in workers:
                if worker.process.poll() is None:
                    worker.process.kill()
                worker.process.wait()
