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
from bench.core.noise import CONTENDED_CORES, CpuTimes, contended_note, contention_between, cpu_times
from bench.records.outcomes import Measured
from bench.records.rows import make_row

needs_proc = pytest.mark.skipif(cpu_times() is None, reason="needs /proc/stat")


def test_other_processes_share_is_machine_time_less_our_own(monkeypatch):
    # 2 CPUs counting 100 ticks a second: the readings may be off by (2 + 1) ticks = 0.03 s.
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "sysconf", lambda name: 100)
    start = CpuTimes(busy_s=100.0, steal_s=1.0, own_s=10.0, wall_s=50.0)
    end = CpuTimes(busy_s=103.5, steal_s=1.5, own_s=12.0, wall_s=52.0)  # 2 s: 4 s busy, 2 s ours
    contention = contention_between(start, end)
    assert contention is not None and contention.other_cpu_cores == pytest.approx((4 - 2 - 0.03) / 2)
    assert contention.contended
    quiet = CpuTimes(busy_s=102.0, steal_s=1.0, own_s=12.0, wall_s=52.0)  # all the busy time was ours
    assert contention_between(start, quiet).other_cpu_cores == 0.0
    rounding = CpuTimes(busy_s=100.02, steal_s=1.0, own_s=10.0, wall_s=50.2)  # 20 ms of ticks in 0.2 s: rounding
    assert contention_between(start, rounding).other_cpu_cores == 0.0
    assert contention_between(None, end) is None and contention_between(end, start) is None


def test_contended_note_starts_at_a_tenth_of_a_core():
    # docs/methodology.md's promise, as a literal: a tenth of a core, not whatever the constant says.
    assert contended_note(None) is None and contended_note(0.099) is None
    assert contended_note(0.1) is not None
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
def test_our_own_child_processes_count_as_our_own_time():
    """Whatever else runs on the machine: a live child's CPU time is in our own time (so it is
    never counted as another process's), checked against the child's own counters."""
    from bench.core.noise import own_cpu_s

    child = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])  # like torch.compile's workers
    try:
        time.sleep(0.3)  # started and spinning
        own_before, child_before = own_cpu_s(), cpu_ticks(child.pid)
        time.sleep(0.5)
        own_after, child_after = own_cpu_s(), cpu_ticks(child.pid)
    finally:
        child.kill()
        child.wait()
    child_s = (child_after - child_before) / os.sysconf("SC_CLK_TCK")
    assert child_s > 0.05  # it ran
    assert own_after - own_before >= child_s - 0.02  # all of it ours (within a tick per reading)


def test_a_run_warns_when_its_threads_and_other_processes_exceed_the_cores(monkeypatch):
    from bench.core import noise
    from bench.core.noise import Contention, oversubscribed

    class Watch:  # a fixed reading instead of the machine's: the rule, not the moment, is tested
        def __init__(self, cores: float) -> None:
            self.result = Contention(cores, 1.5)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(noise, "CpuWatch", lambda: Watch(0.9))
    assert oversubscribed(2, window_s=0).startswith("warning: other processes use 0.90 core(s) now")
    assert oversubscribed(1, window_s=0) is None  # 1 thread + 0.9 core fits on 2 cores
    monkeypatch.setattr(noise, "CpuWatch", lambda: Watch(0.05))
    assert oversubscribed(2, window_s=0) is None  # an idle machine's background


@pytest.mark.slow
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


@pytest.mark.slow
@needs_proc
def test_env_check_names_the_noise_sources(capsys):
    assert main(["env", "--check"]) == 0
    out = capsys.readouterr().out
    for what in ("CPU frequency governor", "CPU boost / turbo", "load average", "busy processes", "threads"):
        assert what in out
