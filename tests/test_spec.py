"""Spec loading, overrides, grid expansion and case ids."""

import dataclasses

import pytest
from factories import make_case

from bench.core.cases import AXES, Case
from bench.core.errors import UsageError
from bench.core.spec import expand, load_spec, preset_names, spec_from_toml, with_overrides


def test_presets_load_and_expand():
    assert {"quick", "default", "full", "ci"} <= set(preset_names())
    for name in preset_names():
        cases = expand(load_spec(name), cuda_available=True, default_threads=2)
        assert cases, name
        assert len({c.case_id for c in cases}) == len(cases), f"{name}: duplicate case ids"


def test_quick_preset_covers_every_mission_axis_twice():
    cases = expand(load_spec("quick"), cuda_available=False, default_threads=2)
    for axis in ("model", "batch_size", "seq_len", "num_layers", "bidirectional", "packed"):
        assert len({getattr(c, axis) for c in cases}) >= 2, axis


def test_default_preset_shape():
    cases = expand(load_spec("default"), cuda_available=False, default_threads=2)
    assert len({c.batch_size for c in cases}) >= 4
    assert len({c.seq_len for c in cases}) >= 4
    assert {c.mode for c in cases} == {"inference", "training"}
    assert {c.packed for c in cases} == {True, False}
    assert {c.bidirectional for c in cases} == {True, False}
    assert {c.model for c in cases} == {"lstm", "gru"}


def test_grid_is_the_cartesian_product():
    spec = with_overrides(load_spec(), {"batch_size": "1,2,3", "packed": "true,false", "device": "cpu"})
    cases = expand(spec, cuda_available=False, default_threads=2)
    assert len(cases) == 3 * 2 * 2  # x the default two models
    assert [c.batch_size for c in cases[:6]] == [1, 1, 2, 2, 3, 3]


def test_case_id_is_stable_and_readable():
    case = make_case(
        batch_size=32,
        seq_len=64,
        num_layers=2,
        bidirectional=True,
        varlen="packed",
        lengths="uniform:16",
        embedding_dim=256,
        hidden_size=512,
        vocab_size=100,
        threads=2,
    )
    assert case.case_id == "lstm-cpu-float32-inference-b32-l64-n2-bi-packed-uniform@16-e256-h512-v100-default-t2"
    again = Case(**case.axes())
    assert again.case_id == case.case_id and hash(again) == hash(case)
    assert Case.from_id(case.case_id) == case
    cells = dataclasses.replace(case, varlen="exact", impl="cells")
    assert cells.case_id == case.case_id.replace("-packed-", "-exact-") + "-cells"
    assert Case.from_id(cells.case_id) == cells and not cells.packed
    assert case.columns()["packed"] is True and list(case.columns()).index("packed") == 8


def test_packed_is_read_as_varlen():
    """Specs and flags from before the varlen axis keep working."""
    spec = spec_from_toml("[axes]\npacked = [false, true]\n", "old.toml")
    assert spec.axes["varlen"] == ("padded", "packed")
    spec = with_overrides(load_spec(), {"packed": "true", "varlen": None})
    assert spec.axes["varlen"] == ("packed",)
    with pytest.raises(UsageError, match="not both"):
        with_overrides(load_spec(), {"packed": "true", "varlen": "exact"})
    with pytest.raises(UsageError, match="not both"):
        spec_from_toml("[axes]\npacked = true\nvarlen = 'exact'\n", "mixed.toml")


def test_device_auto_and_threads_auto():
    cases = expand(load_spec(), cuda_available=True, default_threads=7)
    assert {c.device for c in cases} == {"cpu", "cuda"}
    assert {c.threads for c in cases} == {7}
    assert {c.device for c in expand(load_spec(), cuda_available=False, default_threads=1)} == {"cpu"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": "lstm,rnn"}, "'rnn' is not allowed"),
        ({"batch_size": "0"}, "out of range"),
        ({"batch_size": "-4"}, "out of range"),
        ({"seq_len": "2.5"}, "not an integer"),
        ({"seq_len": "99999999999"}, "out of range"),
        ({"vocab_size": "1"}, "out of range"),
        ({"bidirectional": "maybe"}, "not a boolean"),
        ({"dtype": "float64"}, "not allowed"),
        ({"device": "tpu"}, "not allowed"),
        ({"batch_size": ""}, "not an integer"),
    ],
)
def test_bad_overrides_name_flag_and_value(overrides, message):
    with pytest.raises(UsageError, match=message) as info:
        with_overrides(load_spec(), overrides)
    flag = "--" + next(iter(overrides)).replace("_", "-")
    assert flag in str(info.value)


def test_cuda_without_cuda_is_refused():
    spec = with_overrides(load_spec(), {"device": "cuda"})
    with pytest.raises(UsageError, match="cuda"):
        expand(spec, cuda_available=False, default_threads=2)


def test_lengths_longer_than_sequence_refused():
    from bench.measure.checks import check_cases

    spec = with_overrides(load_spec(), {"seq_len": "8", "lengths": "uniform:9"})
    with pytest.raises(UsageError, match="exceeds"):
        check_cases(expand(spec, cuda_available=False, default_threads=2))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[axes\n", "not valid TOML"),
        ("[axes]\nhidden = [3]\n", "unknown axis 'hidden'"),
        ("[axes]\nbatch_size = ['x']\n", "not an integer"),
        ("[axes]\nbatch_size = [true]\n", "not an integer"),
        ("[timer]\nbudget_s = 'long'\n", "not a number"),
        ("[timer]\nmin_samples = 2\n", "too few"),
        ("[timer]\nbogus = 1\n", "unknown key"),
        ("[extra]\n", "unknown table"),
        ("axes = 3\n", "must be a table"),
        ("grid = 3\n", "array of tables"),
        ("[[grid]]\nwidth = [3]\n", "unknown axis"),
    ],
)
def test_bad_spec_files(text, message):
    with pytest.raises(UsageError, match=message):
        spec_from_toml(text, "t.toml")


def test_axis_defaults_are_valid():
    for axis in AXES:
        assert axis.default, axis.name


def test_every_axis_value_survives_the_case_id():
    base = make_case()
    for axis in AXES:
        values = axis.choices or {"int": (axis.minimum, 123), "bool": (True, False)}.get(axis.kind, ("uniform:3",))
        for value in values:
            if value == "auto":
                continue  # expanded before a case exists
            where = {"device": "cuda"} if axis.name == "tf32" else {}  # TF32 exists on CUDA only
            if axis.name == "chunk":
                where = {"mode": "stream"}  # a chunk exists in streams only
            case = Case(**(base.axes() | where | {axis.name: value}))
            assert Case.from_id(case.case_id) == case


@pytest.mark.parametrize("impl", ["module", "compiled", "cells"])
@pytest.mark.parametrize("tf32", ["off", "on"])
def test_optional_id_parts_parse_in_any_combination(impl, tf32):
    case = make_case(device="cuda", impl=impl, tf32=tf32)
    assert Case.from_id(case.case_id) == case
    assert case.case_id.endswith("-t1" + ("" if impl == "module" else f"-{impl}") + ("-tf32on" if tf32 == "on" else ""))


def test_an_id_with_tf32_where_it_does_nothing_is_refused():
    with pytest.raises(UsageError, match="is not a case_id"):
        Case.from_id(make_case(device="cpu").case_id + "-tf32on")
    with pytest.raises(UsageError, match="is not a case_id"):
        Case.from_id(make_case(device="cuda").case_id + "-tf32on-cells")  # out of order


def test_tf32_on_is_kept_only_for_cuda_float32():
    spec = with_overrides(load_spec(), {"tf32": "off,on", "dtype": "float32,bfloat16", "device": "cpu,cuda"})
    cases = expand(spec, cuda_available=True, default_threads=2)
    on = {(c.device, c.dtype) for c in cases if c.tf32 == "on"}
    assert on == {("cuda", "float32")}
    assert len(cases) == len({c.case_id for c in cases}) == 2 * 2 * 2 + 2  # 8 off, 2 on (cuda float32)


def test_run_help_lists_each_axis_with_its_choices(capsys):
    from bench.cli import main

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for axis in AXES:
        assert axis.flag in text
        for choice in axis.choices:
            assert choice in text


@pytest.mark.slow
def test_python_m_bench_ci_is_the_ci_subcommand():
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run(
        [sys.executable, "-m", "bench.ci", "--help"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "--against" in done.stdout and "bench ci" in done.stdout


def test_full_preset_runs_on_the_gpu_only():
    spec = load_spec("full")
    cases = expand(spec, cuda_available=True, default_threads=2)
    assert {c.device for c in cases} == {"cuda"}
    with pytest.raises(UsageError, match="--device cpu runs the sweep on the CPU"):
        expand(spec, cuda_available=False, default_threads=2)
    assert {c.device for c in expand(with_overrides(spec, {"device": "cpu"}), False, 2)} == {"cpu"}


def test_a_lengths_file_path_survives_the_case_id(tmp_path):
    case = make_case(lengths=f"file:{tmp_path}/my-data 100%/lengths.txt")
    assert "/" not in case.case_id and Case.from_id(case.case_id) == case
