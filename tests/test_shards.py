"""Sharding: the split, the submitit launcher (local executor), resume, merge."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import TINY_SPEC, make_case, start, wait_rows, write_run

from bench.cli import main
from bench.core.errors import UsageError
from bench.core.spec import expand, load_spec, with_overrides
from bench.core.timer import TimerConfig
from bench.execution.shard import estimated_cost, shard_cases
from bench.records.reading import read_results, read_samples

REPO = Path(__file__).resolve().parent.parent


def test_shards_partition_the_sweep_deterministically_and_evenly():
    cases = expand(load_spec("default"), cuda_available=False, default_threads=2)
    shards = [shard_cases(cases, k, 4) for k in range(1, 5)]
    ids = [c.case_id for s in shards for c in s]
    assert sorted(ids) == sorted(c.case_id for c in cases) and len(set(ids)) == len(ids)
    # Any input order gives the same shards.
    assert all(shards) and {c.case_id for c in shard_cases(list(reversed(cases)), 2, 4)} == {
        c.case_id for c in shards[1]
    }
    costs = [sum(estimated_cost(c) for c in s) for s in shards]
    assert max(costs) / min(costs) < 1.2


@pytest.mark.parametrize("bad", ["0/2", "3/2", "a/b", "1/0", "2"])
def test_bad_shard_values_exit_2(bad, capsys):
    assert main(["run", "--shard", bad, "--list"]) == 2
    assert "--shard" in capsys.readouterr().err


@pytest.mark.slow
def test_local_launcher_gives_the_one_process_case_set(tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY_SPEC)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    out = tmp_path / "merged.csv"
    argv = ["run", "--spec", str(spec), "--shards", "2", "--launcher", "submitit", "--cluster", "local"]
    assert main([*argv, "--out", str(out)]) == 0
    rows = read_results(out).to_dict("records")  # --out is where the merge goes
    main(["run", "--spec", str(spec), "--list"])
    assert sorted(r["case_id"] for r in rows) == sorted(
        c.case_id for c in expand(load_spec(spec_file=str(spec)), cuda_available=False, default_threads=1)
    )
    assert len({r["case_id"] for r in rows}) == len(rows) == 8
    parts = sorted((tmp_path / "results").glob("*/part-*-of-2.csv"))
    assert len(parts) == 2


@pytest.mark.slow
def test_killed_shard_resumes_and_the_merge_is_complete(tmp_path):
    spec = tmp_path / "slow.toml"
    spec.write_text(TINY_SPEC.replace("budget_s = 0.02", "budget_s = 0.3").replace("rounds = 1", "rounds = 2"))
    one, two = tmp_path / "p1.csv", tmp_path / "p2.csv"
    proc = start(spec, one, "--shard", "1/2")
    wait_rows(one, 1, proc)
    proc.kill()
    proc.communicate(timeout=60)
    for part, extra in ((one, ["--resume"]), (two, [])):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench",
                "run",
                "--spec",
                str(spec),
                "--shard",
                f"{1 if part == one else 2}/2",
                "--out",
                str(part),
                *extra,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    merged = tmp_path / "all.csv"
    assert main(["merge", str(one), str(two), "--out", str(merged)]) == 0
    merged_ids = read_results(merged)["case_id"]
    assert merged_ids.nunique() == len(merged_ids) == 8
    # The parts' rounds survive the kill, the resume and the merge: every planned round, and any
    # extra round a noisy case earned from the time pool, in the row and in its samples alike.
    rows = read_results(merged).set_index("case_id")
    raw = read_samples(merged)
    assert (rows["rounds"] >= 2).all()
    assert raw.groupby("case_id")["round"].nunique().reindex(rows.index).eq(rows["rounds"]).all()
    assert {0, 1} <= set(raw["round"]) and not raw.duplicated(["case_id", "phase", "index"]).any()


@pytest.fixture
def parts(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY_SPEC)
    out = []
    for k in (1, 2):
        part = tmp_path / f"p{k}.csv"
        assert main(["run", "--spec", str(spec), "--shard", f"{k}/2", "--out", str(part)]) == 0
        out.append(part)
    return out


@pytest.mark.slow
def test_merge_refuses_overlap_missing_parts_and_mixed_schemas(parts, tmp_path, capsys):
    def merge(*paths):
        code = main(["merge", *map(str, paths), "--out", str(tmp_path / f"m{len(list(tmp_path.iterdir()))}.csv")])
        return code, capsys.readouterr().err.strip()

    code, err = merge(parts[0], parts[0])
    assert code == 2 and "overlapping parts" in err
    code, err = merge(parts[0])
    assert code == 2 and "a part is missing" in err
    odd = tmp_path / "odd.csv"
    pd.read_csv(parts[1], dtype=str, keep_default_na=False).assign(schema_version="99").to_csv(odd, index=False)
    code, err = merge(parts[0], odd)
    assert code == 2 and "schema_version '99' is not supported" in err
    code, err = merge(*parts)
    assert code == 0 and "Traceback" not in err


def _launch_opts(**more):
    from bench.execution.launch import LaunchOptions

    return LaunchOptions(**({"shards": 3} | more))


def test_local_shards_at_once_get_gpus_of_their_own():
    from bench.execution.launch import local_gpus

    opts = _launch_opts(gpus_per_shard=2, parallel_local=True)
    assert [local_gpus(k, opts, gpu_count=6) for k in (1, 2, 3)] == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(UsageError, match="needs 6 GPU"):
        local_gpus(1, opts, gpu_count=4)
    one_by_one = _launch_opts(gpus_per_shard=2)
    assert [local_gpus(k, one_by_one, gpu_count=2) for k in (1, 2, 3)] == [[0, 1]] * 3


def _sweep(**axes):
    from bench.execution.runner import SweepOptions

    return SweepOptions(with_overrides(load_spec(), axes))


@pytest.mark.parametrize(
    ("local", "gpu_count", "gpus_per_shard", "devices", "gpus_after"),
    [
        (True, 1, 0, ("cpu", "cuda"), 1),  # local with a GPU: auto means both, one GPU per shard
        (True, 0, 0, ("cpu",), 0),
        (False, 0, 2, ("cpu", "cuda"), 2),  # SLURM: the jobs' GPUs decide, not the login node's
        (False, 0, 0, ("cpu",), 0),
    ],
)
def test_device_auto_is_settled_before_the_jobs_start(local, gpu_count, gpus_per_shard, devices, gpus_after):
    from bench.execution.launch import settle_devices

    sweep, opts = settle_devices(_sweep(device="auto"), _launch_opts(gpus_per_shard=gpus_per_shard), local, gpu_count)
    assert sweep.spec.axes["device"] == devices
    assert opts.gpus_per_shard == gpus_after
    # Every job then plans the same cases, whatever its own machine has.
    assert {c.device for c in expand(sweep.spec, cuda_available=True, default_threads=1)} == set(devices)


def test_slurm_cuda_sweep_without_gpus_is_refused():
    from bench.execution.launch import settle_devices

    with pytest.raises(UsageError, match="--gpus-per-shard"):
        settle_devices(_sweep(device="cuda"), _launch_opts(), local=False, gpu_count=0)


# --- a cluster's jobs: time limits, outcomes, refusals (the live checks: tests/test_cluster_live.py) ---


def test_a_launcher_exception_inside_a_case_is_the_jobs_not_an_error_row(monkeypatch):
    submitit = pytest.importorskip("submitit")
    from bench.execution import runner

    def cut_off(case):
        raise submitit.core.utils.UncompletedJobError("Job not requeued because: timed-out and not checkpointable.")

    monkeypatch.setattr(runner, "build", cut_off)
    with pytest.raises(submitit.core.utils.UncompletedJobError):
        runner.run_case(make_case(), TimerConfig(), 1.0)
    monkeypatch.setattr(runner, "build", lambda case: (_ for _ in ()).throw(RuntimeError("a real failure")))
    assert runner.run_case(make_case(), TimerConfig(), 1.0).status == "error"


class FakeJob:
    """What end_of reads of a submitit job."""

    def __init__(self, tmp_path, done: bool, result: str | None, state: str = "COMPLETED"):
        self._done, self.state, self.job_id = done, state, str(tmp_path)
        self.paths = type("Paths", (), {"result_pickle": tmp_path / "result.pkl"})()
        self.error = result
        if result is not None:
            self.paths.result_pickle.write_text("x")

    def done(self):
        return self._done

    def exception(self):
        return None if self.error == "" else RuntimeError(self.error)


def test_a_job_end_is_read_without_waiting_and_recurring_failures_are_told_apart(tmp_path):
    from bench.execution.launch import end_of

    assert end_of(FakeJob(tmp_path, done=False, result=None)) is None
    (tmp_path / "a").mkdir()
    cancelled = end_of(FakeJob(tmp_path / "a", done=True, result=None, state="CANCELLED"))
    assert cancelled.state == "failed" and "CANCELLED" in cancelled.why  # no result file: no 15 s wait
    (tmp_path / "b").mkdir()
    assert end_of(FakeJob(tmp_path / "b", done=True, result="")).state == "done"
    (tmp_path / "c").mkdir()
    # submitit's text: the job's traceback, then where its logs are.
    bad = (
        "Job (task=0) failed during processing with trace:\n----------------------\nTraceback ...\n"
        "  raise UsageError(...)\nbench.core.errors.UsageError: --dtype: bfloat16 does not run on cuda here\n"
        "----------------------\nYou can check full logs with 'job.stderr(0)' and 'job.stdout(0)'or at paths:\n"
        "  - /tmp/x/7_0_log.err\n  - /tmp/x/7_0_log.out\n"
    )
    recurring = end_of(FakeJob(tmp_path / "c", done=True, result=bad))
    assert recurring.state == "recurring"
    assert recurring.why == "bench.core.errors.UsageError: --dtype: bfloat16 does not run on cuda here"
    (tmp_path / "d").mkdir()
    other = end_of(FakeJob(tmp_path / "d", done=True, result=bad.replace("UsageError", "RuntimeError")))
    assert other.state == "failed"  # worth one more try
    (tmp_path / "e").mkdir()
    assert end_of(FakeJob(tmp_path / "e", done=True, result=None)) is None  # COMPLETED: its result may be on its way


def test_threads_are_settled_on_the_submit_host_and_jobs_ask_for_their_cores():
    from bench.execution.launch import settle_threads

    sweep, cpus = settle_threads(_sweep(threads="0,1"), _launch_opts(), default_threads=2)
    assert sweep.spec.axes["threads"] == (2, 1) and cpus == 2
    sweep, cpus = settle_threads(_sweep(threads="0"), _launch_opts(cpus_per_shard=4), default_threads=2)
    assert sweep.spec.axes["threads"] == (4,) and cpus == 4
    with pytest.raises(UsageError, match="--cpus-per-shard 1: a case runs 2 threads"):
        settle_threads(_sweep(threads="2"), _launch_opts(cpus_per_shard=1), default_threads=2)


def test_an_sbatch_refusal_is_one_line_naming_the_flag(capfd):
    pytest.importorskip("submitit")
    from submitit.core.utils import FailedJobError

    from bench.execution.launch import submit_or_refuse

    def refused():  # as submitit does: sbatch's stderr printed, then raised
        print("sbatch: error: Invalid generic resource (gres) specification", file=sys.stderr)
        raise FailedJobError("sbatch: error: Invalid generic resource (gres) specification")

    with pytest.raises(UsageError) as e:
        submit_or_refuse(refused)
    assert str(e.value) == (
        "SLURM refused the jobs (sbatch: error: Invalid generic resource (gres) specification): change --gpus-per-shard"
    )
    assert "sbatch" not in capfd.readouterr().err  # sbatch's own line is folded into the one above
    assert submit_or_refuse(lambda: 5) == 5


def test_merge_refuses_a_part_whose_run_has_not_finished(tmp_path, capsys):
    from bench.records.files import ledger_path

    part = write_run(tmp_path / "part-1-of-1.csv", {make_case(): np.full(8, 1.0)})
    ledger_path(part).write_text("{}\n")
    assert main(["merge", str(tmp_path), "--out", str(tmp_path / "m.csv")]) == 2
    assert "has not finished" in capsys.readouterr().err


@pytest.mark.slow
def test_a_failing_case_in_local_shards_exits_1_as_an_unsharded_run_does(tmp_path, monkeypatch, capsys):
    pytest.importorskip("submitit")
    (tmp_path / "failing.py").write_text(
        "import torch\nfrom torch import nn\n"
        "class Fails(nn.Module):\n"
        "    def __init__(self, vocab_size, embedding_dim, hidden_size):\n"
        "        super().__init__()\n"
        "        self.embedding = nn.Embedding(vocab_size, embedding_dim)\n"
        "        self.rnn = nn.GRU(embedding_dim, hidden_size)\n"
        "    def forward(self, tokens, lengths):\n"
        "        if tokens.size(0) == 4:\n"
        "            raise RuntimeError('fails at batch 4')\n"
        "        return self.rnn(self.embedding(tokens).transpose(0, 1))[0]\n"
        "def build(vocab_size, embedding_dim, hidden_size):\n"
        "    return Fails(vocab_size, embedding_dim, hidden_size)\n"
    )
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY_SPEC)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", f"{REPO}:{tmp_path}")
    argv = ["run", "--spec", str(spec), "--model", "failing:build", "--model-path", str(tmp_path)]
    argv += ["--batch-size", "2,4", "--shards", "2", "--launcher", "submitit", "--cluster", "local"]
    assert main([*argv, "--out", str(tmp_path / "m.csv")]) == 1
    err = capsys.readouterr().err
    failed = read_results(tmp_path / "m.csv")
    n = int((failed["status"] == "error").sum())
    assert n > 0 and f"{n} case(s) failed (oom/error rows in the CSV)" in err
