"""Streaming inference (--mode stream): chunking with the state carried, against a whole-sequence
forward, for every implementation and a user's model; percentiles and their CIs; rows, notes,
report and compare on a percentile."""

from __future__ import annotations

import dataclasses
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from factories import PROVENANCE, make_case, measured, synthetic_run, write_run

from bench.analysis.compare import CompareConfig, compare_runs
from bench.cli import main
from bench.core.cases import Case
from bench.core.errors import UsageError
from bench.core.spec import expand, load_spec, with_overrides
from bench.core.stats import PERCENTILES, min_calls, quantile_interval, summarize_percentile
from bench.measure.correctness import extra_columns, stream_errors
from bench.measure.usermodels import Unsupported, add_model_paths
from bench.measure.workload import build
from bench.records.outcomes import WorkFacts
from bench.records.reading import read_results
from bench.records.rows import make_row
from bench.report import build_report

TOL = 1e-5


def stream_case(**axes) -> Case:
    return make_case(**({"mode": "stream", "seq_len": 8, "batch_size": 3, "hidden_size": 8, "chunk": 2} | axes))


def opened(case: Case):
    work = build(case)
    with work.context():  # opens the stream and makes the cold call
        pass
    return work


IMPL_CHUNKS = [(impl, chunk) for impl in ("module", "cells", "onnxruntime") for chunk in (1, 4)] + [("compiled", 1)]


@pytest.mark.parametrize("model", ["lstm", "gru"])
@pytest.mark.parametrize(("impl", "chunk"), IMPL_CHUNKS)
def test_streamed_chunks_equal_one_whole_sequence_forward(model, impl, chunk):
    case = stream_case(model=model, impl=impl, chunk=chunk, num_layers=2)
    work = opened(case)
    with work.context():
        out_err, state_err = stream_errors(work)
    assert out_err is not None and out_err < TOL
    assert state_err is not None and state_err < TOL
    work.close()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_a_cuda_graph_stream_replays_chunks_equal_to_one_whole_forward(model):
    work = opened(stream_case(model=model, impl="cudagraph", device="cuda", chunk=2))
    with work.context():
        out_err, state_err = stream_errors(work)
    assert out_err < 1e-4 and state_err < 1e-4  # cuDNN's sums in another order


def test_a_stream_that_dropped_its_state_between_calls_would_be_caught():
    work = opened(stream_case(chunk=2))
    stream = work.step.stream
    step = stream.step
    stream.step = lambda tokens, state: step(tokens, None)  # forgets the state every call
    with work.context():
        out_err, state_err = stream_errors(work)
    assert out_err > 1e-3 and state_err > 1e-3


def test_the_int8_stream_follows_its_own_whole_forward_and_records_its_cost():
    case = stream_case(impl="quantized", chunk=2)
    work = opened(case)
    with work.context():
        out, state = work.step.stream.whole_sequence()
        whole_out, whole_state = work.step.runner(work.tokens, work.lengths)
        extra = extra_columns(work)
    # Dynamic quantization scales each call's activations by their own range: chunks of a stream
    # are quantized apart from each other, so they match the int8 whole forward closely, not exactly.
    assert (out - whole_out).abs().max() < 2e-2
    assert all((a - b).abs().max() < 2e-2 for a, b in zip(state, whole_state, strict=True))
    assert extra["max_abs_err"] > TOL  # against the float model: int8's accuracy cost


def test_calls_walk_the_chunks_and_start_the_next_sequence_from_the_initial_state():
    work = opened(stream_case(chunk=2))  # 4 calls per sequence; the cold call made one
    stream = work.step.stream
    assert len(stream.chunks) == 4 and stream.position == 1
    with work.context():
        for _ in range(3):
            stream.call()
        assert stream.position == 4
        stream.call()  # the next sequence
        assert stream.position == 1
        expected = work.model.stream_step(stream.chunks[0], None)[1]
    assert all(torch.equal(a, b) for a, b in zip(stream.state, expected, strict=True))


def test_the_extra_columns_give_the_cold_call_and_the_whole_forward():
    work = opened(stream_case())
    with work.context():
        extra = extra_columns(work)
    assert extra["cold_call_ms"] > 0 and extra["whole_forward_ms"] > 0
    assert work.valid_tokens == 3 * 2 and work.padding_fraction == 0.0
    assert [name for name, _ in work.phases] == ["call"]


def test_a_bidirectional_model_cannot_stream():
    with pytest.raises(Unsupported, match="bidirectional"):
        build(stream_case(bidirectional=True))


USER = """
import torch
from torch import nn

class Streamer(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = nn.GRU(embedding_dim, hidden_size, batch_first=True)

    def forward(self, tokens, lengths):
        return self.rnn(self.embedding(tokens))  # batch-first outputs, h

    def stream_step(self, tokens, state):
        return self.rnn(self.embedding(tokens), state)

class Whole(Streamer):
    stream_step = None

class Counting(Streamer):
    def stream_step(self, tokens, state):
        h, calls = state if state is not None else (None, 0)
        out, h = self.rnn(self.embedding(tokens), h)
        return out, (h, calls + 1)  # an int in the state: fine eagerly, not for a graph or ONNX

def streamer(vocab_size, embedding_dim, hidden_size):
    return Streamer(vocab_size, embedding_dim, hidden_size)

def whole(vocab_size, embedding_dim, hidden_size):
    return Whole(vocab_size, embedding_dim, hidden_size)

def counting(vocab_size, embedding_dim, hidden_size):
    return Counting(vocab_size, embedding_dim, hidden_size)
"""


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    folder = tmp_path / "streams"
    folder.mkdir()
    (folder / "streaming_models.py").write_text(textwrap.dedent(USER))
    monkeypatch.syspath_prepend(str(folder))
    add_model_paths([str(folder)])
    return folder


@pytest.mark.parametrize("impl", ["module", "onnxruntime"])
@pytest.mark.parametrize(("batch", "chunk"), [(3, 4), (2, 2)])  # 2 streams x 2 tokens: layouts look alike
def test_a_user_model_with_stream_step_streams_and_is_checked(user_models, impl, batch, chunk):
    work = opened(stream_case(model="streaming_models:streamer", impl=impl, batch_size=batch, chunk=chunk))
    with work.context():
        out_err, state_err = stream_errors(work)
    assert out_err < TOL and state_err < TOL


def test_a_state_that_is_not_only_tensors_streams_eagerly_and_is_unsupported_by_onnx(user_models):
    work = opened(stream_case(model="streaming_models:counting"))
    with work.context():
        out_err, _ = stream_errors(work)
    assert out_err < TOL
    with pytest.raises(Unsupported, match="not only tensors"):
        opened(stream_case(model="streaming_models:counting", impl="onnxruntime"))


def test_a_user_model_without_stream_step_is_unsupported_naming_the_contract(user_models):
    with pytest.raises(Unsupported, match=r"stream_step\(tokens, state\)"):
        build(stream_case(model="streaming_models:whole"))


# --- the axis, the spec and the checks ------------------------------------------------------------


def test_a_stream_case_is_fed_whole_sequences_and_other_modes_have_no_chunk():
    spec = with_overrides(load_spec(), {"mode": "stream,inference", "chunk": "1,8", "varlen": "packed,exact"})
    cases = expand(spec, cuda_available=False, default_threads=1)
    streams = [c for c in cases if c.streaming]
    assert {(c.varlen, c.lengths) for c in streams} == {("padded", "full")}
    assert {c.chunk for c in streams} == {1, 8}
    assert {c.chunk for c in cases if not c.streaming} == {1}
    assert len(cases) == len({c.case_id for c in cases})
    for c in cases:
        assert Case.from_id(c.case_id) == c


def test_a_chunk_in_an_id_of_another_mode_is_refused():
    with pytest.raises(UsageError, match="is not a case_id"):
        Case.from_id(make_case().case_id + "-chunk8")


def test_a_chunk_that_does_not_divide_the_length_is_one_line_and_exit_2(tmp_path, capsys):
    out = tmp_path / "r.csv"
    args = ["run", "--mode", "stream", "--chunk", "3", "--seq-len", "8", "--device", "cpu", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--chunk 3 does not divide --seq-len 8" in err and "Traceback" not in err
    assert not out.exists()


# --- percentiles ----------------------------------------------------------------------------------


def test_min_calls_is_where_the_upper_order_statistic_first_exists():
    for q in PERCENTILES.values():
        n = min_calls(q)
        assert 1 - q**n >= 0.975 > 1 - q ** (n - 1)
        x = np.arange(n, dtype=float)
        assert quantile_interval(x, q) is not None and quantile_interval(x[:-1], q) is None


@pytest.mark.parametrize("name", ["p50", "p90", "p99"])
def test_order_statistic_cis_cover_a_known_distributions_percentile(name):
    q = PERCENTILES[name]
    truth = -np.log(1 - q)  # the exponential distribution's quantile
    rng = np.random.default_rng(1)
    trials = 400
    covered = sum(
        low <= truth <= high
        for _, low, high in (quantile_interval(rng.exponential(size=800), q) for _ in range(trials))
    )
    assert covered / trials >= 0.93  # 95% nominal; the binomial bound is conservative


def test_rounds_that_disagree_widen_a_percentiles_interval():
    rng = np.random.default_rng(2)
    calls = np.concatenate([rng.exponential(size=1000), 2 * rng.exponential(size=1000)])
    rounds = np.repeat([0, 1], 1000)
    pooled = summarize_percentile(calls, None, "p90")
    widened = summarize_percentile(calls, rounds, "p90")
    assert widened.widened_by_rounds
    assert widened.ci_low_ms < pooled.ci_low_ms and widened.ci_high_ms > pooled.ci_high_ms


def test_rounds_too_short_for_the_percentile_widen_it_by_a_lower_percentiles_rounds():
    rng = np.random.default_rng(5)
    calls = np.concatenate([rng.exponential(size=200), 1.5 * rng.exponential(size=200)])
    rounds = np.repeat([0, 1], 200)  # 200 calls a round: too few for p99 (368), enough for p90 (36)
    pooled = summarize_percentile(calls, None, "p99")
    widened = summarize_percentile(calls, rounds, "p99")
    assert widened.value_ms == pooled.value_ms and widened.widened_by_rounds
    assert widened.ci_low_ms < pooled.ci_low_ms and widened.ci_high_ms > pooled.ci_high_ms
    same = summarize_percentile(np.tile(calls[:200], 2), rounds, "p99")  # rounds that agree: no widening
    assert not same.widened_by_rounds


def test_a_stream_row_gives_percentiles_and_says_which_had_too_few_calls():
    case = stream_case()
    rng = np.random.default_rng(3)
    outcome = measured(rng.lognormal(0, 0.3, 500))
    facts = WorkFacts(valid_tokens=6, padding_fraction=0.0, gflop=0.001)  # 3 streams x chunk 2
    outcome = dataclasses.replace(outcome, facts=facts, extra={"whole_forward_ms": 1.0, "cold_call_ms": 5.0})
    row = make_row(case, outcome, PROVENANCE, "run")
    assert row.p50_ms is not None and row.p90_ms is not None and row.p99_ms is not None
    assert row.p99_ci_low_ms <= row.p99_ms <= row.p99_ci_high_ms
    assert row.p99_9_ms is None and row.p99_9_ci_high_ms is None
    assert "p99.9 (500 calls < 3688)" in row.note
    assert row.stream_sequence_ms == pytest.approx(np.mean(outcome.measurement.total_ms) * 4)
    assert row.stream_overhead == pytest.approx(row.stream_sequence_ms / 1.0)
    assert row.tokens_per_s == pytest.approx(6 / (np.mean(outcome.measurement.total_ms) / 1e3))


# --- report and compare ---------------------------------------------------------------------------


def tail_run(path, scale_tail: float, seed: int):
    """Stream cases in 3 rounds of 1,000 calls; ``scale_tail`` stretches the slowest 3% of calls."""
    rng = np.random.default_rng(seed)
    outcomes = {}
    for impl in ("module", "onnxruntime"):
        calls = rng.lognormal(np.log(0.1), 0.05, (3, 1000))
        slow = calls > np.quantile(calls, 0.97)
        calls[slow] *= scale_tail
        outcomes[stream_case(impl=impl, hidden_size=16)] = calls * (1 if impl == "module" else 0.5)
    write_run(path, outcomes)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df["max_abs_err"] = "1e-07"
    df["state_max_abs_err"] = "1e-07"
    df.to_csv(path, index=False)
    return path


def test_compare_judges_stream_cases_on_the_chosen_percentile(tmp_path):
    base = tail_run(tmp_path / "base.csv", 1.0, 0)
    tailed = tail_run(tmp_path / "tail.csv", 3.0, 1)  # same median, a 3x slower tail
    found, _ = compare_runs(base, tailed, CompareConfig())
    assert (found["verdict"] == "regression").all() and (found["statistic"] == "p99").all()
    assert found["why"].str.startswith("p99 over rounds").all()
    at_median, _ = compare_runs(base, tailed, CompareConfig(percentile="p50"))
    assert (at_median["verdict"] == "unchanged").all()


def test_too_few_calls_for_the_percentile_fall_back_to_the_median_and_say_so(tmp_path):
    rng = np.random.default_rng(4)
    a = write_run(tmp_path / "a.csv", {stream_case(): rng.lognormal(0, 0.05, (3, 20))})
    b = write_run(tmp_path / "b.csv", {stream_case(): rng.lognormal(0, 0.05, (3, 20))})
    found, _ = compare_runs(a, b, CompareConfig())
    assert found["why"].iloc[0].startswith("median (too few calls for p99: 60 calls < 368)")
    assert found["statistic"].iloc[0] == "median"


def findings_lines(md) -> list[str]:
    text = md.read_text()
    table = text[text.index("## Key findings") : text.index("## Environment")]
    return [line for line in table.splitlines() if line.startswith("|")]


def test_the_report_has_the_stream_section_plot_and_finding_and_pools_nothing_with_batches(tmp_path):
    streams = tail_run(tmp_path / "s.csv", 1.0, 0)
    batch_cases = [make_case(varlen=v, batch_size=b, lengths="uniform") for v in ("padded", "packed") for b in (4, 8)]
    batches = synthetic_run(tmp_path / "b.csv", batch_cases)
    both, _ = build_report([batches, streams], tmp_path / "both")
    alone, _ = build_report([batches], tmp_path / "alone")
    text = both.read_text()
    assert "## Streaming: latency per call and its tail" in text
    assert (tmp_path / "both" / "stream_percentiles.png").is_file()
    assert "streaming tail (lstm, cpu" in text and "fastest at p99 of 2 implementations: onnxruntime" in text
    # The batch rows' findings, the run's precision among them, are the same with the stream rows beside them.
    assert [line for line in findings_lines(both) if "streaming tail" not in line] == findings_lines(alone)


def test_the_headline_shape_compares_implementations_at_one_thread_count_only(tmp_path):
    rng = np.random.default_rng(6)
    p99 = {("module", 2): 0.1, ("onnxruntime", 2): 0.3, ("module", 1): 0.2, ("onnxruntime", 1): 0.05}
    outcomes = {
        stream_case(impl=impl, threads=t): ms * rng.lognormal(0, 0.01, (3, 500)) for (impl, t), ms in p99.items()
    }
    outcomes[stream_case(impl="cells", threads=2)] = 0.5 * rng.lognormal(0, 0.01, (3, 500))  # threads=2 most common
    run = write_run(tmp_path / "t.csv", outcomes)
    df = pd.read_csv(run, dtype=str, keep_default_na=False).assign(max_abs_err="1e-07", state_max_abs_err="1e-07")
    df.to_csv(run, index=False)
    text = build_report([run], tmp_path / "rep")[0].read_text()
    line = next(line for line in text.splitlines() if "streaming tail (lstm" in line)
    assert "cpu, 2 threads" in line and "fastest at p99 of 3 implementations: module" in line


def test_rounds_too_short_for_p99_are_judged_on_p90_and_say_so(tmp_path):
    rng = np.random.default_rng(7)
    a = write_run(tmp_path / "a.csv", {stream_case(): rng.lognormal(0, 0.05, (3, 200))})
    b = write_run(tmp_path / "b.csv", {stream_case(): rng.lognormal(0, 0.05, (3, 200))})
    found, _ = compare_runs(a, b, CompareConfig())
    assert found["why"].iloc[0].startswith("p90 over rounds (too few calls a round for p99)")
    assert found["statistic"].iloc[0] == "p90" and found["verdict"].iloc[0] == "unchanged"


def test_instruction_counts_refuse_streams(tmp_path, capsys):
    args = ["run", "--metric", "instructions", "--mode", "stream", "--threads", "1", "--out", str(tmp_path / "c.csv")]
    if main(args) == 2 and "valgrind" in capsys.readouterr().err:
        pytest.skip("no valgrind here")  # refused before the mode is read
    assert main(args) == 2
    assert "--mode stream is timed, not counted" in capsys.readouterr().err


def test_older_results_read_as_whole_batch_rows(tmp_path):
    path = write_run(tmp_path / "old.csv", {make_case(): np.full(8, 1.0)})
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df = df.drop(columns=["chunk", "p99_ms", "stream_overhead"]).assign(schema_version="5")
    df.to_csv(path, index=False)
    got = read_results(path)
    assert got["chunk"].tolist() == [1] and got["p99_ms"].isna().all() and (got["mode"] == "inference").all()


@pytest.mark.slow
def test_the_stream_preset_runs_right_and_reports_its_tail(tmp_path):
    out = tmp_path / "stream.csv"
    narrowed = ["--model", "gru", "--hidden-size", "64", "--batch-size", "1", "--chunk", "1,8"]
    args = ["run", "--preset", "stream", *narrowed, "--impl", "module,onnxruntime", "--budget-s", "0.15"]
    assert main([*args, "--out", str(out)]) == 0
    rows = read_results(out)
    assert len(rows) == 4 and (rows["status"] == "ok").all() and (rows["mode"] == "stream").all()
    assert (rows["max_abs_err"] < 1e-4).all() and (rows["state_max_abs_err"] < 1e-4).all()
    assert rows["p50_ms"].notna().all() and (rows["rounds"] == 3).all()
    md, _ = build_report([out], tmp_path / "rep")
    text = md.read_text()
    assert "stream_percentiles.png" in text and "streaming tail (gru, cpu" in text
