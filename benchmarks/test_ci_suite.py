"""The CI suite as pytest-benchmark tests, one per case of the ``ci`` preset.

No second model or timing path: each test builds its workload with
``bench.workload.build`` and pytest-benchmark times calls of the sweep timer's
own ``time_phases`` (on CUDA it synchronizes inside the timed call). The
per-phase times it records go to the suite CSV for ``bench compare``.
"""

from __future__ import annotations

import time

import pytest
import torch

from bench.peaks import PeakCache
from bench.runner import WorkFacts, measured_columns
from bench.spec import expand, load_spec
from bench.timer import Measurement, time_phases
from bench.workload import build


def suite_cases(config: pytest.Config):
    spec = load_spec(
        None if config.getoption("--suite-spec") else config.getoption("--suite-preset"),
        config.getoption("--suite-spec"),
    )
    return spec, expand(spec, torch.cuda.is_available(), torch.get_num_threads())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        _, cases = suite_cases(metafunc.config)
        metafunc.parametrize("case", cases, ids=[c.case_id for c in cases])


@pytest.fixture(scope="session")
def timer_config(request: pytest.FixtureRequest):
    spec, _ = suite_cases(request.config)
    return spec.timer


PEAKS = PeakCache()


def test_case(benchmark, case, timer_config, suite_csv):
    work = build(case)
    cuda = case.device == "cuda"
    timed = time_phases(cuda)
    phases: dict[str, list[float]] = {name: [] for name, _ in work.phases}

    def step() -> None:
        for (name, _), ms in zip(work.phases, timed(work.phases), strict=True):
            phases[name].append(ms)

    with work.context():
        # Rounds from the case's own speed: the preset's budget, within its sample bounds.
        start = time.perf_counter()
        for _ in range(timer_config.warmup_runs):
            work.before_sample()
            step()
        per_step = (time.perf_counter() - start) / timer_config.warmup_runs
        rounds = int(min(timer_config.max_samples, max(timer_config.min_samples, timer_config.budget_s / per_step)))
        for values in phases.values():
            values.clear()
        benchmark.extra_info.update(case.columns() | {"case_id": case.case_id})
        benchmark.pedantic(step, setup=work.before_sample, rounds=rounds, warmup_rounds=1, iterations=1)
        # pedantic's warm-up round also ran step(): keep only the timed rounds.
        for values in phases.values():
            del values[: len(values) - rounds]
    assert all(len(v) == rounds for v in phases.values())
    if suite_csv is not None:
        peak = PEAKS.get(case.device, case.dtype, case.threads)
        m = Measurement(phases, warmup_runs=timer_config.warmup_runs, sampling_s=0.0, reached_target=True)
        with work.context():
            measured = measured_columns(WorkFacts.of(work), m, timer_config, peak) | work.extra_columns()
        measured.pop("note", None)
        suite_csv.write(case, measured, phases)
