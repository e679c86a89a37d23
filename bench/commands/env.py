"""``bench env``: the environment and the measured device peaks; ``--check``: the noise sources."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("env", help="print the environment and the measured device peaks")
    e.add_argument(
        "--check", action="store_true", help="instead: the machine's noise sources (governor, boost, load, ...)"
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from bench.core.noise import system_checks
    from bench.measure.checks import dtype_supported
    from bench.measure.env import environment
    from bench.measure.peaks import peak_gflop_per_s

    if args.check:  # one line each: what, its state, what to do
        checks = system_checks(torch.get_num_threads())
        width = max(len(what) for what, _, _ in checks)
        for what, state, advice in checks:
            print(f"{what:<{width}}  {state}  ->  {advice}")
        return 0
    for key, value in environment().items():
        print(f"{key:22} {value}")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    threads = torch.get_num_threads()
    print(f"\nmeasured peak (n×n matmul, best sample, {threads} CPU threads):")
    for device in devices:
        for dtype in ("float32", "bfloat16", "float16"):
            why = dtype_supported(device, dtype)
            if why:
                print(f"  {device:5} {dtype:9} unsupported: {why}")
                continue
            print(f"  {device:5} {dtype:9} {peak_gflop_per_s(device, dtype, threads):10.1f} GFLOP/s")
            if device == "cuda" and dtype == "float32":  # what --tf32 on is measured against
                print(f"  {device:5} {'+tf32':9} {peak_gflop_per_s(device, dtype, threads, tf32=True):10.1f} GFLOP/s")
    return 0
