"""``python -m bench``: the command line (its shape is in docs/architecture.md).

Exit codes: 0 success; 1 a regression found, or some cases failed; 2 bad input
(one line naming the argument and the bad value, no traceback); 130 interrupted.
Each subcommand's work is in ``bench.commands``; this module only parses and
dispatches, importing a command's module when it runs (``bench report`` needs no torch).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.errors import UsageError
from bench.results import METRICS
from bench.spec import INPUT_AXES

EXIT_OK, EXIT_USAGE = 0, 2


class Parser(argparse.ArgumentParser):
    """argparse, but bad input is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def add_run_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a sweep and write results/<run_id>.csv")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", help="a preset name (quick, default, full, gpu, padding, ci, ci-instructions)")
    src.add_argument("--spec", help="a spec TOML file")
    for axis in INPUT_AXES:
        p.add_argument(axis.flag, dest=axis.name, metavar="V[,V...]", help=axis.describe())
    p.add_argument("--out", type=Path, help="results CSV (default: results/<run_id>.csv)")
    add_model_path_flag(p)
    p.add_argument("--resume", action="store_true", help="skip cases already in --out and append the rest")
    p.add_argument("--budget-s", type=float, help="sampling time per case (overrides the spec's timer)")
    p.add_argument("--target-ci", type=float, help="target CI half-width as a fraction of the median")
    p.add_argument(
        "--rounds",
        type=int,
        help="fresh processes per case, interleaved over the sweep; the CI is taken across them "
        "(the spec's timer, 3 by default; 1: one process, a quick look whose CI covers that process only)",
    )
    p.add_argument("--list", action="store_true", help="print the case ids and exit without measuring")
    p.add_argument("--isolate", action="store_true", help="run each case in a child process (survives crashes)")
    p.add_argument(
        "--side-by-side",
        action="store_true",
        help="measure cases that differ only in varlen/impl together, in alternating blocks",
    )
    p.add_argument(
        "--metric",
        choices=METRICS,
        default="time",
        help="time each step (default), or count its instructions under valgrind's callgrind (CPU, 1 thread)",
    )
    p.add_argument(
        "--jobs", type=int, default=0, help="--metric instructions: valgrind processes at once (default: one per core)"
    )
    p.add_argument("--shard", help="run only shard K of N (K/N, 1-based) of the cases")
    p.add_argument("--shards", type=int, help="split into N shards and launch them (with --launcher submitit)")
    p.add_argument("--launcher", choices=["submitit"], help="how to launch --shards")
    p.add_argument("--cluster", choices=["auto", "local", "slurm"], default="auto", help="submitit cluster")
    p.add_argument("--partition", help="SLURM partition")
    p.add_argument("--gpus-per-shard", type=int, default=0, help="GPUs per job (local CUDA shards: 1 when not given)")
    p.add_argument("--timeout-min", type=int, default=60, help="job time limit in minutes")
    p.add_argument("--no-wait", action="store_true", help="submit and exit; merge later with `bench merge`")
    p.add_argument("--parallel-local", action="store_true", help="local shards at once (spoils timings)")


def add_ci_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("ci", help="regression gate: the CI suite against a baseline or a git ref")
    parser.add_argument("--against", help="git ref to measure side by side (e.g. main, origin/main, HEAD~1)")
    parser.add_argument("--baseline", type=Path, help="committed baseline CSV (results/baselines/ci-cpu.csv)")
    parser.add_argument("--blocks", type=int, default=20, help="alternating blocks per case and side (20)")
    parser.add_argument("--block-s", type=float, default=0.1, help="seconds per block (0.1)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="--against: the blocks split over this many rounds of fresh worker processes (5)",
    )
    parser.add_argument(
        "--wrap-current",
        default="",
        help="command prefix for the current side, to test the gate itself (e.g. 'taskset -c 0')",
    )
    parser.add_argument(
        "--metric",
        choices=METRICS,
        default="time",
        help="gate on time (default) or on instruction counts under callgrind (needs valgrind)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--preset", help="the preset whose cases the gate measures (ci; ci-instructions for --metric instructions)"
    )
    which.add_argument("--spec", type=Path, help="instead of a preset: a spec TOML (e.g. one naming your model)")
    add_model_path_flag(parser)
    parser.add_argument("--threshold", help="slowdown that counts (5%% for time, 1%% for instruction counts)")
    parser.add_argument("--out", type=Path, help="output folder (reports/ci)")
    parser.add_argument("--refresh-baseline", action="store_true", help="measure and write --baseline, no compare")


def version() -> str:
    try:
        return importlib.metadata.version("rnnbench")
    except importlib.metadata.PackageNotFoundError:  # a plain checkout, not installed
        return "unknown (not installed)"


def add_model_path_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-path",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder to import --model PACKAGE.MODULE:FACTORY from (repeatable; also the working directory)",
    )


def build_parser(prog: str = "python -m bench") -> Parser:
    parser = Parser(prog=prog, description="Benchmark PyTorch LSTM and GRU models.")
    parser.add_argument("--version", action="version", version=f"rnnbench {version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    add_run_parser(sub)
    r = sub.add_parser("report", help="plots and a Markdown + HTML report from result CSVs")
    r.add_argument("csv", nargs="+", type=Path, help="results CSV files")
    r.add_argument("--out", type=Path, help="output folder (default: reports/<first CSV's name>/)")
    m = sub.add_parser("merge", help="merge the part files of a sharded run")
    m.add_argument("parts", nargs="+", type=Path, help="part CSVs or folders of them")
    m.add_argument("--out", type=Path, required=True, help="merged results CSV")
    c = sub.add_parser("compare", help="regression verdicts between two runs")
    c.add_argument("baseline", type=Path, help="baseline results CSV")
    c.add_argument("current", type=Path, help="current results CSV")
    c.add_argument(
        "--threshold", help="change that counts, e.g. 5%% or 0.1 (default: 5%% for time, 1%% for instruction counts)"
    )
    c.add_argument("--alpha", type=float, default=0.01, help="significance level of the test (0.01)")
    c.add_argument("--fail-on-regression", action="store_true", help="exit 1 when a case regressed")
    c.add_argument("--allow-env-change", action="store_true", help="compare runs from different environments")
    c.add_argument("--out", type=Path, help="output folder (default: reports/compare/<base>--<current>/)")
    pr = sub.add_parser(
        "profile",
        help="py-spy flame graph and torch.profiler tables for cases",
        description="Profile cases given by id, or one case given by axis flags "
        "(without --device: the GPU where there is one, else the CPU).",
    )
    pr.add_argument("case", nargs="*", help="case ids (two: also compare their operators)")
    for axis in INPUT_AXES:
        pr.add_argument(axis.flag, dest=axis.name, metavar="V", help=f"instead of an id: {axis.describe()}")
    pr.add_argument("--py-spy", action="store_true", help="only the py-spy flame graph")
    pr.add_argument("--torch", action="store_true", help="only the torch.profiler tables and trace")
    pr.add_argument("--seconds", type=int, default=5, help="py-spy sampling time per output file (5)")
    pr.add_argument("--out", type=Path, help="output root (default: reports/profiles/)")
    add_model_path_flag(pr)
    h = sub.add_parser("history", help="trends across runs and the steps in them")
    h.add_argument("runs", nargs="+", type=Path, help="run CSVs or folders of them")
    h.add_argument("--out", type=Path, help="output folder (default: reports/history/)")
    h.add_argument("--threshold", default="5%", help="smallest step in time that counts (5%%)")
    h.add_argument("--count-threshold", default="1%", help="smallest step in instruction counts that counts (1%%)")
    h.add_argument(
        "--fail-on-regression", action="store_true", help="exit 1 if the newest runs brought a regression step"
    )
    e = sub.add_parser("env", help="print the environment and the measured device peaks")
    e.add_argument(
        "--check", action="store_true", help="instead: the machine's noise sources (governor, boost, load, ...)"
    )
    v = sub.add_parser(
        "validate",
        help="check the timer against torch.utils.benchmark, or (--calibration) the CIs against a rerun",
    )
    v.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    v.add_argument(
        "--calibration",
        action="store_true",
        help="run the same sweep twice and report how often the two medians agree within their combined 95%% CI",
    )
    calib = v.add_mutually_exclusive_group()
    calib.add_argument("--preset", help="--calibration: the sweep to run twice (default: quick)")
    calib.add_argument("--spec", help="--calibration: a spec TOML to run twice")
    calib.add_argument(
        "--runs", nargs=2, type=Path, metavar="CSV", help="--calibration: check two existing runs instead"
    )
    v.add_argument("--rounds", type=int, help="--calibration: rounds per case (default: the spec's)")
    v.add_argument("--budget-s", type=float, help="--calibration: sampling time per case")
    v.add_argument("--out", type=Path, help="--calibration: folder for the two runs (results/calibration-<time>)")
    add_ci_parser(sub)
    return parser


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None, prog: str = "python -m bench") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(prog).parse_args(argv)
        if getattr(args, "model_path", None):
            from bench.usermodels import add_model_paths

            add_model_paths(args.model_path)
        if args.command == "run":
            from bench.commands.run import cmd_run

            signal.signal(signal.SIGTERM, _raise_interrupt)
            return cmd_run(args, argv)
        if args.command == "report":
            from bench.report import build_report

            md, page = build_report(args.csv, args.out or Path("reports") / args.csv[0].stem)
            print(f"report: {page}\nreport: {md}")
            return EXIT_OK
        if args.command == "merge":
            from bench.merge import merge_parts

            rows, _ = merge_parts(args.parts, args.out)
            print(f"merged {rows} rows into {args.out}")
            return EXIT_OK
        if args.command == "compare":
            from bench.commands.compare import cmd_compare

            return cmd_compare(args)
        if args.command == "profile":
            from bench.commands.profile import cmd_profile

            return cmd_profile(args)
        if args.command == "history":
            from bench.commands.history import cmd_history

            return cmd_history(args)
        if args.command == "env":
            from bench.commands.env import cmd_env

            return cmd_env(check=args.check)
        if args.command == "validate" and args.calibration:
            from bench.commands.calibrate import cmd_calibrate

            signal.signal(signal.SIGTERM, _raise_interrupt)
            return cmd_calibrate(args)
        if args.command == "validate":
            from bench.commands.validate import cmd_validate

            given = [f for f in ("preset", "spec", "runs", "rounds", "budget_s", "out") if getattr(args, f) is not None]
            if given:
                raise UsageError(f"--{given[0].replace('_', '-')} goes with --calibration")
            return cmd_validate(args.device)
        if args.command == "ci":
            from bench.commands.ci import cmd_ci

            return cmd_ci(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_USAGE


def console_main() -> int:
    """The ``rnnbench`` console script."""
    return main(prog="rnnbench")


if __name__ == "__main__":
    sys.exit(main())
