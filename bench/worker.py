"""A measuring process driven over stdin/stdout, one JSON object per line.

``bench.interleave`` starts one worker per source tree (each imports its own
tree's ``bench`` and ``rnnmodels``) and alternates short measuring blocks
between them, so two code versions are timed side by side in one job.

Requests: ``{"case": {axes...}}`` builds and warms up a case; ``{"block_s": S}``
measures one block (at least 3 samples, about S seconds) and answers
``{"phases": {name: [ms, ...]}}``; end of input ends the worker.
"""

from __future__ import annotations

import json
import sys
import traceback

import torch

from bench import env
from bench.peaks import PeakCache
from bench.spec import Case
from bench.timer import TimerConfig, measure
from bench.workload import Workload, build


def block_config(seconds: float) -> TimerConfig:
    # One warm-up run per block: the other side just ran and cooled the caches.
    return TimerConfig(budget_s=seconds, min_samples=3, warmup_runs=1, warmup_s=0.0, target_rel_ci=1e-9)


def serve(stdin=sys.stdin, stdout=sys.stdout) -> None:
    work: Workload | None = None
    peaks = PeakCache()
    for line in stdin:
        request = json.loads(line)
        try:
            if "case" in request:
                work = build(Case.from_axes(request["case"]))
                with work.context():
                    measure(
                        work.phases,
                        TimerConfig(min_samples=6, max_samples=6, budget_s=1.0),
                        cuda=work.case.device == "cuda",
                        before_sample=work.before_sample,
                    )
                    extra = work.extra_columns()
                c = work.case
                reply = {
                    "ready": True,
                    "valid_tokens": work.valid_tokens,
                    "padding_fraction": work.padding_fraction,
                    "gflop": work.gflop,
                    **extra,
                    "peak_gflop_per_s": peaks.get(c.device, c.dtype, c.threads),
                    "provenance": env.provenance(),
                    "gpu_name": env.gpu_name() if c.device == "cuda" else "",
                }
            elif "block_s" in request:
                assert work is not None, "a block before a case"
                with work.context():
                    m = measure(
                        work.phases,
                        block_config(request["block_s"]),
                        cuda=work.case.device == "cuda",
                        before_sample=work.before_sample,
                    )
                reply = {"phases": m.phases}
            else:
                reply = {"error": f"unknown request {sorted(request)}"}
        except Exception as e:
            reply = {
                "error": f"{e.__class__.__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}",
                "oom": isinstance(e, torch.OutOfMemoryError) or "memory" in str(e).lower(),
                "trace": traceback.format_exc(limit=3),
            }
        stdout.write(json.dumps(reply) + "\n")
        stdout.flush()


if __name__ == "__main__":
    serve()
