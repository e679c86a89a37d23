"""Compare logic on synthetic samples, the CLI's exit codes, and the CI suite's JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import factories
import numpy as np
import pandas as pd
import pytest
from factories import make_case

from bench.analysis.compare import CompareConfig, Samples, compare_runs, parse_threshold
from bench.cli import main
from bench.core.cases import Case
from bench.core.errors import UsageError
from bench.execution.gate import GateOptions, suite_command
from bench.records.files import run_paths

REPO = Path(__file__).resolve().parent.parent


def case(batch_size: int) -> Case:
    return make_case(batch_size=batch_size)


def write_run(
    path: Path, samples: dict[int, np.ndarray], status: dict[int, str] | None = None, torch_version: str = "2.13.0"
) -> Path:
    """A results CSV + samples CSV with one case per batch size."""
    status = status or {}
    outcomes = {case(b): values if status.get(b, "ok") == "ok" else status[b] for b, values in samples.items()}
    return factories.write_run(path, outcomes, torch_version=torch_version)


def noise(rng, n=40, median=10.0, spread=0.03):
    return median * rng.lognormal(0, spread, n)


def verdicts(tmp_path, base, cur, **kw):
    result, changes = compare_runs(
        write_run(tmp_path / "a.csv", base, **kw.pop("base_kw", {})),
        write_run(tmp_path / "b.csv", cur, **kw.pop("cur_kw", {})),
        CompareConfig(),
    )
    return (
        dict(zip(result["case_id"].map(lambda s: int(s.split("-b")[1].split("-")[0])), result["verdict"], strict=True)),
        result,
        changes,
    )


def test_identical_distributions_are_unchanged(tmp_path):
    rng = np.random.default_rng(0)
    v, _, _ = verdicts(tmp_path, {b: noise(rng) for b in range(1, 21)}, {b: noise(rng) for b in range(1, 21)})
    assert set(v.values()) == {"unchanged"}


def test_clear_shift_is_a_regression_and_the_reverse_an_improvement(tmp_path):
    rng = np.random.default_rng(1)
    v, result, _ = verdicts(
        tmp_path, {1: noise(rng), 2: noise(rng, median=12)}, {1: noise(rng, median=12), 2: noise(rng, median=10)}
    )
    assert v == {1: "regression", 2: "improvement"}
    row = result.set_index("verdict").loc["regression"]
    assert row["ratio_ci_low"] > 1.1 and row["p_value"] < 0.01


def test_large_ratio_on_tiny_noisy_samples_is_not_significant(tmp_path):
    v, result, _ = verdicts(tmp_path, {1: np.array([5.0, 30.0, 8.0])}, {1: np.array([9.0, 4.0, 40.0])})
    assert v == {1: "unchanged"}
    assert "not significant" in result["why"][0]


def test_small_real_shift_below_threshold_is_unchanged(tmp_path):
    rng = np.random.default_rng(2)
    v, result, _ = verdicts(
        tmp_path, {1: noise(rng, n=400, spread=0.01)}, {1: noise(rng, n=400, median=10.2, spread=0.01)}
    )
    assert v == {1: "unchanged"} and "threshold" in result["why"][0]


def test_missing_and_failed_cases_are_reported(tmp_path):
    rng = np.random.default_rng(3)
    v, result, _ = verdicts(
        tmp_path,
        {1: noise(rng), 2: noise(rng), 3: noise(rng)},
        {1: noise(rng), 3: noise(rng), 4: noise(rng)},
        cur_kw={"status": {3: "oom"}},
    )
    assert v == {1: "unchanged", 2: "missing", 3: "failed", 4: "missing"}
    assert "ok -> oom" in result.set_index("verdict").loc["failed", "why"]


def test_environment_change_is_refused_unless_allowed(tmp_path, capsys):
    rng = np.random.default_rng(4)
    a = write_run(tmp_path / "a.csv", {1: noise(rng)})
    b = write_run(tmp_path / "b.csv", {1: noise(rng)}, torch_version="2.14.1")
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "cpu torch_version: 2.13.0 -> 2.14.1" in err and "--allow-env-change" in err
    assert err.index("--against REF") < err.index("nox -s baseline") < err.index("--allow-env-change")
    assert main(["compare", str(a), str(b), "--allow-env-change", "--out", str(tmp_path / "c")]) == 0
    assert "ENVIRONMENT CHANGED: cpu torch_version: 2.13.0 -> 2.14.1" in capsys.readouterr().err
    assert "WARNING: the runs come from different environments" in (tmp_path / "c" / "compare.md").read_text()


def test_cli_exit_codes_and_outputs(tmp_path):
    rng = np.random.default_rng(5)
    a = write_run(tmp_path / "a.csv", {1: noise(rng), 2: noise(rng)})
    b = write_run(tmp_path / "b.csv", {1: noise(rng, median=15), 2: noise(rng)})
    out = tmp_path / "c"
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 0  # reported, not failing
    assert main(["compare", str(a), str(b), "--out", str(out), "--fail-on-regression"]) == 1
    assert main(["compare", str(a), str(b), "--out", str(out), "--fail-on-regression", "--threshold", "60%"]) == 0
    md = (out / "compare.md").read_text()
    assert "| regression |" not in md and "1 unchanged" not in md  # the last run: both unchanged
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG" and "compare.png" in md
    summary = (out / "summary.md").read_text()  # what a CI job summary shows: no image it cannot load
    assert "compare.png" not in summary and summary.splitlines()[0] == md.splitlines()[0]
    assert set(pd.read_csv(out / "compare.csv")["verdict"]) == {"unchanged"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "/no/a.csv", "/no/b.csv"], "no such file"),
        (["compare", "A", "A", "--threshold", "five"], "--threshold: 'five'"),
        (["compare", "A", "A", "--threshold", "150%"], "between 0% and 100%"),
        (["compare", "A", "NOSAMPLES"], "raw samples"),
    ],
)
def test_bad_input_exits_2(tmp_path, capsys, argv, message):
    rng = np.random.default_rng(6)
    a = write_run(tmp_path / "a.csv", {1: noise(rng)})
    lone = write_run(tmp_path / "lone.csv", {1: noise(rng)})
    run_paths(lone)[0].unlink()
    argv = [str(a) if x == "A" else str(lone) if x == "NOSAMPLES" else x for x in argv]
    assert main([*argv, "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_parse_threshold():
    assert parse_threshold("5%") == pytest.approx(0.05)
    assert parse_threshold("0.1") == pytest.approx(0.1)
    with pytest.raises(UsageError):
        parse_threshold("0")


SUITE_SPEC = """
[axes]
model = ["gru"]
device = ["cpu"]
mode = ["inference", "training"]
batch_size = [2]
seq_len = [4]
embedding_dim = [8]
hidden_size = [8]
threads = [1]
[timer]
budget_s = 0.02
min_samples = 6
"""


@pytest.mark.slow
def test_ci_suite_writes_pytest_benchmark_json_and_a_comparable_csv(tmp_path):
    spec = tmp_path / "suite.toml"
    spec.write_text(SUITE_SPEC)
    out = tmp_path / "suite.csv"
    cmd = suite_command(out, GateOptions(spec=spec))
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((tmp_path / "suite.benchmark.json").read_text())
    assert len(data["benchmarks"]) == 2
    for bench in data["benchmarks"]:
        stats = bench["stats"]
        assert {"median", "ops", "data", "rounds", "mean"} <= set(stats)
        assert len(stats["data"]) == stats["rounds"] >= 6
        assert bench["extra_info"]["model"] == "gru" and bench["extra_info"]["case_id"]
    rows = pd.read_csv(out, keep_default_na=False)
    assert set(rows["status"]) == {"ok"}
    training = rows[rows["mode"] == "training"].iloc[0]
    assert float(training["fwd_median_ms"]) > 0 and float(training["bwd_median_ms"]) > 0
    # The suite CSV is a results CSV: compare reads it (against itself: nothing changes).
    assert main(["compare", str(out), str(out), "--out", str(tmp_path / "c")]) == 0
    assert set(pd.read_csv(tmp_path / "c" / "compare.csv")["verdict"]) == {"unchanged"}


@pytest.mark.slow
def test_side_by_side_writes_paired_blocks_that_compare_pairs(tmp_path):
    from bench.core.spec import expand, spec_from_toml
    from bench.execution.interleave import side_by_side

    cases = expand(spec_from_toml(SUITE_SPEC, "t"), cuda_available=False, default_threads=1)
    out = {"base": tmp_path / "base.csv", "current": tmp_path / "current.csv"}
    side_by_side({"base": REPO, "current": REPO}, cases, out, blocks=6, block_s=0.01, rounds=2)
    for path in out.values():
        rows = pd.read_csv(path, keep_default_na=False)
        assert set(rows["status"]) == {"ok"} and len(rows) == 2 and (rows["rounds"] == 2).all()
        samples = pd.read_csv(run_paths(path)[0])
        assert sorted(samples["block"].unique()) == list(range(6))
        # Two rounds of fresh workers, three blocks each, numbered on across them.
        assert samples.groupby("block")["round"].first().tolist() == [0, 0, 0, 1, 1, 1]
    result, _ = compare_runs(out["base"], out["current"], CompareConfig())
    assert set(result["verdict"]) <= {"unchanged", "improvement", "regression"}
    assert result["ratio"].notna().all()
    # One round: the samples still say so (round 0), and compare reads them.
    one = {"base": tmp_path / "b1.csv", "current": tmp_path / "c1.csv"}
    side_by_side({"base": REPO, "current": REPO}, cases[:1], one, blocks=6, block_s=0.01, rounds=1)
    assert set(pd.read_csv(run_paths(one["base"])[0])["round"]) == {0}
    result, _ = compare_runs(one["base"], one["current"], CompareConfig())
    assert result["ratio"].notna().all()


def test_paired_blocks_cancel_drift(tmp_path):
    """Both sides drift together by 30% across blocks: pairing sees no change."""
    from bench.analysis.compare import judge

    rng = np.random.default_rng(7)
    drift = np.repeat(np.linspace(1.0, 1.3, 20), 5)
    blocks = np.repeat(np.arange(20), 5)
    base = Samples(10 * drift * rng.lognormal(0, 0.01, 100), blocks)
    same = Samples(10 * drift * rng.lognormal(0, 0.01, 100), blocks)
    slower = Samples(11 * drift * rng.lognormal(0, 0.01, 100), blocks)
    assert judge(base, same, CompareConfig(), rng)["verdict"] == "unchanged"
    assert judge(base, slower, CompareConfig(), rng)["verdict"] == "regression"


def test_pairing_finds_a_change_that_drift_between_blocks_hides_from_an_unpaired_test():
    """docs/ci.md's "why side by side": each block pair ran at its own machine speed (up to ±40%).
    The current side is 10% faster in every pair; pooled, the drift swamps that, paired it cannot."""
    from bench.analysis.compare import judge

    rng = np.random.default_rng(0)
    blocks = np.repeat(np.arange(8), 5)
    machine = np.repeat(rng.lognormal(0, 0.4, 8), 5)  # one speed per block pair, shared by both sides
    base = Samples(10 * machine * rng.lognormal(0, 0.01, 40), blocks)
    faster = Samples(9 * machine * rng.lognormal(0, 0.01, 40), blocks)
    paired = judge(base, faster, CompareConfig(), rng)
    assert paired["verdict"] == "improvement" and paired["ratio"] == pytest.approx(0.9, abs=0.01)
    unpaired = judge(Samples(base.ms), Samples(faster.ms), CompareConfig(), rng)
    assert unpaired["verdict"] == "unchanged" and unpaired["p_value"] > CompareConfig().alpha


def test_blocks_in_rounds_are_judged_per_round_not_per_block():
    """A/A with a process effect: each round's pair of workers lands a few percent apart, one way or
    the other. Every block of a round shares it, so 30 blocks look like 30 witnesses; 3 rounds are 3."""
    from bench.analysis.compare import judge

    rng = np.random.default_rng(3)
    blocks = np.repeat(np.arange(30), 5)
    rounds = blocks // 10
    effect = np.array([1.12, 1.10, 0.97])[rounds]  # the current side's worker in each round
    base = Samples(10 * rng.lognormal(0, 0.005, 150), blocks, rounds)
    same = Samples(10 * effect * rng.lognormal(0, 0.005, 150), blocks, rounds)
    assert judge(base, same, CompareConfig(), rng)["verdict"] == "unchanged"
    as_one_process = judge(Samples(base.ms, blocks), Samples(same.ms, blocks), CompareConfig(), rng)
    assert as_one_process["verdict"] == "regression"  # the blocks alone: falsely sure of a change
    slower = Samples(12 * rng.lognormal(0, 0.005, 150), blocks, rounds)
    assert judge(base, slower, CompareConfig(), rng)["verdict"] == "regression"


def test_ci_gate_refuses_a_baseline_from_another_cpu_with_the_useful_fixes(tmp_path):
    from bench.commands.ci import verdict

    rng = np.random.default_rng(6)
    xeon, epyc = {case(1): noise(rng)}, {case(1): noise(rng)}
    baseline = factories.write_run(tmp_path / "baseline.csv", xeon, cpu_model="Intel(R) Xeon(R) Processor")
    current = factories.write_run(tmp_path / "current.csv", epyc, cpu_model="AMD EPYC")
    with pytest.raises(UsageError) as refused:
        verdict(baseline, current, tmp_path / "out", 0.05, allow_env_change=False)
    message = str(refused.value)
    assert "\n" not in message and "cpu_model" in message and "AMD EPYC" in message
    assert "--against REF" in message and "nox -s baseline" in message
