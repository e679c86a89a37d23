"""Shared fixtures: tiny specs that run in a second or two on a 2-core CPU."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
from factories import TINY_SPEC

# Tests share 2 cores with whatever else runs; one intra-op thread keeps them steady.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
# ONNX exports are cached on disk (bench.measure.onnxexport): the tests' go to a folder of their own.
os.environ["RNNBENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="rnnbench-test-cache-")


@pytest.fixture
def tiny_spec(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SPEC)
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.cuda`` tests skip where there is no GPU (``pytest -m cuda`` selects them)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
