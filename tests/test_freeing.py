"""A finished case is freed by reference counting, before the next case is built.

The garbage collector is off in these tests: a model that only a collection
would free is a model that stays alive (and on a GPU, holds its memory) into
the next case, since the timer pauses the collector while it samples.
"""

from __future__ import annotations

import gc
import io
import json
import math
import weakref

import pytest
import torch
from factories import make_case

from bench.core.timer import TimerConfig
from bench.execution import runner, worker
from bench.measure.workload import Step
from bench.records.outcomes import Failed, Measured

FAST = TimerConfig(target_rel_ci=0.5, min_samples=3, max_samples=3, budget_s=0.05, warmup_runs=1, warmup_s=0.0)


@pytest.fixture
def no_gc():
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    yield
    if was:
        gc.enable()


@pytest.fixture
def built(monkeypatch):
    """Weak references to every model built, checked dead at each next build."""
    refs: list[weakref.ref] = []
    real_build = runner.build

    def build(case):
        alive = [r for r in refs if r() is not None]
        assert not alive, "the previous case's model is still alive when the next case is built"
        work = real_build(case)
        refs.append(weakref.ref(work.model))
        return work

    monkeypatch.setattr(runner, "build", build)
    monkeypatch.setattr(worker, "build", build)
    return refs


def test_run_case_frees_each_case(no_gc, built):
    cases = [make_case(mode="training", bidirectional=True), make_case(varlen="exact"), make_case(impl="cells")]
    for case in cases:
        assert isinstance(runner.run_case(case, FAST, math.nan), Measured)
    assert len(built) == 3
    assert all(r() is None for r in built)


def test_a_case_that_fails_mid_step_is_freed_too(no_gc, built, monkeypatch):
    # The forward ran (the loss holds the autograd graph), then the step failed:
    # neither the loss nor the exception's frames may keep the model alive.
    def measure(phases, *args, **kwargs):
        phases[0][1]()
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(runner, "measure", measure)
    outcome = runner.run_case(make_case(mode="training"), FAST, math.nan)
    assert outcome == Failed("oom", "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert built[0]() is None


def test_a_side_by_side_group_is_freed_with_its_failures(no_gc, monkeypatch):
    refs: list[weakref.ref] = []  # the variants of a group live together; all are freed at its end
    real_build, real_forward = runner.build, Step.forward

    def build(case):
        work = real_build(case)
        refs.append(weakref.ref(work.model))
        return work

    def forward(step):
        if step.model.varlen == "exact":  # this variant fails in its first block
            raise ValueError("bad variant")
        return real_forward(step)

    monkeypatch.setattr(runner, "build", build)
    monkeypatch.setattr(Step, "forward", forward)
    group = [make_case(varlen=v) for v in ("padded", "packed", "exact")]
    outcomes = dict(runner.run_group(group, FAST, dict.fromkeys(group, math.nan)))
    assert outcomes[group[2]] == Failed("error", "ValueError: bad variant")
    assert all(isinstance(outcomes[c], Measured) for c in group[:2])
    assert len(refs) == 3 and all(r() is None for r in refs)


@pytest.mark.slow
def test_the_against_worker_frees_a_case_before_building_the_next(no_gc, built):
    requests = [{"case": make_case(batch_size=b).wire_axes()} for b in (2, 3)] + [{"block_s": 0.01}]
    out = io.StringIO()
    worker.serve(io.StringIO("".join(json.dumps(r) + "\n" for r in requests)), out)
    replies = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [("ready" in r, "phases" in r) for r in replies] == [(True, False), (True, False), (False, True)]
    assert all(r() is None for r in built)  # the last one too, once the input ended


@pytest.mark.slow
def test_compiled_case_is_freed(no_gc, built):
    pytest.importorskip("torch._dynamo")
    outcome = runner.run_case(make_case(impl="compiled"), FAST, math.nan)
    # This machine compiles (torch 2.13 CPU with a C++ compiler): a failure here is a failure.
    assert isinstance(outcome, Measured), outcome
    assert built[0]() is None


@pytest.mark.cuda
def test_cuda_memory_is_back_after_a_case():
    before = torch.cuda.memory_allocated()
    runner.run_case(make_case(device="cuda", mode="training", hidden_size=256, batch_size=64), FAST, math.nan)
    assert torch.cuda.memory_allocated() == before
