"""`bench profile` on tiny cases: py-spy files, torch.profiler tables, trace, diff."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from bench.cli import build_parser, main

PACKED = "gru-cpu-float32-training-b4-l12-n1-uni-packed-uniform-e16-h16-v50-default-t1"
PADDED = PACKED.replace("-packed-", "-padded-")


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    out = tmp_path_factory.mktemp("profiles")
    code = main(["profile", PACKED, PADDED, "--seconds", "1", "--out", str(out)])
    assert code == 0
    return out


@pytest.mark.slow
def test_torch_profile_names_rnn_and_packing_ops(profiles):
    packed = pd.read_csv(profiles / PACKED / "ops.csv")
    padded = pd.read_csv(profiles / PADDED / "ops.csv")
    assert "aten::gru" in set(packed["name"]) and "aten::gru" in set(padded["name"])
    assert {"aten::_pack_padded_sequence", "aten::_pad_packed_sequence"} <= set(packed["name"])
    assert "aten::_pack_padded_sequence" not in set(padded["name"])
    # Training: forward and backward show as labelled ranges.
    assert {"forward", "backward"} <= set(packed["name"])
    assert "aten::gru" in (profiles / PACKED / "ops.txt").read_text()
    trace = json.loads((profiles / PACKED / "trace.json").read_text())
    assert any(e.get("name") == "aten::gru" for e in trace["traceEvents"])


@pytest.mark.slow
def test_py_spy_files_are_well_formed(profiles):
    index = (profiles / PACKED / "index.md").read_text()
    if "py-spy cannot attach" in index or "py-spy is not installed" in index:
        pytest.skip(index.split("py-spy", 1)[1].splitlines()[0])
    assert ET.parse(profiles / PACKED / "flame.svg").getroot().tag.endswith("svg")
    speedscope = json.loads((profiles / PACKED / "profile.speedscope.json").read_text())
    assert speedscope["$schema"].startswith("https://www.speedscope.app") and speedscope["profiles"]
    assert "[flame.svg](flame.svg)" in index and "python -m bench profile " + PACKED in index


@pytest.mark.slow
def test_profile_diff_lists_the_packing_ops(profiles):
    diff = pd.read_csv(next((profiles / "compare").glob("*.csv")))
    assert {"aten::_pack_padded_sequence", "aten::_pad_packed_sequence"} <= set(diff["operator"])
    row = diff.set_index("operator").loc["aten::_pack_padded_sequence"]
    assert row["a_ms_per_step"] > 0 and row["b_ms_per_step"] == 0


@pytest.mark.slow
def test_report_links_an_existing_profile(profiles, tmp_path):
    from bench.report.sections_tables import profiles as profile_links

    df = pd.DataFrame({"case_id": [PACKED, "../../etc", "not-a-case"]})
    blocks = profile_links(df, profiles, tmp_path)
    links = [b for b in blocks if hasattr(b, "href")]
    assert [b.text for b in links] == [PACKED] and links[0].href.endswith(f"{PACKED}/index.md")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["profile", "lstm-cpu-nonsense"], "is not a case_id"),
        (["profile", PACKED.replace("gru", "rnn")], "'rnn' is not allowed"),
        (["profile", "--model", "lstm,gru", "--device", "cpu"], "give one value for --model"),
        (["profile"], "give one value for --model"),
        (["profile", PACKED, "--model", "lstm"], "not both"),
        (["profile", PACKED, "--seconds", "0"], "--seconds"),
    ],
)
def test_bad_cases_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(("cuda", "device"), [(True, "cuda"), (False, "cpu")])
def test_axis_flags_without_device_profile_one_case_on_the_gpu_where_there_is_one(monkeypatch, cuda, device):
    import torch

    from bench.commands import profile
    from bench.measure import checks

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(checks, "check_cases", lambda cases: None)  # no GPU here to try dtypes on
    args = build_parser().parse_args(["profile", "--model", "lstm", "--varlen", "packed"])
    [case] = profile.resolve_cases(args)
    assert case.device == device
