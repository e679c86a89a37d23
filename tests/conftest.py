"""Shared fixtures: tiny specs that run in a second or two on a 2-core CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tests share 2 cores with whatever else runs; one intra-op thread keeps them steady.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

TINY_SPEC = """
[axes]
model = ["lstm", "gru"]
device = ["cpu"]
mode = ["inference", "training"]
batch_size = [3]
seq_len = [5]
packed = [false, true]
lengths = ["uniform:2"]
embedding_dim = [8]
hidden_size = [8]
vocab_size = [20]
threads = [1]

[timer]
budget_s = 0.02
min_samples = 6
warmup_runs = 1
warmup_s = 0.0
"""

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def tiny_spec(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SPEC)
    return path
