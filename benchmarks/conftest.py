"""pytest-benchmark CI suite: options, and the suite CSV that `bench compare` reads.

Run it with ``pytest benchmarks --benchmark-json=ci.json --suite-csv=ci.csv``
(``nox -s bench_ci`` does). Cases come from a preset (``--suite-preset``, default
``ci``) through the sweep engine's own spec, workload and phase timer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.core.cases import Case
from bench.measure import env
from bench.records.files import AppendWriter, run_paths
from bench.records.outcomes import Measured
from bench.records.rows import COLUMNS, SAMPLE_COLUMNS, make_row, new_run_id, sample_rows


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rnnbench")
    group.addoption("--suite-preset", default="ci", help="preset whose cases become benchmarks (default: ci)")
    group.addoption("--suite-spec", default=None, help="spec TOML instead of a preset")
    group.addoption("--suite-csv", default=None, help="also write the results as an rnnbench CSV here")


class SuiteCSV:
    """Appends one rnnbench row (plus raw samples) per benchmark, like a sweep run."""

    def __init__(self, path: Path) -> None:
        samples, _ = run_paths(path)
        if path.exists():
            raise pytest.UsageError(f"--suite-csv {path}: the file exists; pick a new path")
        self.run_id = new_run_id()
        self.provenance = env.provenance()
        self.rows = AppendWriter(path, COLUMNS)
        self.samples = AppendWriter(samples, SAMPLE_COLUMNS)

    def write(self, case: Case, outcome: Measured) -> None:
        gpu = {"gpu_name": env.gpu_name() if case.device == "cuda" else ""}
        self.rows.write(make_row(case, outcome, self.provenance | gpu, self.run_id))
        self.samples.write_many(sample_rows(case.case_id, outcome.measurement))


@pytest.fixture(scope="session")
def suite_csv(request: pytest.FixtureRequest) -> SuiteCSV | None:
    path = request.config.getoption("--suite-csv")
    return SuiteCSV(Path(path)) if path else None
