"""``bench profile``: resolve the cases, profile each, compare two."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bench.errors import UsageError
from bench.profiling import profile_case, write_diff
from bench.spec import AXES, INPUT_AXES, Case, expand, load_spec, with_overrides
from bench.workload import check_cases

PROFILES_DIR = Path("reports") / "profiles"


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_cases(args: argparse.Namespace) -> list[Case]:
    overrides = {a.name: getattr(args, a.name) for a in INPUT_AXES}
    given = {k: v for k, v in overrides.items() if v is not None}
    if args.case and given:
        raise UsageError("give case ids or axis flags, not both")
    if args.case:
        cases = [Case.from_id(c) for c in args.case]
    else:
        if overrides["device"] is None:  # one case: the GPU where there is one, not both devices
            overrides["device"] = default_device()
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


def cmd_profile(args: argparse.Namespace) -> int:
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
