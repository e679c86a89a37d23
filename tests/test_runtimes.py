"""Runtimes besides eager PyTorch (bench.measure.runtimes): which cases each runs, that what it
runs is right, the refusals, the ONNX export and its cache, and the side-by-side settling."""

from __future__ import annotations

import dataclasses
import re
import textwrap

import pandas as pd
import pytest
import torch
from factories import make_case

from bench.cli import main
from bench.core.errors import UsageError
from bench.core.timer import TimerConfig
from bench.measure import onnxexport, runtimes, variants
from bench.measure.checks import check_cases
from bench.measure.correctness import errors, extra_columns
from bench.measure.usermodels import Unsupported
from bench.measure.variants import mixes_thread_pools
from bench.measure.workload import build

ort = pytest.importorskip("onnxruntime")

SHAPES = dict(batch_size=5, seq_len=12, lengths="uniform", embedding_dim=16, hidden_size=24)


# --- which cases each impl runs -------------------------------------------------------------------

# (impl, axes) -> a word of the reason, or None: the impl may run it.
MAPPING = [
    ("onnxruntime", dict(), None),
    ("onnxruntime", dict(varlen="exact"), None),
    ("onnxruntime", dict(varlen="packed"), "sequence_lens"),
    ("onnxruntime", dict(mode="training"), "inference"),
    ("onnxruntime", dict(dtype="bfloat16"), "float32"),
    ("onnxruntime", dict(backend="native"), "own"),
    ("onnxruntime", dict(device="cuda"), None),  # the CUDA provider decides when the session is built
    ("cudagraph", dict(), "CUDA device"),
    ("cudagraph", dict(device="cuda"), None),
    ("cudagraph", dict(device="cuda", varlen="exact"), "pinned host memory"),
    ("cudagraph", dict(device="cuda", varlen="packed"), None),  # capture decides (it says why it fails)
    ("cudagraph", dict(device="cuda", mode="training"), "training step"),
    ("quantized", dict(), None),
    ("quantized", dict(varlen="packed"), None),
    ("quantized", dict(varlen="exact"), "varlen=packed"),
    ("quantized", dict(device="cuda"), "CPU"),
    ("quantized", dict(mode="training"), "inference"),
    ("quantized", dict(dtype="float16"), "float32"),
    ("module", dict(device="cuda", mode="training"), None),
    ("compiled", dict(varlen="exact"), None),
]


@pytest.mark.parametrize(("impl", "axes", "word"), MAPPING)
def test_each_impl_maps_to_devices_modes_and_varlen(impl, axes, word):
    why = runtimes.why_unsupported(make_case(impl=impl, **axes))
    if word is None:
        assert why is None
    else:
        assert why is not None and word in why


def test_an_unsupported_case_is_an_unsupported_row_with_its_reason(tmp_path):
    out = tmp_path / "run.csv"
    flags = ["--model", "lstm", "--device", "cpu", "--batch-size", "2", "--seq-len", "4", "--embedding-dim", "8"]
    flags += ["--hidden-size", "8", "--budget-s", "0.02", "--rounds", "1", "--threads", "1"]
    code = main(["run", *flags, "--impl", "cudagraph,quantized", "--varlen", "exact", "--out", str(out)])
    assert code == 0  # unsupported is not a failure
    rows = pd.read_csv(out).set_index("impl")
    assert (rows["status"] == "unsupported").all()
    assert "CUDA device" in rows.loc["cudagraph", "error"]
    assert "varlen=packed" in rows.loc["quantized", "error"]


# --- refusals ---------------------------------------------------------------------------------------


def test_a_missing_onnxruntime_is_refused_in_one_line_naming_the_extra(monkeypatch):
    real = runtimes.importlib.util.find_spec
    monkeypatch.setattr(
        runtimes.importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a)
    )
    with pytest.raises(UsageError) as e:
        check_cases([make_case(impl="module"), make_case(impl="onnxruntime")])
    text = str(e.value)
    assert "\n" not in text and "onnxruntime" in text and "rnnbench[onnx]" in text
    check_cases([make_case(impl="module"), make_case(impl="quantized")])  # no onnxruntime needed


def test_the_refusal_is_exit_2_before_anything_runs(tmp_path, monkeypatch, capsys):
    real = runtimes.importlib.util.find_spec
    monkeypatch.setattr(
        runtimes.importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a)
    )
    out = tmp_path / "run.csv"
    code = main(["run", "--preset", "quick", "--impl", "module,onnxruntime", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rnnbench[onnx]" in err[0]
    assert not out.exists() or out.stat().st_size == 0


# --- ONNX Runtime: right results ------------------------------------------------------------------


@pytest.mark.parametrize("model", ["lstm", "gru"])
@pytest.mark.parametrize(("varlen", "layers", "bidirectional"), [("padded", 1, False), ("exact", 2, True)])
def test_onnxruntime_agrees_with_packed_module(model, varlen, layers, bidirectional):
    case = make_case(model=model, impl="onnxruntime", varlen=varlen, num_layers=layers,
                     bidirectional=bidirectional, **SHAPES)  # fmt: skip
    work = build(case)
    with work.context():
        out_err, state_err = errors(work)
    assert out_err < 1e-5
    if varlen == "exact":  # exact: final states at each sequence's end, as packing gives them
        assert state_err < 1e-5
    else:  # padded reads the padding: outputs right (one layer, one way), states taken after it
        assert state_err > 1e-3
    assert "provider=CPUExecutionProvider" in work.kernel_settings()
    assert "intra_op_threads=1" in work.kernel_settings()
    assert work.compile_s is not None and work.compile_s > 0


def test_one_export_serves_every_batch_size_and_comes_back_from_the_cache():
    first = build(make_case(impl="onnxruntime", **SHAPES))
    again = build(make_case(impl="onnxruntime", **(SHAPES | {"batch_size": 9})))
    with again.context():
        out_err, _ = errors(again)
    assert out_err < 1e-5  # the dynamic batch dimension ran at another size
    exported = onnxexport.export(first.model, first.case, sequence_lens=False)
    assert exported.from_cache
    assert exported.exporter in ("torchscript", "dynamo")
    onnx = pytest.importorskip("onnx")
    tokens = next(i for i in onnx.load_from_string(exported.model_bytes).graph.input if i.name == "tokens")
    assert tokens.type.tensor_type.shape.dim[0].dim_param  # the batch is dynamic, not one graph per size


def test_other_weights_are_another_export():
    case = make_case(impl="onnxruntime", **SHAPES)
    work = build(case)
    key = onnxexport.cache_key(work.model, case, None)
    with torch.no_grad():
        work.model.rnn.weight_hh_l0.add_(1.0)
    assert onnxexport.cache_key(work.model, case, None) != key
    assert onnxexport.cache_key(work.model, dataclasses.replace(case, seq_len=13), None) != key


def test_sequence_lens_needs_a_recurrent_node():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["tokens"], ["out"])],
        "g",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", 4])],
        [helper.make_tensor_value_info("out", TensorProto.INT64, ["batch", 4])],
    )
    with pytest.raises(ValueError, match="no LSTM or GRU"):
        onnxexport.add_sequence_lens(helper.make_model(graph))
    assert onnx is not None


# --- int8 dynamic quantization ---------------------------------------------------------------------


def test_quantized_really_quantizes_and_its_error_is_an_accuracy_cost():
    work = build(make_case(impl="quantized", varlen="packed", **SHAPES))
    kinds = {type(m).__module__ for m in work.step.runner.modules()}
    assert any("quantized" in k for k in kinds)  # the LSTM became an int8 module
    with work.context():
        extra = extra_columns(work)
    assert 0 < extra["max_abs_err"] < 0.1  # not exact, not broken
    assert "quantized_engine=" in work.kernel_settings()


def test_a_torch_that_leaves_the_lstm_in_float_gives_unsupported(monkeypatch):
    import torch.ao.quantization as tq

    monkeypatch.setattr(tq, "quantize_dynamic", lambda model, *a, **k: model)
    with pytest.raises(Unsupported, match=re.escape(f"torch {torch.__version__} left rnn in float")):
        build(make_case(impl="quantized", **SHAPES))


# --- users' models ---------------------------------------------------------------------------------

USER = """
import torch
from torch import nn

class Mine(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = nn.LSTM(embedding_dim, hidden_size)

    def forward(self, tokens, lengths):
        return self.rnn(self.embedding(tokens).transpose(0, 1))

def build(vocab_size, embedding_dim, hidden_size):
    return Mine(vocab_size, embedding_dim, hidden_size)

class Opaque(Mine):
    def forward(self, tokens, lengths):
        return torch.from_numpy(self.embedding(tokens).detach().numpy()), None  # not traceable to ONNX

def opaque(vocab_size, embedding_dim, hidden_size):
    return Opaque(vocab_size, embedding_dim, hidden_size)
"""


@pytest.mark.slow
def test_a_users_model_exports_or_says_why(tmp_path, monkeypatch):
    (tmp_path / "mine_rt.py").write_text(textwrap.dedent(USER))
    monkeypatch.syspath_prepend(str(tmp_path))
    work = build(make_case(model="mine_rt:build", impl="onnxruntime", **SHAPES))
    with torch.no_grad():
        expected = work.model(work.tokens, work.lengths)[0]
        got = work.step.forward()
    assert (got - expected).abs().max() < 1e-5
    quantized = build(make_case(model="mine_rt:build", impl="quantized", **SHAPES))
    assert quantized.step.runner is not None
    with pytest.raises(Unsupported, match="the exported graph's output"):
        build(make_case(model="mine_rt:opaque", impl="onnxruntime", **SHAPES))


# --- side by side ---------------------------------------------------------------------------------


def test_groups_that_mix_thread_pools_settle_each_turn(monkeypatch):
    settled = []
    monkeypatch.setattr(variants, "settle", lambda work: settled.append(work.case.impl))
    config = TimerConfig(budget_s=0.02, min_samples=3, max_samples=6, warmup_runs=1, warmup_s=0.0)
    module = build(make_case(**SHAPES))
    onnx_work = build(make_case(impl="onnxruntime", **SHAPES))
    quantized = build(make_case(impl="quantized", **SHAPES))
    assert mixes_thread_pools([module, onnx_work]) and not mixes_thread_pools([module, quantized])
    variants.measure_together([module, quantized], config)
    assert settled == []  # one pool: timed as before
    _, turns = variants.measure_together([module, onnx_work], config)
    assert sorted(set(settled)) == ["module", "onnxruntime"] and len(settled) == 2 * turns


@pytest.mark.slow
def test_the_runtimes_sweep_side_by_side_writes_rows_and_the_report_answers(tmp_path):
    out = tmp_path / "rt.csv"
    flags = ["--preset", "runtimes", "--model", "gru", "--batch-size", "4", "--seq-len", "16", "--threads", "1"]
    code = main(["run", *flags, "--side-by-side", "--budget-s", "0.03", "--out", str(out)])
    assert code == 0
    rows = pd.read_csv(out)
    ok = rows[rows["status"] == "ok"].set_index(["impl", "varlen"])
    assert set(ok.index) == {
        ("module", "padded"), ("module", "exact"), ("module", "packed"), ("compiled", "padded"),
        ("compiled", "exact"), ("onnxruntime", "padded"), ("onnxruntime", "exact"), ("quantized", "padded"),
        ("quantized", "packed"),
    }  # fmt: skip
    assert ok.loc[("onnxruntime", "exact"), "max_abs_err"] < 1e-5
    assert ok.loc[("onnxruntime", "exact"), "state_max_abs_err"] < 1e-5
    unsupported = rows[rows["status"] == "unsupported"]
    assert list(zip(unsupported["impl"], unsupported["varlen"], strict=True)) == [("quantized", "exact")]
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Fastest correct way to run it" in text
    assert "fastest correct way (gru, inference, cpu)" in text


@pytest.mark.cuda
def test_cudagraph_replays_the_forward_it_captured():
    work = build(make_case(impl="cudagraph", device="cuda", varlen="padded", **SHAPES))
    with work.context():
        work.step.forward()
        out_err, _ = errors(work)
    assert out_err < 1e-4
    assert work.compile_s is not None


def test_instruction_counts_take_the_runtimes_that_run_on_one_cpu_thread():
    from bench.core.spec import load_spec, with_overrides
    from bench.execution.runner import SweepOptions, countable_cases

    spec = with_overrides(
        load_spec("ci-instructions"), {"impl": "onnxruntime,quantized", "device": "cpu", "model": "lstm"}
    )
    cases = countable_cases(SweepOptions(spec, metric="instructions"))
    assert {c.impl for c in cases} == {"onnxruntime", "quantized"}
    compiled = with_overrides(spec, {"impl": "compiled"})
    with pytest.raises(UsageError, match="impl=compiled is not counted"):
        countable_cases(SweepOptions(compiled, metric="instructions"))
