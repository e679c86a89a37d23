"""pytest-benchmark CI suite: options, and the suite CSV that `bench compare` reads.

Run it with ``pytest benchmarks --benchmark-json=ci.json --suite-csv=ci.csv``
(``nox -s bench_ci`` does). Cases come from a preset (``--suite-preset``, default
``ci``) through the sweep engine's own spec, workload and phase timer.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bench import env
from bench.results import COLUMNS, SAMPLE_COLUMNS, SCHEMA_VERSION, AppendWriter, run_paths
from bench.runner import new_run_id


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

    def write(self, case, measured: dict, phases: dict[str, list[float]]) -> None:
        row = {"case_id": case.case_id, **case.columns(), **measured, **self.provenance}
        row.update(
            run_id=self.run_id,
            schema_version=SCHEMA_VERSION,
            timestamp=dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            gpu_name=env.gpu_name() if case.device == "cuda" else "",
        )
        self.rows.write(row)
        self.samples.write_many(
            {"case_id": case.case_id, "phase": name, "index": i, "ms": ms}
            for name, values in phases.items()
            for i, ms in enumerate(values)
        )


@pytest.fixture(scope="session")
def suite_csv(request: pytest.FixtureRequest) -> SuiteCSV | None:
    path = request.config.getoption("--suite-csv")
    return SuiteCSV(Path(path)) if path else None
