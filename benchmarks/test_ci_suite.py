"""The CI suite as pytest-benchmark tests, one per case of the ``ci`` preset.

No second model or timing path: each test builds its workload with
``bench.measure.workload.build`` and measures it with the sweep's own measuring loop
(``bench.core.timer.measure``: warm-up, then samples to the preset's precision
target). pytest-benchmark then holds exactly those samples (``record``), so
its JSON, its ``compare`` and github-action-benchmark see the numbers that the
suite CSV and ``bench compare`` see.
"""

from __future__ import annotations

import pytest
import torch

from bench.core.spec import expand, load_spec
from bench.core.timer import Measurement, measure
from bench.measure.clocks import clock_for
from bench.measure.correctness import extra_columns
from bench.measure.peaks import RoofCache
from bench.measure.usermodels import Unsupported
from bench.measure.workload import build
from bench.records.outcomes import Measured


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


PEAKS = RoofCache()


def record(benchmark, m: Measurement) -> None:
    """Hand the loop's samples (one step each, phases summed) to pytest-benchmark as its rounds.

    pytest-benchmark has no public call for samples timed elsewhere; this uses
    its fixture's own stats object, as ``pedantic`` does (pinned in constraints.txt).
    """
    if benchmark.disabled:
        return
    benchmark._mode = "rnnbench measuring loop"
    stats = benchmark._make_stats(1)
    for step_ms in m.total_ms:
        stats.update(step_ms / 1e3)


def test_case(benchmark, case, timer_config, suite_csv):
    try:
        work = build(case)
    except Unsupported as e:  # a user's model declined the case: nothing to time
        pytest.skip(f"unsupported: {e}")
    with work.context():
        m = measure(work.phases, timer_config, clock_for(case.device), work.before_sample, work.stop_rule(timer_config))
        extra = extra_columns(work) if suite_csv is not None else {}
    benchmark.extra_info.update(case.columns() | {"case_id": case.case_id})
    record(benchmark, m)
    assert len(m.total_ms) >= timer_config.min_samples
    if suite_csv is not None:
        peak = PEAKS.for_case(case)
        suite_csv.write(case, Measured(m, work.facts(), peak, timer_config.target_rel_ci, extra))
