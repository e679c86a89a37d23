"""A measuring process driven over stdin/stdout, one JSON object per line.

``bench.execution.interleave`` starts one worker per source tree (each imports its own
tree's ``bench`` and ``rnnmodels``) and alternates short measuring blocks
between them, so two code versions are timed side by side in one job.

Requests (``bench.execution.messages``): a case request builds and warms up a case;
a block request measures one block (one warm-up run, then at least 3 samples over
about S seconds: a ``TimeBudget`` run of the measuring loop) and is answered with
each phase's times; end of input ends the worker.
"""

from __future__ import annotations

import sys
import traceback

import torch

from bench.core.cases import Case
from bench.core.timer import FixedCount, TimeBudget, TimerConfig, freeze_imports, measure
from bench.execution import messages
from bench.measure import env
from bench.measure.clocks import clock_for
from bench.measure.correctness import extra_columns
from bench.measure.failures import failure
from bench.measure.peaks import RoofCache
from bench.measure.workload import Workload, build

READY_RUNS = 6  # measured once after the build, as a warm-up that settles the caches
BLOCK_MIN_RUNS = 3
# One warm-up run per block: the other side just ran and cooled the caches.
BLOCK_WARMUP = TimerConfig(warmup_runs=1, warmup_s=0.0)


def serve(stdin=sys.stdin, stdout=sys.stdout) -> None:
    freeze_imports()  # torch and the suite are imported: later collections scan only what cases make
    work: Workload | None = None
    peaks = RoofCache()
    for line in stdin:
        request = messages.from_line(line)
        asked = messages.parse_request(request)
        try:
            if isinstance(asked, messages.CaseRequest):
                # Freed before the next build, so two cases never share the memory: the
                # assignment drops the last reference, then CUDA's cache has blocks to give back.
                work = close(work)
                empty_cuda_cache()
                work = build(Case.from_axes(asked.axes))
                with work.context():
                    clock = clock_for(work.case.device)
                    measure(work.phases, TimerConfig(), clock, work.before_sample, stop=FixedCount(READY_RUNS))
                    settings = work.kernel_settings()
                    extra = extra_columns(work)
                c = work.case
                ready = messages.Ready(
                    facts=work.facts(),
                    extra=extra,
                    peak_gflop_per_s=peaks.for_case(c),
                    kernel_settings=settings,
                    provenance=env.provenance(),
                    gpu_name=env.gpu_name() if c.device == "cuda" else "",
                )
                reply = messages.ready_reply(ready)
            elif isinstance(asked, messages.BlockRequest):
                assert work is not None, "a block before a case"
                with work.context():
                    stop = TimeBudget(asked.block_s, min_runs=BLOCK_MIN_RUNS)
                    clock = clock_for(work.case.device)
                    m = measure(work.phases, BLOCK_WARMUP, clock, work.before_sample, stop=stop)
                reply = messages.phases_reply(m.phases)
            else:
                reply = messages.unknown_reply(request)
        except Exception as e:
            reply = messages.failed_reply(failure(e), traceback.format_exc(limit=3))
        stdout.write(messages.to_line(reply))
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
