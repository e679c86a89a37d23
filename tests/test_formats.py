"""Every file and message carries a version, and the previous versions still read."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from factories import make_case, write_run

from bench.core.errors import UsageError
from bench.execution import messages
from bench.records.files import run_paths
from bench.records.merge import merge_parts
from bench.records.outcomes import Counted, Failed, WorkFacts
from bench.records.reading import UPGRADES, read_results
from bench.records.rows import PLACEMENT_COLUMNS, READABLE_VERSIONS, SCHEMA_VERSION, STREAM_COLUMNS
from bench.records.runinfo import RUN_FORMAT_VERSION, RunInfo, read_run_info

# The columns each schema version added (bench.records.rows has the history).
ADDED_IN = {
    2: [
        "metric",
        "instructions",
        "fwd_instructions",
        "bwd_instructions",
        "instructions_spread",
        "cpu_capability",
        "python_version",
    ],
    3: ["rounds", "within_round_rel_ci", "between_round_rel_sd"],
    4: ["cpu_count", "mem_gib"],
    5: ["peak_engine", *PLACEMENT_COLUMNS],
    6: ["chunk", *STREAM_COLUMNS],
}


@pytest.fixture
def current(tmp_path):
    rng = np.random.default_rng(0)
    cases = {make_case(batch_size=b): 1 + rng.lognormal(0, 0.02, 12) for b in (1, 2)}
    cases[make_case(batch_size=3)] = "oom"
    return write_run(tmp_path / "now.csv", cases, cpu_count="2", mem_gib="24")


def test_every_version_but_the_first_has_an_upgrade_step_and_its_columns_listed():
    assert set(READABLE_VERSIONS) == set(range(1, SCHEMA_VERSION + 1))
    assert sorted(UPGRADES) == list(range(1, SCHEMA_VERSION))  # v -> v + 1 for every older v
    assert sorted(ADDED_IN) == list(range(2, SCHEMA_VERSION + 1))  # this test knows every version


@pytest.mark.parametrize("version", [v for v in READABLE_VERSIONS if v < SCHEMA_VERSION])
def test_a_file_of_each_older_version_reads_upgraded(current, tmp_path, version):
    later = [c for v, cols in ADDED_IN.items() if v > version for c in cols]
    df = pd.read_csv(current, dtype=str, keep_default_na=False)
    old = tmp_path / f"v{version}.csv"
    df.drop(columns=later).assign(schema_version=str(version)).to_csv(old, index=False)
    got, now = read_results(old), read_results(current)
    assert (got["schema_version"] == SCHEMA_VERSION).all()
    assert list(got.columns) == list(now.columns)
    assert (got["metric"] == "time").all()  # every older row timed its steps
    ok = got["status"] == "ok"
    # Rounds came with version 3: an older time row was one process.
    expected_rounds = 1 if version < 3 else now.loc[ok, "rounds"].iloc[0]
    assert (got.loc[ok, "rounds"] == expected_rounds).all() and got.loc[~ok, "rounds"].isna().all()
    if version < 4:  # not recorded before version 4
        assert (got["cpu_count"] == "").all() and (got["mem_gib"] == "").all()
    assert (got["bound"] == "").all() and got["roof_fraction"].isna().all()  # no roofline before version 5
    assert np.allclose(got["median_ms"].fillna(0), now["median_ms"].fillna(0))
    if version < 6:  # streaming came with version 6: every older row is a whole-batch step
        assert (got["chunk"] == 1).all() and got["p99_ms"].isna().all() and got["stream_overhead"].isna().all()


def test_a_newer_schema_version_is_one_line_naming_the_versions_read(current, tmp_path):
    df = pd.read_csv(current, dtype=str, keep_default_na=False)
    newer = tmp_path / "newer.csv"
    df.assign(schema_version=str(SCHEMA_VERSION + 1)).to_csv(newer, index=False)
    with pytest.raises(UsageError, match=f"schema_version '{SCHEMA_VERSION + 1}' is not supported"):
        read_results(newer)


def test_columns_a_tool_cut_from_a_current_file_are_filled_as_an_older_files(current, tmp_path):
    df = pd.read_csv(current, dtype=str, keep_default_na=False)
    cut = tmp_path / "cut.csv"
    df.drop(columns=["impl", "tf32", "varlen", "metric", "rounds"]).to_csv(cut, index=False)
    got, now = read_results(cut), read_results(current)
    assert list(got["varlen"]) == list(now["varlen"]) and set(got["impl"]) == {"module"}
    assert set(got["tf32"]) == {"off"} and set(got["metric"]) == {"time"}
    assert (got.loc[got["status"] == "ok", "rounds"] == 1).all()


def test_an_empty_file_of_the_first_version_reads_empty(current, tmp_path):
    df = pd.read_csv(current, dtype=str, keep_default_na=False)
    later = [c for cols in ADDED_IN.values() for c in cols] + ["varlen", "impl", "tf32"]
    empty = tmp_path / "empty.csv"
    df.drop(columns=later).head(0).to_csv(empty, index=False)
    got = read_results(empty, allow_empty=True)
    assert got.empty and list(got.columns) == list(read_results(current).columns)
    with pytest.raises(UsageError, match="no rows"):
        read_results(empty)


# --- the run JSON ------------------------------------------------------------------------------


def test_a_run_json_is_versioned_and_reads_back(tmp_path):
    path = tmp_path / "run.json"
    RunInfo(run_id="r1", metric="time", cases=["a"], sweep_cases=["a", "b"], rounds=3).write(path)
    raw = json.loads(path.read_text())
    assert raw["format_version"] == RUN_FORMAT_VERSION
    info = read_run_info(path)
    assert (info.run_id, info.cases, info.sweep_cases, info.rounds) == ("r1", ["a"], ["a", "b"], 3)


def test_unversioned_run_jsons_of_both_old_shapes_still_read(tmp_path):
    sweep = tmp_path / "sweep.json"
    sweep.write_text(
        json.dumps(
            {
                "run_id": "old",
                "schema_version": 3,
                "cases": ["a"],
                "sweep_cases": ["a"],
                "environment": {"cpu_count": 2},
                "metric": "time",
                "rounds": 3,
                "peak_gflop_per_s": {"cpu/float32/t2/tf32off": 100.0},
            }
        )
    )
    info = read_run_info(sweep)
    assert info.run_id == "old" and info.environment == {"cpu_count": 2} and info.rounds == 3
    merged = tmp_path / "merged.json"
    merged.write_text(
        json.dumps({"merged_from": [{"file": "p1.csv"}], "missing_cases": ["b"], "sweep_cases": ["a", "b"], "rows": 1})
    )
    info = read_run_info(merged)
    assert info.merged_from == [{"file": "p1.csv"}] and info.missing_cases == ["b"] and info.rows == 1
    assert read_run_info(tmp_path / "absent.json") == RunInfo()


def test_a_newer_run_json_is_refused_in_one_line(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"format_version": RUN_FORMAT_VERSION + 1}))
    with pytest.raises(UsageError, match="format_version"):
        read_run_info(path)


def test_merge_writes_the_same_versioned_shape_as_a_run(tmp_path):
    a = write_run(tmp_path / "a.csv", {make_case(batch_size=1): np.full(8, 1.0)})
    b = write_run(tmp_path / "b.csv", {make_case(batch_size=2): np.full(8, 2.0)})
    for part, cases in ((a, ["1"]), (b, ["2"])):
        RunInfo(run_id=part.stem, sweep_cases=["x", "y"], environment={"cpu_count": 2}, cases=cases).write(
            run_paths(part)[1]
        )
    out = tmp_path / "merged.csv"
    rows, missing = merge_parts([a, b], out, allow_missing=True)
    raw = json.loads(run_paths(out)[1].read_text())
    assert raw["format_version"] == RUN_FORMAT_VERSION and set(raw) == {"format_version", *RunInfo.__dataclass_fields__}
    info = read_run_info(run_paths(out)[1])
    assert info.rows == rows == 2 and info.missing_cases == missing == ["x", "y"]
    assert [p["run_id"] for p in info.merged_from] == ["a", "b"] and info.environment == {"cpu_count": 2}
    assert info.status_counts == {"ok": 2}


# --- messages between processes ----------------------------------------------------------------


def test_every_message_carries_the_version():
    case = make_case()
    facts = WorkFacts(10, 0.25, 0.5)
    ready = messages.Ready(facts, {"max_abs_err": 0.0}, 100.0, "onednn=on", {"host": "h"}, "")
    built = [
        messages.case_request(case),
        messages.block_request(0.1),
        messages.ready_reply(ready),
        messages.phases_reply({"fwd": [1.0]}),
        messages.failed_reply(Failed("oom", "out of memory")),
        messages.unknown_reply({"what": 1}),
        messages.count_job(messages.CountJob([case], 3, 1, ["/x"])),
        messages.counted_record(case.case_id, Counted({"fwd": [5, 6]}, facts, "onednn=on")),
        messages.failed_record(case.case_id, Failed("error", "boom")),
        messages.fatal_record("no valgrind support"),
        messages.isolate_reply(None),
    ]
    for message in built:
        assert messages.version_of(message) == messages.MESSAGE_VERSION, message
        assert messages.from_line(messages.to_line(message)) == message or "result" in message


def test_worker_messages_round_trip():
    case = make_case(batch_size=3)
    assert messages.parse_request(messages.case_request(case)) == messages.CaseRequest(case.wire_axes())
    assert messages.parse_request(messages.block_request(0.25)) == messages.BlockRequest(0.25)
    assert messages.parse_request(messages.stamp({"what": 1})) is None
    ready = messages.Ready(
        WorkFacts(10, 0.25, None),
        {"max_abs_err": 0.0, "state_max_abs_err": None, "compile_s": None},
        50.0,
        "s",
        {"host": "h"},
        "",
    )
    assert messages.parse_ready(messages.ready_reply(ready)) == ready
    assert messages.parse_phases(messages.phases_reply({"fwd": [1.5, 2.5]})) == {"fwd": [1.5, 2.5]}
    assert messages.parse_ready(messages.failed_reply(Failed("unsupported", "no"))) == Failed("unsupported", "no")


def test_an_older_trees_unversioned_worker_replies_still_read():
    # What a worker wrote before messages had versions, error columns, kernel settings or status.
    old_ready = {"ready": True, "valid_tokens": 12, "padding_fraction": 0.0, "gflop": 0.1}
    old_ready |= {"peak_gflop_per_s": 80.0, "provenance": {"host": "h"}, "gpu_name": ""}
    ready = messages.parse_ready(old_ready)
    assert isinstance(ready, messages.Ready) and ready.kernel_settings == ""
    assert ready.extra == {"max_abs_err": None, "state_max_abs_err": None, "compile_s": None}
    assert ready.facts == WorkFacts(12, 0.0, 0.1)
    assert messages.parse_ready({"error": "CUDA out of memory", "oom": True}) == Failed("oom", "CUDA out of memory")
    assert messages.parse_phases({"error": "boom"}) == Failed("error", "boom")
    assert messages.parse_phases({"phases": {"fwd": [1, 2]}}) == {"fwd": [1.0, 2.0]}


def test_counter_records_round_trip_and_fatal_is_told_apart():
    facts = WorkFacts(10, 0.0, 0.5)
    counted = Counted({"fwd": [5, 6], "bwd": [7, 8]}, facts, "onednn=on")
    case_id, outcome = messages.parse_count_record(messages.counted_record("c1", counted))
    assert case_id == "c1" and outcome == counted
    assert messages.parse_count_record(messages.failed_record("c2", Failed("oom", "x"))) == ("c2", Failed("oom", "x"))
    assert messages.parse_count_record(messages.fatal_record("no support")) == messages.Fatal("no support")
    old = {
        "case_id": "c3",
        "status": "ok",
        "counts": {"fwd": [1]},
        "facts": {"valid_tokens": 1, "padding_fraction": 0.0, "gflop": None},
    }
    assert messages.parse_count_record(old) == ("c3", Counted({"fwd": [1]}, WorkFacts(1, 0.0, None), ""))
    job = messages.CountJob([make_case()], 3, 1, ["/repo"])
    assert messages.parse_count_job(messages.from_line(messages.to_line(messages.count_job(job)))) == job


def test_an_isolate_reply_carries_its_result_and_an_unversioned_one_is_the_result():
    failed = Failed("error", "crashed")
    sent = pickle.loads(pickle.dumps(messages.isolate_reply(failed)))
    assert messages.version_of(sent) == messages.MESSAGE_VERSION
    assert messages.parse_isolate_reply(sent) == failed
    assert messages.parse_isolate_reply(failed) == failed  # before versions: the object itself
    assert messages.parse_isolate_reply({"result": 1}) == {"result": 1}  # a plain dict result, unversioned


def test_round_worker_messages_carry_the_version_and_old_tuples_still_read():
    from bench.core.timer import TimerConfig

    cases, config, peaks = [make_case()], TimerConfig(), {make_case(): 10.0}
    request = pickle.loads(pickle.dumps(messages.round_request(cases, config, peaks)))
    assert messages.version_of(request) == messages.MESSAGE_VERSION
    assert messages.parse_round_request(request) == (cases, config, peaks)
    assert messages.parse_round_request((cases, config, peaks)) == (cases, config, peaks)  # before versions
    outcomes = [(make_case(), Failed("oom", "x"))]
    reply = messages.round_reply(outcomes)
    assert messages.version_of(reply) == messages.MESSAGE_VERSION
    assert messages.parse_round_reply(reply) == outcomes == messages.parse_round_reply(outcomes)


def test_the_rounds_ledger_is_versioned_reads_unversioned_lines_and_refuses_newer(tmp_path):
    from bench.execution.rounds import LEDGER_VERSION, Ledger

    ledger = Ledger(tmp_path / "run.rounds.jsonl")
    ledger.append(0, [(make_case(), Failed("oom", "x"))], 1.5)
    (entry,) = ledger.read()
    assert entry["v"] == LEDGER_VERSION and entry["round"] == 0
    with ledger.path.open("a") as f:  # a line from before versions: the same fields, no "v"
        f.write(json.dumps({"round": 1, "wall_s": 1.0, "outcomes": {}}) + "\n")
    assert [e["round"] for e in ledger.read()] == [0, 1]
    with ledger.path.open("a") as f:
        f.write(json.dumps({"v": LEDGER_VERSION + 1, "round": 2, "wall_s": 1.0, "outcomes": {}}) + "\n")
    with pytest.raises(UsageError, match="newer rnnbench"):
        ledger.read()


def test_a_gzipped_samples_file_reads_as_the_plain_one(current):
    import gzip
    import shutil

    from bench.records.files import run_paths
    from bench.records.reading import read_samples

    plain = read_samples(current)
    path = run_paths(current)[0]
    with path.open("rb") as src, gzip.open(path.with_name(path.name + ".gz"), "wb") as dst:
        shutil.copyfileobj(src, dst)
    path.unlink()
    assert read_samples(current).equals(plain)
