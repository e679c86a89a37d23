"""``bench profile``: resolve the cases, profile each, compare two."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands import add_model_path_flag
from bench.core.cases import AXES, INPUT_AXES, Case
from bench.core.errors import UsageError
from bench.core.spec import expand, load_spec, with_overrides

PROFILES_DIR = Path("reports") / "profiles"


def add_parser(sub: argparse._SubParsersAction) -> None:
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


def resolve_cases(args: argparse.Namespace) -> list[Case]:
    import torch

    from bench.measure.checks import check_cases

    overrides = {a.name: getattr(args, a.name) for a in INPUT_AXES}
    given = {k: v for k, v in overrides.items() if v is not None}
    if args.case and given:
        raise UsageError("give case ids or axis flags, not both")
    if args.case:
        cases = [Case.from_id(c) for c in args.case]
    else:
        if overrides["device"] is None:  # one case: the GPU where there is one, not both devices
            overrides["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        cases = expand(with_overrides(load_spec(), overrides), torch.cuda.is_available(), torch.get_num_threads())
        if len(cases) != 1:
            many = [a.name for a in AXES if len({getattr(c, a.name) for c in cases}) > 1]
            flags = ", ".join("--" + m.replace("_", "-") for m in many)
            raise UsageError(f"the axes give {len(cases)} cases, not one: give one value for {flags}")
    for case in cases:
        if case.device == "cuda" and not torch.cuda.is_available():
            raise UsageError(f"CASE {case.case_id}: needs CUDA, and torch.cuda.is_available() is False here")
    check_cases(cases)
    return cases


def run(args: argparse.Namespace) -> int:
    from bench.profiling import profile_case, write_diff

    if args.seconds < 1:
        raise UsageError(f"--seconds: {args.seconds} must be at least 1")
    cases = resolve_cases(args)
    use_pyspy, use_torch = (args.py_spy, args.torch) if (args.py_spy or args.torch) else (True, True)
    out_root = args.out or PROFILES_DIR
    folders = []
    for case in cases:
        folder = profile_case(case, out_root, use_pyspy, use_torch, args.seconds)
        print(f"profile: {folder / 'index.md'}")
        folders.append(folder)
    if len(folders) == 2 and use_torch:
        print(f"comparison: {write_diff(folders[0], folders[1], out_root / 'compare')}")
    return 0
