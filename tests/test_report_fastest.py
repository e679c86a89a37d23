"""The "Fastest correct way to run it" section: the crown goes to the fastest right variant only."""

from __future__ import annotations

import numpy as np
import pandas as pd
from factories import make_case, write_run

from bench.report.document import Findings
from bench.report.findings import findings
from bench.report.load import load_many
from bench.report.sections_fastest import fastest, fastest_by_shape

SHAPE = dict(batch_size=8, seq_len=32, lengths="uniform")


def run_with(tmp_path, variants):
    """variants: (impl, varlen) -> (median ms, spread of the rounds, output error, state error)."""
    cases = {make_case(impl=impl, varlen=varlen, **SHAPE): v for (impl, varlen), v in variants.items()}
    rng = np.random.default_rng(0)
    outcomes = {c: ms * rng.lognormal(0, spread, (3, 6)) for c, (ms, spread, _, _) in cases.items()}
    path = write_run(tmp_path / "run.csv", outcomes)
    df = pd.read_csv(path)
    for c, (_, _, out_err, state_err) in cases.items():
        df.loc[df["case_id"] == c.case_id, ["max_abs_err", "state_max_abs_err"]] = [out_err, state_err]
    df.to_csv(path, index=False)
    return load_many([path])


def test_a_faster_wrong_variant_is_not_crowned_but_shown_with_its_error(tmp_path):
    df = run_with(
        tmp_path,
        {
            ("module", "padded"): (2.0, 0.005, 1e-7, 1.5),  # final states taken after the padding
            ("module", "packed"): (4.0, 0.005, 0.0, 0.0),
            ("onnxruntime", "exact"): (1.0, 0.005, 1e-7, 1e-7),
            ("quantized", "padded"): (0.5, 0.005, 0.02, 1.4),  # int8: faster, not exact
            ("compiled", "exact"): (3.0, 0.005, np.nan, np.nan),  # no error recorded: never "right"
        },
    )
    (answer,) = fastest_by_shape(df)
    assert answer.winner == "onnxruntime·exact"
    assert abs(1 / answer.over_packed.ratio - 4.0) < 0.2 and abs(1 / answer.over_padded.ratio - 2.0) < 0.1
    assert answer.over_packed.low < answer.over_packed.ratio < answer.over_packed.high
    assert answer.runner_up == "module·packed" and not answer.tie
    assert answer.inexact is not None and answer.inexact.startswith("quantized·padded")
    assert "outputs off by up to 0.02, final states by 1" in answer.inexact
    assert "compiled·exact" not in (answer.winner, answer.runner_up)


def test_a_runner_up_within_the_ci_is_a_tie_and_the_finding_says_so(tmp_path):
    df = run_with(
        tmp_path,
        {
            ("module", "packed"): (1.00, 0.08, 0.0, 0.0),
            ("onnxruntime", "exact"): (0.98, 0.08, 1e-7, 1e-7),
            ("module", "padded"): (0.9, 0.005, 0.3, 1.0),  # faster, wrong outputs
        },
    )
    (answer,) = fastest_by_shape(df)
    assert answer.winner != "module·padded"  # faster, but its outputs are wrong
    assert answer.tie
    table = next(b for b in findings(df) if isinstance(b, Findings))
    rows = pd.DataFrame(table.rows)
    row = rows[rows[0].str.startswith("fastest correct way")].iloc[0]
    assert "1 of them tied" in row[1] and "of 1 shapes" in row[1]
    section = fastest(df)
    assert any("tied with" in cell for cell in section[-1].rows[0])


def test_without_a_plain_module_to_compare_with_the_section_says_what_is_missing(tmp_path):
    df = run_with(
        tmp_path, {("onnxruntime", "exact"): (1.0, 0.01, 1e-7, 1e-7), ("compiled", "exact"): (2.0, 0.01, 0.0, 0.0)}
    )
    assert fastest_by_shape(df) == []
    blocks = fastest(df)
    assert "Not shown" in blocks[1].text


def test_a_shape_with_one_right_variant_is_no_contest_in_the_finding(tmp_path):
    df = run_with(tmp_path, {("module", "padded"): (1.0, 0.01, 1e-7, 1.2), ("module", "packed"): (2.0, 0.01, 0.0, 0.0)})
    (answer,) = fastest_by_shape(df)
    assert answer.winner == "module·packed" and answer.runner_up is None
    table = next(b for b in findings(df) if isinstance(b, Findings))
    row = next(r for r in table.rows if r[0].startswith("fastest correct way"))
    assert "no shape had two right variants (1 more shape(s) had one right variant only)" in row[1]
