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
    from bench.measure.bandwidth import memory_levels
    from bench.measure.checks import dtype_supported
    from bench.measure.env import environment
    from bench.measure.peaks import compute_roof

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
    print(f"\ncompute roofs (best sample of each engine, {threads} CPU threads; * the roof):")
    for device in devices:
        for dtype, tf32 in (("float32", False), ("float32", True), ("bfloat16", False), ("float16", False)):
            if tf32 and device != "cuda":  # what --tf32 on is measured against: CUDA float32 only
                continue
            label = f"{device:5} {dtype + ('+tf32' if tf32 else ''):13}"
            why = dtype_supported(device, dtype)
            if why:
                print(f"  {label} unsupported: {why}")
                continue
            try:
                roof = compute_roof(device, dtype, threads, tf32)
            except RuntimeError as e:  # no engine ran
                print(f"  {label} {e}")
                continue
            theory = f", theoretical {roof.theoretical_gflop_per_s:.0f}" if roof.theoretical_gflop_per_s else ""
            print(f"  {label} {roof.gflop_per_s:8.1f} GFLOP/s ({roof.engine}{theory})")
            for name, rate in roof.candidates.items():
                print(f"  {'':19} {'*' if name == roof.engine else ' '} {rate:8.1f}  {name}")
    print(f"\nbandwidth roofs (read bandwidth of each memory level, {threads} threads):")
    for device in devices:
        levels = memory_levels(device, threads)
        if not levels:
            print(f"  {device:5} the machine names no cache level: no bandwidth roofs")
        for level in levels:
            held = "" if level.capacity_bytes == float("inf") else f" (holds {level.capacity_bytes / 2**20:g} MiB)"
            print(f"  {device:5} {level.name:5} {level.gb_per_s:8.1f} GB/s{held}")
    return 0
