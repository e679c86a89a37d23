"""A report renders any mixture of a real run's rows: machines, partial series, failures."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.report import build_report

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference" / "default-cpu.csv"
RUN = pd.read_csv(REFERENCE, dtype=str, keep_default_na=False)


@st.composite
def mixtures(draw: st.DrawFn) -> pd.DataFrame:
    """A random subset of the reference run, some rows on other hosts, some failed."""
    n = len(RUN)
    keep = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    rows = RUN.iloc[sorted(keep)].copy()
    for i in draw(st.lists(st.sampled_from(range(len(rows))), max_size=8)):
        rows.iloc[i, rows.columns.get_loc("cpu_model")] = draw(st.sampled_from(["Other CPU", "Third CPU"]))
    for i in draw(st.lists(st.sampled_from(range(len(rows))), max_size=5)):
        status = draw(st.sampled_from(["error", "oom", "unsupported"]))
        rows.iloc[i, rows.columns.get_loc("status")] = status
        rows.iloc[i, rows.columns.get_loc("error")] = f"{status} here"
        for col in ("median_ms", "ci_low_ms", "ci_high_ms", "samples", "tokens_per_s", "gflop_per_s", "efficiency"):
            rows.iloc[i, rows.columns.get_loc(col)] = ""
    return rows


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=mixtures())
def test_report_renders_any_mixture_of_machines_series_and_failures(tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("mix")
    run = folder / "run.csv"
    rows.to_csv(run, index=False)
    shutil.copy(REFERENCE.with_name("default-cpu.samples.csv"), folder / "run.samples.csv")
    md, page = build_report([run], folder / "report")
    text = md.read_text()
    assert text.startswith("# rnnbench report") and page.stat().st_size > 0
    ok = int((rows["status"] == "ok").sum())
    assert f"{len(rows)} cases ({ok} ok)" in text  # every row counted, failures apart
    assert "nan×" not in text and "nan%" not in text and "Traceback" not in text
    for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (folder / "report" / image).is_file(), image  # every figure it names was drawn
    if ok < len(rows):
        assert f"{len(rows) - ok} case(s) failed:" in text


@pytest.mark.slow
def test_one_row_from_another_host_first_in_a_series(tmp_path):
    """The case the property test found first: the scaling sentence's series was empty."""
    rows = RUN.copy()
    rows.loc[rows.index[0], "cpu_model"] = "Other CPU"
    rows.to_csv(tmp_path / "run.csv", index=False)
    shutil.copy(REFERENCE.with_name("default-cpu.samples.csv"), tmp_path / "run.samples.csv")
    md, _ = build_report([tmp_path / "run.csv"], tmp_path / "report")
    assert "Latency and throughput against batch size" in md.read_text()
