"""A tiny real sweep through the CLI: the CSV contract, resume, OOM, bad input."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from factories import raw_rows

from bench.cli import main
from bench.records.files import run_paths
from bench.records.rows import COLUMNS, SCHEMA_VERSION


def run_tiny(tmp_path, tiny_spec, *extra):
    out = tmp_path / "run.csv"
    code = main(["run", "--spec", str(tiny_spec), "--out", str(out), *extra])
    return code, out


@pytest.mark.slow
def test_tiny_run_holds_the_csv_contract(tmp_path, tiny_spec):
    code, out = run_tiny(tmp_path, tiny_spec)
    assert code == 0
    df = pd.read_csv(out, keep_default_na=False)
    assert tuple(df.columns) == COLUMNS
    assert len(df) == 8 and df["case_id"].is_unique
    assert set(df["status"]) == {"ok"}
    med = df["median_ms"].astype(float)
    assert (med > 0).all()
    assert (df["ci_low_ms"].astype(float) <= med).all() and (med <= df["ci_high_ms"].astype(float)).all()
    valid_tokens = df["batch_size"] * df["seq_len"] * (1 - df["padding_fraction"].astype(float))
    expected = valid_tokens / (med / 1e3)
    assert ((df["tokens_per_s"].astype(float) / expected - 1).abs() < 0.01).all()
    eff = df["efficiency"].astype(float)
    assert ((eff > 0) & (eff < 1.5)).all()
    assert set(df["bidirectional"].astype(str).str.lower()) <= {"true", "false"}
    training = df[df["mode"] == "training"]
    assert len(training) == 4
    assert (training["fwd_median_ms"].astype(float) > 0).all() and (training["bwd_median_ms"].astype(float) > 0).all()
    assert (df["samples"].astype(int) >= 6).all()
    assert df["run_id"].nunique() == 1 and (df["schema_version"] == SCHEMA_VERSION).all()
    assert (df["gpu_name"] == "").all() and (df["torch_version"] != "").all()
    # Raw samples: one per sample and phase; training has fwd and bwd.
    samples = pd.read_csv(tmp_path / "run.samples.csv")
    assert list(samples.columns) == ["case_id", "phase", "index", "ms", "round"]
    assert (samples["round"] == 0).all() and (df["rounds"] == 1).all()  # the tiny spec: one round
    per_case = samples.groupby("case_id").size()
    for _, row in df.iterrows():
        phases = 2 if row["mode"] == "training" else 1
        assert per_case[row["case_id"]] == phases * int(row["samples"])
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["run_id"] == df["run_id"][0] and len(meta["cases"]) == 8
    assert meta["environment"]["torch_version"] and meta["peak_gflop_per_s"]


@pytest.mark.slow
def test_resume_runs_only_what_is_missing(tmp_path, tiny_spec):
    out = tmp_path / "run.csv"
    assert main(["run", "--spec", str(tiny_spec), "--out", str(out), "--model", "lstm"]) == 0
    first = raw_rows(out)
    assert len(first) == 4
    # A hard kill mid-write leaves a torn line: resume must cut it and redo that case.
    with out.open("a") as f:
        f.write("gru-cpu-float32-inference-b3-l5,gru,cp")
    assert main(["run", "--spec", str(tiny_spec), "--out", str(out), "--resume"]) == 0
    rows = raw_rows(out)
    assert len(rows) == 8 and len({r["case_id"] for r in rows}) == 8
    assert rows[:4] == first  # finished rows untouched
    assert {r["run_id"] for r in rows} == {first[0]["run_id"]}


@pytest.mark.slow
def test_resume_cuts_a_torn_samples_line_instead_of_keeping_a_wrong_value(tmp_path, tiny_spec):
    out = tmp_path / "run.csv"
    assert main(["run", "--spec", str(tiny_spec), "--out", str(out), "--model", "lstm"]) == 0
    samples = run_paths(out)[0]
    lines = samples.read_text().splitlines(keepends=True)
    original = set(lines[1:])
    # A hard kill mid-number: "...,0.123456" left as "...,0.123", still a number, a wrong one.
    samples.write_text("".join(lines[:-1]) + lines[-1].rstrip("\n")[:-3])
    assert main(["run", "--spec", str(tiny_spec), "--out", str(out), "--resume"]) == 0
    kept = [line for line in samples.read_text().splitlines(keepends=True)[1:] if line.startswith("lstm")]
    assert set(kept) <= original and len(kept) == len(original) - 1  # the torn sample is gone, not altered


@pytest.mark.slow
def test_existing_output_is_not_overwritten(tmp_path, tiny_spec, capsys):
    code, out = run_tiny(tmp_path, tiny_spec, "--model", "gru", "--mode", "inference", "--packed", "false")
    assert code == 0
    before = out.read_text()
    code, _ = run_tiny(tmp_path, tiny_spec)
    assert code == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_text() == before


@pytest.mark.slow
def test_oom_case_becomes_a_row_and_the_sweep_goes_on(tmp_path, tiny_spec):
    # 2**20 x 2**16 int64 tokens = 512 GiB: no machine here allocates that.
    code, out = run_tiny(
        tmp_path,
        tiny_spec,
        "--batch-size",
        "3,1048576",
        "--seq-len",
        "65536",
        "--model",
        "gru",
        "--mode",
        "inference",
        "--packed",
        "false",
        "--lengths",
        "full",
    )
    rows = {r["batch_size"]: r for r in raw_rows(out)}
    assert code == 1  # some case failed
    assert rows["1048576"]["status"] == "oom" and "alloc" in rows["1048576"]["error"].lower()
    assert rows["3"]["status"] == "ok"
    assert rows["1048576"]["median_ms"] == ""


def test_list_prints_case_ids_without_running(tmp_path, tiny_spec, capsys):
    assert main(["run", "--spec", str(tiny_spec), "--list"]) == 0
    lines = capsys.readouterr().out.split()
    assert len(lines) == 8 and all(line.startswith(("lstm-", "gru-")) for line in lines)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--preset", "nope"], "--preset 'nope' is unknown"),
        (["run", "--batch-size", "0"], "--batch-size: 0 is out of range"),
        (["run", "--model", "transformer"], "--model: 'transformer' is not allowed"),
        (["run", "--frobnicate", "1"], "unrecognized arguments: --frobnicate"),
        (["run", "--preset", "quick", "--spec", "x.toml"], "not allowed with argument"),
        (["run", "--spec", "/no/such/file.toml"], "cannot read"),
        (["run", "--resume", "--out", "/no/such/run.csv"], "does not exist"),
        (["run", "--budget-s", "-1"], "--budget-s"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "results").exists()  # nothing written


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message given where CUDA is missing")
def test_cuda_without_gpu_exits_2(capsys):
    assert main(["run", "--device", "cuda", "--list"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "--device: 'cuda' was asked for but torch.cuda.is_available() is False here" in err


def test_a_dtype_the_device_cannot_run_is_one_line_and_exit_2(tmp_path, tiny_spec, monkeypatch, capsys):
    import bench.measure.checks

    # A CPU without fast float16 kernels, as many are; the refusal must name dtype, device and why.
    def no_half(device: str, dtype: str) -> str | None:
        return "\"addmm_impl_cpu_\" not implemented for 'Half'" if dtype == "float16" else None

    monkeypatch.setattr(bench.measure.checks, "dtype_supported", no_half)
    out = tmp_path / "half.csv"
    assert main(["run", "--spec", str(tiny_spec), "--out", str(out), "--dtype", "float16"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "--dtype: float16 does not run on cpu here (\"addmm_impl_cpu_\" not implemented for 'Half')" in err
    assert not out.exists() or out.stat().st_size == 0  # nothing measured


@pytest.mark.cuda
def test_cuda_tiny_run(tmp_path, tiny_spec):
    code, out = run_tiny(tmp_path, tiny_spec, "--device", "cuda")
    assert code == 0
    df = pd.read_csv(out, keep_default_na=False)
    assert (df["status"] == "ok").all()
    assert (df["peak_mem_mb"].astype(float) > 0).all()
    assert (df["gpu_name"] != "").all()
    assert all(math.isfinite(float(v)) for v in df["efficiency"])


@pytest.mark.cuda
def test_cuda_oom_is_a_row_and_the_next_case_runs_clean(tmp_path, tiny_spec):
    # ~1.1 TB of activations first (beyond any single GPU), then a tiny case.
    code, out = run_tiny(
        tmp_path,
        tiny_spec,
        "--device",
        "cuda",
        "--batch-size",
        "65536,3",
        "--seq-len",
        "4096",
        "--hidden-size",
        "1024",
        "--embedding-dim",
        "1024",
        "--model",
        "lstm",
        "--mode",
        "inference",
        "--packed",
        "false",
        "--lengths",
        "full",
    )
    assert code == 1
    rows = {r["batch_size"]: r for r in raw_rows(out)}
    assert rows["65536"]["status"] == "oom"
    assert rows["3"]["status"] == "ok"
    # Peak stats were reset after the OOM: the small case's peak is its own (weights + activations).
    assert float(rows["3"]["peak_mem_mb"]) < 2048


@pytest.mark.slow
def test_max_abs_err_is_zero_for_packed_and_large_for_padded_bidirectional(tmp_path, tiny_spec):
    code, out = run_tiny(
        tmp_path,
        tiny_spec,
        "--model",
        "lstm",
        "--mode",
        "inference",
        "--bidirectional",
        "true",
        "--num-layers",
        "2",
    )
    assert code == 0
    err = {r["packed"]: float(r["max_abs_err"]) for r in raw_rows(out)}
    assert err["true"] == 0.0
    assert err["false"] > 1e-3


@pytest.mark.parametrize(
    ("lengths", "message"),
    [("file:/nonexistent/lengths.txt", "cannot read /nonexistent/lengths.txt"), ("pad:0.8x", "must be a number")],
)
def test_bad_length_distributions_exit_2_in_one_line(lengths, message, capsys):
    assert main(["run", "--lengths", lengths, "--list"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_a_lengths_file_with_a_length_above_the_sequence_is_refused(tmp_path, capsys):
    path = tmp_path / "lengths.txt"
    path.write_text("10\n200\n")
    assert main(["run", "--lengths", f"file:{path}", "--seq-len", "64", "--list"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "entry 2 (200) exceeds the sequence length 64" in err
