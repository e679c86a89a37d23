"""A measuring process driven over stdin/stdout, one JSON object per line.

``bench.interleave`` starts one worker per source tree (each imports its own
tree's ``bench`` and ``rnnmodels``) and alternates short measuring blocks
between them, so two code versions are timed side by side in one job.

Requests: ``{"case": {axes...}}`` builds and warms up a case; ``{"block_s": S}``
measures one block (one warm-up run, then at least 3 samples over about S
seconds: a ``TimeBudget`` run of the measuring loop) and answers
``{"phases": {name: [ms, ...]}}``; end of input ends the worker.
"""

from __future__ import annotations

import json
import sys
import traceback

import torch

from bench import env
from bench.backends import settings_now
from bench.clocks import clock_for
from bench.failures import failure
from bench.peaks import PeakCache
from bench.spec import Case
from bench.timer import FixedCount, TimeBudget, TimerConfig, freeze_imports, measure
from bench.workload import Workload, build

READY_RUNS = 6  # measured once after the build, as a warm-up that settles the caches
BLOCK_MIN_RUNS = 3
# One warm-up run per block: the other side just ran and cooled the caches.
BLOCK_WARMUP = TimerConfig(warmup_runs=1, warmup_s=0.0)


def serve(stdin=sys.stdin, stdout=sys.stdout) -> None:
    freeze_imports()  # torch and the suite are imported: later collections scan only what cases make
    work: Workload | None = None
    peaks = PeakCache()
    for line in stdin:
        request = json.loads(line)
        try:
            if "case" in request:
                # Freed before the next build, so two cases never share the memory: the
                # assignment drops the last reference, then CUDA's cache has blocks to give back.
                work = close(work)
                empty_cuda_cache()
                work = build(Case.from_axes(request["case"]))
                with work.context():
                    clock = clock_for(work.case.device)
                    measure(work.phases, TimerConfig(), clock, work.before_sample, stop=FixedCount(READY_RUNS))
                    settings = settings_now(work.case.device)
                    extra = work.extra_columns()
                c = work.case
                reply = {
                    "ready": True,
                    "valid_tokens": work.valid_tokens,
                    "padding_fraction": work.padding_fraction,
                    "gflop": work.gflop,
                    **extra,
                    "peak_gflop_per_s": peaks.for_case(c),
                    "kernel_settings": settings,
                    "provenance": env.provenance(),
                    "gpu_name": env.gpu_name() if c.device == "cuda" else "",
                }
            elif "block_s" in request:
                assert work is not None, "a block before a case"
                with work.context():
                    stop = TimeBudget(request["block_s"], min_runs=BLOCK_MIN_RUNS)
                    clock = clock_for(work.case.device)
                    m = measure(work.phases, BLOCK_WARMUP, clock, work.before_sample, stop=stop)
                reply = {"phases": m.phases}
            else:
                reply = {"error": f"unknown request {sorted(request)}"}
        except Exception as e:
            failed = failure(e)
            trace = traceback.format_exc(limit=3)
            reply = {"error": failed.error, "oom": failed.status == "oom", "status": failed.status, "trace": trace}
        stdout.write(json.dumps(reply) + "\n")
        stdout.flush()
    close(work)


def close(work: Workload | None) -> None:
    """Close a case (``Workload.close``); the caller frees it by assigning the None returned."""
    if work is not None:
        work.close()


def empty_cuda_cache() -> None:
    """Hand CUDA's cached blocks back (freed cases' memory), where CUDA was used at all."""
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


if __name__ == "__main__":
    serve()
