"""How busy the machine was while a case ran, and what else on it makes timings noisy.

With two threads on two cores, any other busy process slows torch several-fold
(OpenMP threads spin against it); such a case looks merely "noisy" by its CI.
``CpuWatch`` reads the machine's CPU time from ``/proc/stat`` and this
process's own from ``os.times()`` around a case: the difference is what other
processes used meanwhile, given in cores (``other_cpu_cores``: 1.0 is one core
busy the whole time). ``system_checks`` is ``bench env --check``: the machine's
noise sources and what to do about each, as ``pyperf system show`` lists them.

Standard library only: on a system without ``/proc`` the readings are ``None``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

# Other processes using a tenth of a core on average while a case ran: enough
# to matter where torch's threads fill the cores, well above an idle machine's
# background (about 0.01 core measured on the 2-core dev VM).
CONTENDED_CORES = 0.10
PROC_STAT = Path("/proc/stat")
CPU_DIR = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class CpuTimes:
    """Machine-wide busy and steal seconds, this process's CPU seconds, and the wall clock."""

    busy_s: float
    steal_s: float
    own_s: float
    wall_s: float


def cpu_times() -> CpuTimes | None:
    """A reading now, or None where ``/proc/stat`` cannot be read."""
    try:
        fields = PROC_STAT.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if fields[0] != "cpu" or len(fields) < 9:
        return None
    ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return CpuTimes((user + nice + system + irq + softirq) / hz, steal / hz, own_cpu_s(), time.perf_counter())


def _process_table() -> dict[int, tuple[str, int, int]]:
    """Every process: pid -> (name, parent pid, user + system ticks)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        text = _read(stat)
        if not text or ")" not in text:
            continue  # gone meanwhile
        name = text[text.index("(") + 1 : text.rindex(")")]
        rest = text[text.rindex(")") + 2 :].split()
        table[int(stat.parent.name)] = (name, int(rest[1]), int(rest[11]) + int(rest[12]))
    return table


def own_cpu_s() -> float:
    """CPU seconds of this process and every process below it.

    torch.compile's compile workers, ``--isolate`` children and the like are the
    run's own work, not other processes'; os.times() counts children only once
    they have been waited for, so the live ones are read from /proc.
    """
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    below: set[int] = set()
    todo = [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in below:
                below.add(child)
                todo.append(child)
    return own + sum(table[pid][2] for pid in below) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Contention:
    """What other processes did while a case ran."""

    other_cpu_cores: float  # average cores busy with other processes (steal included)
    load_avg_1m: float | None

    @property
    def contended(self) -> bool:
        return self.other_cpu_cores >= CONTENDED_CORES

    def columns(self) -> dict[str, float | None]:
        """The results columns that record it."""
        return {"other_cpu_cores": self.other_cpu_cores, "load_avg_1m": self.load_avg_1m}


def contended_note(other_cpu_cores: float | None) -> str | None:
    """The row's note for a case that shared the machine, or None."""
    if other_cpu_cores is None or other_cpu_cores < CONTENDED_CORES:
        return None
    share = other_cpu_cores / (os.cpu_count() or 1)
    return f"contended: other processes used {other_cpu_cores:.2f} core(s) ({share:.0%} of the machine) while it ran"


def contention_between(start: CpuTimes | None, end: CpuTimes | None) -> Contention | None:
    """Other processes' share between two readings (None without readings or time between them)."""
    if start is None or end is None or end.wall_s <= start.wall_s:
        return None
    busy = (end.busy_s - start.busy_s) + (end.steal_s - start.steal_s)
    own = end.own_s - start.own_s
    # Both counters move in ticks of 1/CLK_TCK (10 ms), /proc/stat's once per CPU: a
    # difference can be off by that much without anyone else running. Over a 0.2 s
    # case on 2 CPUs that is 0.15 core, so the granularity is taken off: the value is
    # what other processes used at least (a quiet dev VM showed 0.13 core without it).
    granularity = ((os.cpu_count() or 1) + 1) / os.sysconf("SC_CLK_TCK")
    other = max(0.0, busy - own - granularity) / (end.wall_s - start.wall_s)
    return Contention(other, load_average())


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


class CpuWatch:
    """``with CpuWatch() as watch: ...`` then ``watch.result``: the contention over the block."""

    def __init__(self) -> None:
        self.result: Contention | None = None
        self._start: CpuTimes | None = None

    def __enter__(self) -> CpuWatch:
        self._start = cpu_times()
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = contention_between(self._start, cpu_times())


def oversubscribed(threads: int, window_s: float = 0.25) -> str | None:
    """A one-line warning when the threads a run asks for plus what other processes use
    now exceed the machine's cores.

    "Now" is measured over ``window_s``: the load average trails by a minute, so a
    process that just ended would still count, and an idle machine's background
    (a few hundredths of a core) would trip a 2-core machine at 2 threads.
    """
    with CpuWatch() as watch:
        time.sleep(window_s)
    cores = os.cpu_count() or 1
    now = watch.result
    if now is None or now.other_cpu_cores < CONTENDED_CORES or threads + now.other_cpu_cores <= cores:
        return None
    load = f", load average {now.load_avg_1m:.2f}" if now.load_avg_1m is not None else ""
    return (
        f"warning: other processes use {now.other_cpu_cores:.2f} core(s) now{load}; with {threads} torch "
        f"thread(s) on {cores} core(s) they will slow these cases (rows measured meanwhile are marked "
        "contended; see `bench env --check`)"
    )


# --- bench env --check ----------------------------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _busy_processes(window_s: float) -> tuple[list[tuple[str, float]], float | None]:
    """Processes using over a tenth of a core during ``window_s``, and the steal share then."""

    hz = os.sysconf("SC_CLK_TCK")
    before, t0 = _process_table(), cpu_times()
    time.sleep(window_s)
    after, t1 = _process_table(), cpu_times()
    busy = []
    for pid, (name, _, ticks) in after.items():
        if pid in before and pid != os.getpid():
            cores = (ticks - before[pid][2]) / hz / window_s
            if cores >= CONTENDED_CORES:
                busy.append((f"{name} (pid {pid})", cores))
    steal = None
    if t0 and t1 and t1.wall_s > t0.wall_s:
        steal = (t1.steal_s - t0.steal_s) / (t1.wall_s - t0.wall_s) / (os.cpu_count() or 1)
    return sorted(busy, key=lambda b: -b[1]), steal


def system_checks(torch_threads: int, window_s: float = 1.0) -> list[tuple[str, str, str]]:
    """(what, state, advice) for each noise source this machine lets us read."""
    cores = os.cpu_count() or 1
    checks: list[tuple[str, str, str]] = []
    governors = {g for g in (_read(p) for p in CPU_DIR.glob("cpu[0-9]*/cpufreq/scaling_governor")) if g}
    if governors:
        ok = governors == {"performance"}
        advice = "ok" if ok else "for stable numbers: `cpupower frequency-set -g performance` (as root)"
        checks.append(("CPU frequency governor", ", ".join(sorted(governors)), advice))
    else:
        checks.append(("CPU frequency governor", "not readable (no cpufreq here: a VM or container?)", "nothing to do"))
    boost = _read(CPU_DIR / "cpufreq/boost")
    no_turbo = _read(CPU_DIR / "intel_pstate/no_turbo")
    if boost is not None or no_turbo is not None:
        on = boost == "1" if boost is not None else no_turbo == "0"
        advice = "turbo varies with temperature and load: turn it off for repeatable numbers" if on else "ok"
        checks.append(("CPU boost / turbo", "on" if on else "off", advice))
    else:
        checks.append(("CPU boost / turbo", "not readable", "nothing to do (the host decides)"))
    smt = _read(CPU_DIR / "smt/active")
    if smt is not None:
        on = smt == "1"
        advice = "sibling threads share a core: pin torch to one thread per core" if on else "ok"
        checks.append(("SMT (hyper-threading)", "on" if on else "off", advice))
    load = load_average()
    if load is not None:
        busy = load > 0.5
        advice = "wait for other work to finish before measuring" if busy else "ok"
        checks.append(("load average (1 min)", f"{load:.2f} on {cores} core(s)", advice))
    processes, steal = _busy_processes(window_s)
    if steal is not None:
        advice = "the hypervisor gives this VM's time to others: numbers will drift" if steal > 0.02 else "ok"
        checks.append(("steal time", f"{steal:.1%} of the CPUs over {window_s:.0f} s", advice))
    if processes:
        names = ", ".join(f"{n} {c:.2f} cores" for n, c in processes[:3])
        checks.append(("busy processes", names, "stop them, or measure elsewhere: torch's threads spin against them"))
    else:
        checks.append(("busy processes", f"none above {CONTENDED_CORES} core over {window_s:.0f} s", "ok"))
    omp = os.environ.get("OMP_NUM_THREADS", "")
    state = f"torch uses {torch_threads} of {cores} core(s)" + (f", OMP_NUM_THREADS={omp}" if omp else "")
    advice = "ok" if torch_threads <= cores else "more threads than cores: set --threads to the core count or fewer"
    checks.append(("threads", state, advice))
    return checks
