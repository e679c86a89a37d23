"""Users' own models: the contract, its errors, unsupported rows, FLOPs from the counter."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest
import torch
from factories import TINY_SPEC

from bench.cli import main
from bench.measure.backends import kernel_settings
from bench.measure.usermodels import counted_gflop, output_of
from rnnmodels import MODEL_CLASSES, forward_flops, synthetic_batch
from rnnmodels.flops import training_flops

GOOD = """
import torch
from torch import nn

class Tiny(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_size, varlen):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = nn.GRU(embedding_dim, hidden_size)
        self.varlen = varlen

    def forward(self, tokens, lengths):
        x = self.embedding(tokens).transpose(0, 1)
        if self.varlen == "padded":
            return self.rnn(x)[0]  # a tensor
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, h = self.rnn(packed)
        return nn.utils.rnn.pad_packed_sequence(out, total_length=tokens.size(1))[0], h  # a tuple

def build(vocab_size, embedding_dim, hidden_size, bidirectional, varlen):
    if bidirectional:
        raise NotImplementedError("one direction only")
    if varlen == "exact":
        raise NotImplementedError("no exact mode")
    return Tiny(vocab_size, embedding_dim, hidden_size, varlen)
"""


@pytest.fixture
def models(tmp_path):
    """A folder with the user's model modules, for --model-path."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "good.py").write_text(textwrap.dedent(GOOD))
    (folder / "broken.py").write_text("import not_a_module_anywhere\n")
    (folder / "odd.py").write_text(
        textwrap.dedent("""
        import torch
        from torch import nn
        NOT_CALLABLE = 3

        class Raises(nn.Module):
            def forward(self, tokens, lengths):
                raise ValueError("shapes do not match")

        class Dict(nn.Module):
            def forward(self, tokens, lengths):
                return {"out": tokens}

        def raises(**kwargs):
            return Raises()

        def gives_dict(**kwargs):
            return Dict()
        """)
    )
    return folder


def run(tmp_path, models, *extra):
    out = tmp_path / "run.csv"
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY_SPEC)
    code = main(["run", "--spec", str(spec), "--model-path", str(models), "--out", str(out), *extra])
    return code, out


@pytest.mark.slow
def test_a_user_model_runs_beside_the_suites_with_unsupported_rows(tmp_path, models):
    axes = ["--model", "good:build,gru", "--varlen", "padded,packed,exact", "--bidirectional", "false,true"]
    code, out = run(tmp_path, models, *axes)
    assert code == 0  # unsupported is not a failure
    rows = pd.read_csv(out).set_index("case_id")
    mine = rows[rows["model"] == "good:build"]
    unsupported = mine[mine["status"] == "unsupported"]
    assert set(zip(unsupported["varlen"], unsupported["bidirectional"], strict=True)) == {
        ("exact", False),
        ("exact", True),
        ("packed", True),
        ("padded", True),
    }
    assert set(unsupported["error"]) == {"one direction only", "no exact mode"}
    ok = mine[mine["status"] == "ok"]
    assert len(ok) == 4  # padded and packed, inference and training
    training = ok[ok["mode"] == "training"]
    assert (training["fwd_median_ms"] > 0).all() and (training["bwd_median_ms"] > 0).all()
    # Errors against its own packed mode: zero for packed, large where padding is read as data.
    assert (ok[ok["varlen"] == "packed"]["max_abs_err"] == 0).all()
    assert ok[ok["varlen"] == "padded"]["state_max_abs_err"].isna().all()
    assert (ok["gflop"] > 0).all() and ok["note"].fillna("").str.contains("no FLOP count").sum() == 0
    assert {"gru"} <= set(rows["model"])  # the suite's own model ran beside it


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("broken:build", "cannot import broken (ModuleNotFoundError: No module named 'not_a_module_anywhere')"),
        ("good:missing", "module good has no 'missing'"),
        ("odd:NOT_CALLABLE", "NOT_CALLABLE is a int, not a callable factory"),
        ("nowhere.at.all:build", "cannot import nowhere.at.all"),
        ("odd:raises", "forward failed for odd@raises-cpu-"),
        ("odd:gives_dict", "forward returned a dict, not a tensor"),
        ("good/build", "is not allowed (choose from lstm, gru, or a model reference PACKAGE.MODULE:FACTORY)"),
    ],
)
def test_bad_model_references_are_one_line_and_exit_2(tmp_path, models, capsys, model, message):
    code, out = run(tmp_path, models, "--model", model)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not out.exists() or out.stat().st_size == 0  # refused before anything was measured


def test_a_missing_model_path_is_refused(tmp_path, models, capsys):
    code, _ = run(tmp_path, tmp_path / "nope", "--model", "good:build")
    assert code == 2 and "--model-path" in capsys.readouterr().err


@pytest.mark.slow
def test_user_models_run_isolated_and_side_by_side(tmp_path, models):
    code, out = run(tmp_path, models, "--model", "good:build", "--bidirectional", "false", "--isolate")
    assert code == 0 and set(pd.read_csv(out)["status"]) == {"ok"}  # each case built in a child process
    out2 = tmp_path / "sbs.csv"
    spec = tmp_path / "tiny.toml"
    argv = ["run", "--spec", str(spec), "--model-path", str(models), "--model", "good:build", "--side-by-side"]
    assert main([*argv, "--bidirectional", "false", "--out", str(out2)]) == 0
    rows = pd.read_csv(out2)
    assert rows.loc[rows["status"] == "ok", "note"].str.contains("side by side").all()


@pytest.mark.slow
def test_the_report_names_the_user_model(tmp_path, models):
    code, out = run(tmp_path, models, "--model", "good:build,lstm", "--bidirectional", "false")
    assert code == 0
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    assert "good:build" in (tmp_path / "report" / "report.md").read_text()


def test_output_of_takes_a_tensor_or_a_tuples_first_element():
    t = torch.zeros(2)
    assert output_of(t) is t and output_of((t, 1)) is t and output_of([t]) is t
    with pytest.raises(TypeError, match="a tuple whose first element is a tuple"):
        output_of(((t, t), t))  # the lecture's packed mode: (pad_packed_sequence's tuple, state)


@pytest.mark.parametrize("model", ["lstm", "gru"])
@pytest.mark.parametrize(("layers", "dirs"), [(1, 1), (2, 2)])
@pytest.mark.parametrize("impl", ["module", "cells"])
def test_flop_counter_agrees_with_the_suites_formulas(model, layers, dirs, impl):
    """With native kernels (how user models are counted) and no padding, the counter's
    matrix products are exactly the formulas' count; fused oneDNN kernels count nothing."""
    net = MODEL_CLASSES[model](50, 12, 16, layers, dirs, varlen="padded", impl=impl)
    tokens, lengths = synthetic_batch(4, 6, 50, "full")
    expected = forward_flops(model, int(lengths.sum()), 12, 16, layers, dirs) / 1e9
    with kernel_settings("cpu", "native", tf32=False):
        assert counted_gflop(lambda: net(tokens, lengths)) == pytest.approx(expected)
        trained = counted_gflop(lambda: net(tokens, lengths)[0].sum().backward())
    # Backward is counted at most twice the forward; the counter finds 0.968-0.977 of 3x the forward
    # for these shapes (some gradients are never formed), within 5% of the formula the suite uses.
    formula = training_flops(expected * 1e9) / 1e9
    assert 0.95 * formula <= trained <= formula


def test_user_models_shard_like_the_suites(tmp_path, models, capsys):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY_SPEC)
    argv = ["run", "--spec", str(spec), "--model-path", str(models), "--model", "good:build,lstm", "--list"]
    ids = []
    for k in (1, 2):
        assert main([*argv, "--shard", f"{k}/2"]) == 0
        ids += capsys.readouterr().out.split()
    assert main(argv) == 0
    assert sorted(ids) == sorted(capsys.readouterr().out.split())
    assert any(i.startswith("good@build-") for i in ids)
