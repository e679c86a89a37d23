"""torch.profiler breakdown of a case: top operators by self time, and a trace."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function, schedule

from bench.core.cases import Case
from bench.measure.workload import build

LABELS = {"fwd": "forward", "bwd": "backward"}
WAIT, WARMUP, ACTIVE = 1, 2, 5
OP_COLUMNS = ("name", "calls", "self_cpu_us", "cpu_total_us", "self_device_us")


def record(case: Case, out: Path, top: int = 25) -> list[str]:
    """Write ops.txt, ops.csv and trace.json for ``case``; returns the file names."""
    work = build(case)
    cuda = case.device == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])

    def labelled(name, fn):
        def run():
            with record_function(LABELS.get(name, name)):
                fn()

        return run

    phases = [labelled(name, fn) for name, fn in work.phases]
    with (
        work.context(),
        profile(
            activities=activities, schedule=schedule(wait=WAIT, warmup=WARMUP, active=ACTIVE), record_shapes=False
        ) as prof,
    ):
        for _ in range(WAIT + WARMUP + ACTIVE):
            work.before_sample()
            for run in phases:
                run()
            if cuda:
                torch.cuda.synchronize()
            prof.step()
    events = prof.key_averages()
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    (out / "ops.txt").write_text(events.table(sort_by=sort, row_limit=top) + "\n", encoding="utf-8")
    rows = sorted(
        (
            {
                "name": e.key,
                "calls": e.count,
                "self_cpu_us": e.self_cpu_time_total,
                "cpu_total_us": e.cpu_time_total,
                "self_device_us": getattr(e, "self_device_time_total", 0.0),
            }
            for e in events
        ),
        key=lambda r: -r["self_cpu_us"],
    )
    with (out / "ops.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=OP_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    prof.export_chrome_trace(str(out / "trace.json"))
    return ["ops.txt", "ops.csv", "trace.json"]
