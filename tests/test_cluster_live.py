"""Sharded sweeps on a live single-node SLURM (``nox -s cluster`` starts one: scripts/slurm-local.sh).

Skipped unless ``RNNBENCH_SLURM_CONF`` names a running cluster's slurm.conf. The time-limit
check takes minutes and runs only with ``RNNBENCH_CLUSTER_FULL=1`` (``nox -s cluster -- --full``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
CONF = os.environ.get("RNNBENCH_SLURM_CONF", "")
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not CONF, reason="no live SLURM (RNNBENCH_SLURM_CONF; nox -s cluster starts one)"),
]

SPEC = """
[axes]
model = ["lstm", "gru"]
device = ["cpu"]
batch_size = [2, 4]
seq_len = [8]
embedding_dim = [16]
hidden_size = [16]
[timer]
budget_s = {budget}
min_samples = 3
rounds = 2
"""

FAILING = """
import torch
from torch import nn

class Fails(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = nn.GRU(embedding_dim, hidden_size)

    def forward(self, tokens, lengths):
        if tokens.size(0) == 4:
            raise RuntimeError("this model fails at batch 4")
        return self.rnn(self.embedding(tokens).transpose(0, 1))[0]

def build(vocab_size, embedding_dim, hidden_size):
    return Fails(vocab_size, embedding_dim, hidden_size)
"""


def env() -> dict[str, str]:
    return os.environ | {"SLURM_CONF": CONF, "PYTHONPATH": str(REPO)}


def bench(tmp: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "bench", *args]
    return subprocess.run(cmd, cwd=tmp, env=env(), capture_output=True, text=True, timeout=timeout)


def spec(tmp: Path, budget: float = 0.1) -> Path:
    path = tmp / "spec.toml"
    path.write_text(SPEC.format(budget=budget))
    return path


def sharded(tmp: Path, *more: str) -> list[str]:
    return ["run", "--spec", str(spec(tmp)), "--shards", "2", "--launcher", "submitit", "--cluster", "slurm", *more]


def listed(tmp: Path) -> list[str]:
    return bench(tmp, "run", "--spec", str(spec(tmp)), "--list").stdout.split()


def squeue_empty() -> bool:
    out = subprocess.run(["squeue", "-h"], env=env(), capture_output=True, text=True).stdout
    return not out.strip()


def wait_queue_empty(timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if squeue_empty():
            return
        time.sleep(1)
    raise AssertionError("jobs still queued")


@pytest.fixture(autouse=True)
def quiet_queue():
    wait_queue_empty()  # one check's jobs never share the node with the next's
    yield


def test_two_shards_give_each_case_once_with_the_ids_of_an_unsharded_run(tmp_path):
    start = time.monotonic()
    done = bench(tmp_path, *sharded(tmp_path, "--out", str(tmp_path / "m.csv")))
    assert done.returncode == 0, done.stderr
    rows = pd.read_csv(tmp_path / "m.csv")
    assert sorted(rows["case_id"]) == sorted(listed(tmp_path))  # every case once, ids as --list says here
    assert (rows["status"] == "ok").all()
    print(f"2 shards: {time.monotonic() - start:.1f} s")


def test_no_wait_then_merge_which_waits_for_running_jobs(tmp_path):
    start = time.monotonic()
    done = bench(tmp_path, *sharded(tmp_path, "--no-wait"))
    assert done.returncode == 0, done.stderr
    merge = next(line.split() for line in done.stdout.splitlines() if "bench merge" in line)
    early = subprocess.run(
        [sys.executable, *merge[1:]], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=60
    )
    if not squeue_empty():  # still running: refused, in one line, until they finish
        assert early.returncode == 2 and len(early.stderr.strip().splitlines()) == 1, early.stderr
    wait_queue_empty()
    merged = subprocess.run(
        [sys.executable, *merge[1:]], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=60
    )
    if early.returncode == 0:
        merged = early  # the jobs had finished before the first merge
    assert merged.returncode == 0, merged.stderr
    out = Path(tmp_path / merge[merge.index("--out") + 1])
    assert sorted(pd.read_csv(out)["case_id"]) == sorted(listed(tmp_path))
    print(f"--no-wait then merge: {time.monotonic() - start:.1f} s")


def test_a_cancelled_shard_is_resubmitted_and_resumes_its_part(tmp_path):
    start = time.monotonic()
    args = ["run", "--spec", str(spec(tmp_path, budget=3.0)), "--shards", "2", "--launcher", "submitit"]
    args += ["--cluster", "slurm", "--out", str(tmp_path / "m.csv")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", *args],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    cancelled = None
    while cancelled is None and time.monotonic() < deadline:
        for ledger in tmp_path.glob("results/*/part-*-of-2.rounds.jsonl"):
            if ledger.read_text().strip():  # a finished round: cancel the job mid-run
                k = ledger.name.split("-")[1]
                jobs = subprocess.run(
                    ["squeue", "-h", "-o", "%i %K"], env=env(), capture_output=True, text=True
                ).stdout.split("\n")
                for line in jobs:
                    if line.strip() and line.split()[1] == str(int(k) - 1):
                        cancelled = line.split()[0]
                        subprocess.run(["scancel", cancelled], env=env(), check=True)
                        break
                break
        time.sleep(0.5)
    assert cancelled, "no shard was caught running"
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "resubmitting failed shard(s)" in err
    rows = pd.read_csv(tmp_path / "m.csv")
    assert sorted(rows["case_id"]) == sorted(listed(tmp_path)) and (rows["status"] == "ok").all()
    print(f"cancelled shard resumed: {time.monotonic() - start:.1f} s")


def test_a_failing_case_makes_the_sharded_run_exit_1_with_the_unsharded_message(tmp_path):
    start = time.monotonic()
    (tmp_path / "failing.py").write_text(textwrap.dedent(FAILING))
    args = sharded(
        tmp_path, "--model", "failing:build", "--model-path", str(tmp_path), "--out", str(tmp_path / "m.csv")
    )
    done = bench(tmp_path, *args)
    assert done.returncode == 1, done.stderr
    assert "1 case(s) failed (oom/error rows in the CSV)" in done.stderr  # an unsharded run's words
    rows = pd.read_csv(tmp_path / "m.csv").set_index("batch_size")["status"]
    assert rows.to_dict() == {2: "ok", 4: "error"}
    print(f"failing case: {time.monotonic() - start:.1f} s")


def test_a_cuda_request_is_planned_here_and_refused_by_slurm_in_one_line(tmp_path):
    done = bench(tmp_path, *sharded(tmp_path, "--device", "cuda", "--gpus-per-shard", "1"), timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: SLURM refused the jobs") and "--gpus-per-shard" in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(os.environ.get("RNNBENCH_CLUSTER_FULL") != "1", reason="minutes: nox -s cluster -- --full")
def test_a_time_limit_shorter_than_the_sweep_loses_no_case_and_marks_none_an_error(tmp_path):
    start = time.monotonic()
    # About 100 s of sampling (no case stops early: the precision target is out of reach), over a
    # 1-minute limit whose warning comes 15 s before it: the job is requeued at least once.
    longer = SPEC.format(budget=10.0).replace("batch_size = [2, 4]", "batch_size = [1, 2, 4, 8, 16]")
    longer += "target_rel_ci = 0.00001\nmax_samples = 10000000\n"
    (tmp_path / "long.toml").write_text(longer)
    args = ["run", "--spec", str(tmp_path / "long.toml"), "--shards", "1", "--launcher", "submitit"]
    args += ["--cluster", "slurm", "--timeout-min", "1", "--out", str(tmp_path / "m.csv")]
    done = bench(tmp_path, *args, timeout=900)
    assert done.returncode == 0, done.stderr
    rows = pd.read_csv(tmp_path / "m.csv")
    assert len(rows) == 10 and (rows["status"] == "ok").all()
    history = subprocess.run(
        ["sacct", "-n", "-D", "-X", "-o", "JobID,State"], env=env(), capture_output=True, text=True
    ).stdout
    mine = (tmp_path / "results").glob("*/submitit/*_submission.sh")
    ids = {p.name.split("_")[0] for p in mine}
    states = [line.split()[1] for line in history.splitlines() if line.split() and line.split()[0].split("_")[0] in ids]
    assert "REQUEUED" in states or len(states) > 1, history  # the limit was reached and the job came back
    print(f"time limit: {time.monotonic() - start:.1f} s; the job's states: {', '.join(states)}")
