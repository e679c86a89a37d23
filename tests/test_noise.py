"""The noise guard: other processes' CPU time is recorded per case and flags it contended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from factories import PROVENANCE, make_case, measured

from bench.cli import main
from bench.noise import CONTENDED_CORES, CpuTimes, CpuWatch, contended_note, contention_between, cpu_times
from bench.results import Measured, make_row

needs_proc = pytest.mark.skipif(cpu_times() is None, reason="needs /proc/stat")


def test_other_processes_share_is_machine_time_less_our_own():
    start = CpuTimes(busy_s=100.0, steal_s=1.0, own_s=10.0, wall_s=50.0)
    end = CpuTimes(busy_s=103.5, steal_s=1.5, own_s=12.0, wall_s=52.0)  # 2 s: 4 s busy, 2 s ours
    contention = contention_between(start, end)
    tick_s = ((os.cpu_count() or 1) + 1) / os.sysconf("SC_CLK_TCK")  # the counters' granularity, taken off
    assert contention is not None and contention.other_cpu_cores == pytest.approx(1.0 - tick_s / 2)
    assert contention.contended
    quiet = CpuTimes(busy_s=102.0, steal_s=1.0, own_s=12.0, wall_s=52.0)  # all the busy time was ours
    assert contention_between(start, quiet).other_cpu_cores == 0.0
    rounding = CpuTimes(busy_s=100.02, steal_s=1.0, own_s=10.0, wall_s=50.2)  # 20 ms of ticks in 0.2 s: rounding
    assert contention_between(start, rounding).other_cpu_cores == 0.0
    assert contention_between(None, end) is None and contention_between(end, start) is None


def test_contended_note_starts_at_a_tenth_of_a_core():
    assert contended_note(None) is None and contended_note(CONTENDED_CORES / 2) is None
    assert contended_note(0.9).startswith("contended: other processes used 0.90 core(s)")


def test_make_row_marks_contended_cases():
    m = measured([1.0, 1.1, 0.9, 1.0, 1.05, 0.95])
    busy = Measured(m.measurement, m.facts, m.peak_gflop_per_s, 0.02, {"other_cpu_cores": 0.8, "load_avg_1m": 1.5})
    quiet = Measured(m.measurement, m.facts, m.peak_gflop_per_s, 0.02, {"other_cpu_cores": 0.01})
    assert "contended" in make_row(make_case(), busy, PROVENANCE, "r").note
    row = make_row(make_case(), quiet, PROVENANCE, "r")
    assert "contended" not in row.note and row.other_cpu_cores == 0.01


BUSY_LOOP = (
    "import os\n"
    "try:\n    os.sched_setaffinity(0, {os.cpu_count() - 1})\n"
    "except (AttributeError, OSError):\n    pass\n"
    "while True:\n    pass\n"
)


def cpu_ticks(pid: int) -> int:
    """User plus system CPU time of a process, in clock ticks (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.fixture
def busy_core():
    """A busy loop pinned to the last core, in a process that is not ours: started by a
    shell that exits at once, so it is nobody's child here (our own children count as us)."""
    shell = subprocess.run(
        ["sh", "-c", f'{sys.executable} -c "$0" >/dev/null 2>&1 & echo $!', BUSY_LOOP],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(shell.stdout.strip())
    # Wait until it spins (its interpreter takes a while to start): a fast run could end first.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        before = cpu_ticks(pid)
        time.sleep(0.2)
        if cpu_ticks(pid) - before >= 10:  # at least half a core over the last 0.2 s (100 ticks/s)
            break
    yield pid
    os.kill(pid, signal.SIGKILL)


@needs_proc
def test_our_own_child_processes_are_not_other_processes():
    child = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])  # like torch.compile's workers
    try:
        time.sleep(0.3)  # started and spinning
        with CpuWatch() as watch:
            time.sleep(0.5)
    finally:
        child.kill()
        child.wait()
    assert watch.result is not None and watch.result.other_cpu_cores < CONTENDED_CORES


@needs_proc
def test_a_run_beside_a_busy_process_marks_its_rows_contended(tmp_path, tiny_spec, busy_core, capsys):
    out = tmp_path / "busy.csv"
    # 0.3 s per case (a target it cannot reach keeps it sampling that long): /proc/stat counts in
    # 10 ms ticks, too coarse for a case that meets its target in a few ticks.
    argv = ["run", "--spec", str(tiny_spec), "--batch-size", "4", "--budget-s", "0.3", "--target-ci", "1e-6"]
    argv += ["--out", str(out)]
    assert main([*argv, "--mode", "inference", "--packed", "false", "--threads", "2"]) == 0
    rows = pd.read_csv(out)
    assert len(rows) == 2
    assert (rows["other_cpu_cores"] >= CONTENDED_CORES).all()
    assert rows["note"].str.contains("contended: other processes used").all()
    if (os.cpu_count() or 1) <= 2:  # a busy core plus 2 torch threads: more than the machine has
        assert "warning: other processes use" in capsys.readouterr().err


@needs_proc
def test_env_check_names_the_noise_sources(capsys):
    assert main(["env", "--check"]) == 0
    out = capsys.readouterr().out
    for what in ("CPU frequency governor", "CPU boost / turbo", "load average", "busy processes", "threads"):
        assert what in out
