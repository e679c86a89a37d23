"""The roofline: the traffic model by hand, the bound of hand-made cases, roofs beaten, the plot."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from factories import ROOFS, make_case, measured, synthetic_run, write_run

from bench.core.roofline import Level, Roofs, place, traffic
from bench.measure.bandwidth import Cache, cpu_caches, probe_bytes
from bench.measure.peaks import theoretical_gflop_per_s
from bench.records.reading import read_results
from bench.records.rows import make_row
from bench.report import build_report
from bench.report.sections_roofline import bounds_text, leaves_memory_bound, placed_rows

SMALL = dict(batch_size=2, seq_len=3, embedding_dim=4, hidden_size=5, num_layers=1, bidirectional=False)


def test_traffic_of_a_tiny_lstm_by_hand():
    case = make_case(model="lstm", varlen="padded", **SMALL)
    flow = traffic(case, valid_tokens=4)
    # Values (float32, 4 bytes each). Embedding rows gathered: 6 positions × 4 = 24. Then one layer:
    # recurrent weights 3 steps × 4·5·5 = 300; input weights 4·5·4 = 80; biases 2·4·5 = 40;
    # input and output 6 × (4 + 5) = 54; gates written and read 2 × 6 × 20 = 240;
    # h and c read and written each step 2 × 3 × 2 × 5 × 2 = 120. Sum 858 values.
    assert flow.bytes_per_step == 858 * 4
    assert (flow.weight_bytes, flow.activation_bytes) == ((300 + 80 + 40) * 4, (24 + 54 + 240 + 120) * 4)
    # One step's working set: 4·5·5 weights + h and c of 2 sequences read and written (2·2·5·2) = 140 values;
    # the activation buffers: 6 positions × (4 inputs + 5 outputs + 20 gates) = 174 values.
    assert flow.working_set_bytes == 140 * 4 and flow.activation_set_bytes == 174 * 4
    training = traffic(make_case(model="lstm", varlen="padded", mode="training", **SMALL), valid_tokens=4)
    assert training.bytes_per_step == 3 * 858 * 4  # forward, input gradients, weight gradients


def test_traffic_counts_three_gates_for_a_gru_and_valid_positions_when_packed():
    gru = traffic(make_case(model="gru", varlen="padded", **SMALL), valid_tokens=4)
    # 24 + (3·3·25 + 3·5·4 + 2·3·5 + 6·9 + 2·6·15 + 2·3·2·5·1) = 24 + 609
    assert gru.bytes_per_step == 633 * 4
    packed = traffic(make_case(model="lstm", varlen="packed", **SMALL), valid_tokens=4)
    # 4 valid positions instead of 6: 16 + (300 + 80 + 40 + 4·9 + 2·4·20 + 2·4·5·2)
    assert packed.bytes_per_step == 712 * 4
    assert traffic(make_case(model="mypkg.models:make"), valid_tokens=4) is None  # a user's model


def _gflop(case) -> float:
    """Useful work of an inference step, as rnnmodels counts it: 2·G·H·(I+H) per token and layer."""
    gates = 4 if case.model == "lstm" else 3
    return 2 * gates * case.hidden_size * (case.embedding_dim + case.hidden_size) * case.batch_size * case.seq_len / 1e9


@pytest.mark.parametrize(
    ("batch", "hidden", "ms", "bound", "level"),
    [
        (1, 512, 3.0, "memory", "L3"),  # 4 MiB of weights read per step at ~0.5 FLOP/B: the L3 roof binds
        (128, 512, 200.0, "compute", "L3"),  # the same weights over 128 vectors: the compute roof binds
        (1, 8, 0.5, "overhead", "L1"),  # almost no work: 64 steps of fixed cost take longer than the roofs
    ],
)
def test_each_bound_on_hand_made_cases(batch, hidden, ms, bound, level):
    case = make_case(model="lstm", batch_size=batch, seq_len=64, embedding_dim=256, hidden_size=hidden)
    placed = place(case, batch * 64, _gflop(case), ms, ROOFS)
    assert placed.bound == bound and placed.weights_level == level
    memory_roof = placed.intensity_flop_per_byte * placed.level_gb_per_s
    assert placed.roof_gflop_per_s == pytest.approx(min(ROOFS.compute_gflop_per_s, memory_roof))
    floor_ms = ROOFS.floor_ms_per_call + ROOFS.floor_ms_per_step * 64
    roof_ms = _gflop(case) / placed.roof_gflop_per_s * 1e3
    assert placed.floor_ms == pytest.approx(floor_ms)
    assert placed.roof_fraction == pytest.approx(max(roof_ms, floor_ms) / ms)  # the binding bound over the time
    assert not placed.above


def test_without_a_floor_no_case_is_called_overhead_bound():
    case = make_case(model="lstm", batch_size=1, seq_len=64, embedding_dim=256, hidden_size=8)
    roofs = Roofs(ROOFS.compute_gflop_per_s, ROOFS.engine, ROOFS.levels, floor_ms_per_step=None)
    placed = place(case, 64, _gflop(case), 0.5, roofs)
    assert placed.bound in ("compute", "memory") and placed.floor_ms is None


def test_a_case_above_its_roof_keeps_its_number_and_says_which_roof_in_its_note():
    case = make_case(model="lstm", batch_size=128, seq_len=64, embedding_dim=256, hidden_size=512)
    fast_ms = _gflop(case) / 300.0 * 1e3  # 300 GFLOP/s: above the 200 GFLOP/s compute roof
    outcome = measured([fast_ms] * 12)
    outcome = outcome.__class__(
        outcome.measurement,
        outcome.facts.__class__(128 * 64, 0.0, _gflop(case)),
        ROOFS.compute_gflop_per_s,
        0.02,
        roofs=ROOFS,
    )
    row = make_row(case, outcome, {}, "r")
    assert row.gflop_per_s == pytest.approx(300.0, rel=0.01) and row.efficiency > 1
    assert "above its roof: beat the compute roof (oneDNN matmul)" in row.note
    assert row.roof_fraction > 1 and row.peak_engine == "oneDNN matmul"


def test_a_row_beyond_the_old_peak_without_roofs_is_still_noted():
    case = make_case()
    outcome = measured([0.001] * 12)  # 0.01 GFLOP in 1 µs: far above the 1 GFLOP/s peak given
    row = make_row(case, outcome, {}, "r")
    assert row.efficiency > 1 and "above the compute roof" in row.note and row.bound == ""


def test_leaving_the_memory_bound_region_is_read_off_the_batch_sizes():
    rows = pd.DataFrame(
        {"batch_size": [1, 1, 8, 8, 32, 32, 128], "bound": ["memory"] * 4 + ["memory", "compute", "compute"]}
    )
    assert leaves_memory_bound(rows) == "memory-bound up to batch 32, no longer from batch 128"
    assert leaves_memory_bound(rows.assign(bound="compute")) == "no batch size mostly memory-bound"
    assert leaves_memory_bound(rows.assign(bound="memory")) == "memory-bound up to batch 128, the largest run"


def _scan(device: str = "cpu") -> list:
    return [
        make_case(model=m, device=device, batch_size=b, seq_len=64, embedding_dim=256, hidden_size=512)
        for m in ("lstm", "gru")
        for b in (1, 8, 128)
    ]


def test_the_report_has_the_roofline_plot_and_the_bounds_finding(tmp_path):
    run = synthetic_run(tmp_path / "run.csv", _scan(), roofs=ROOFS)
    df = read_results(run)
    assert set(df["bound"]) <= {"compute", "memory", "overhead"} and df["traffic_mb"].notna().all()
    md, _ = build_report([run], tmp_path / "rep")
    text = md.read_text()
    finding = next(line for line in text.splitlines() if line.startswith("| what bounds the cases"))
    assert "-bound of 6 cases" in finding and "LSTM:" in finding and "GRU:" in finding
    assert (tmp_path / "rep" / "roofline_0.png").is_file()
    assert bounds_text(df.assign(machine="m")) in text


def test_the_plot_renders_for_two_devices(tmp_path):
    run = synthetic_run(tmp_path / "run.csv", _scan("cpu") + _scan("cuda"), roofs=ROOFS)
    build_report([run], tmp_path / "rep")
    assert (tmp_path / "rep" / "roofline_0.png").is_file() and (tmp_path / "rep" / "roofline_1.png").is_file()


def test_rows_without_the_roofline_columns_get_the_old_picture(tmp_path):
    run = write_run(tmp_path / "now.csv", {c: [1.0] * 8 for c in _scan()})
    df = pd.read_csv(run, dtype=str, keep_default_na=False)
    old = tmp_path / "v4.csv"
    roofline = ["peak_engine", "traffic_mb", "intensity_flop_per_byte", "attained_gb_per_s", "weights_level"]
    roofline += ["level_gb_per_s", "roof_gflop_per_s", "roof_fraction", "floor_ms", "bound"]
    df.drop(columns=roofline).assign(schema_version="4").to_csv(old, index=False)
    assert placed_rows(read_results(old).assign(machine="m")).empty
    md, _ = build_report([old], tmp_path / "rep")
    assert "no roofline columns" in md.read_text() and (tmp_path / "rep" / "efficiency.png").is_file()
    assert "| what bounds the cases" not in md.read_text()


def test_cache_levels_come_from_sysfs(tmp_path):
    for i, (level, kind, size, shared) in enumerate(
        [
            (1, "Data", "32K", "0"),
            (1, "Instruction", "32K", "0"),
            (2, "Unified", "1024K", "0"),
            (3, "Unified", "32768K", "0-1"),
        ]
    ):
        d = tmp_path / f"index{i}"
        d.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size), ("shared_cpu_list", shared)):
            (d / name).write_text(f"{value}\n")
    caches = cpu_caches(tmp_path)
    assert caches == [Cache("L1", 32 * 2**10, True), Cache("L2", 2**20, True), Cache("L3", 32 * 2**20, False)]
    assert [probe_bytes(c) for c in caches] == [16 * 2**10, 2**19, 8 * 2**20]
    assert cpu_caches(tmp_path / "absent") == []


def test_theoretical_peak_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("cpu MHz\t\t: 2600.000\nflags\t\t: fpu sse avx avx2 fma avx512f avx512_bf16\n")
    none = tmp_path / "absent"
    assert theoretical_gflop_per_s("cpu", "float32", 2, info, none) == pytest.approx(2 * 2.6 * 16 * 2 * 2)
    assert theoretical_gflop_per_s("cpu", "bfloat16", 1, info, none) == pytest.approx(2.6 * 32 * 2 * 2)
    assert theoretical_gflop_per_s("cpu", "float16", 1, info, none) is None  # no half-precision math in the flags
    assert theoretical_gflop_per_s("cuda", "float32", 1, info, none) is None
    assert theoretical_gflop_per_s("cpu", "float32", 1, none, none) is None
    top = tmp_path / "max_freq"
    top.write_text("3700000\n")  # kHz: cpufreq's highest clock wins over the idle one
    assert theoretical_gflop_per_s("cpu", "float32", 1, info, top) == pytest.approx(3.7 * 16 * 2 * 2)


def test_the_level_for_a_working_set_is_the_smallest_that_holds_it():
    assert ROOFS.level_for(1).name == "L1" and ROOFS.level_for(3 * 2**20).name == "L3"
    assert ROOFS.level_for(10 * 2**30).name == "DRAM"
    assert Roofs(1.0, "e", (Level("L2", 100, 1.0),)).level_for(200).name == "L2"  # the last holds anything
    assert math.isinf(ROOFS.levels[-1].capacity_bytes)


def test_the_plot_draws_every_level_the_run_measured_and_falls_back_to_the_rows_levels(tmp_path):
    from bench.records.files import run_paths
    from bench.records.runinfo import RunInfo
    from bench.report.load import load_many
    from bench.report.sections_roofline import measured_levels

    run = synthetic_run(tmp_path / "run.csv", _scan(), roofs=ROOFS)
    rows = placed_rows(load_many([run]))
    assert measured_levels(rows) == {"L3": 180.0}  # no run JSON: the level the weights fall in
    levels = [{"level": lv.name, "capacity_bytes": None, "gb_per_s": lv.gb_per_s} for lv in ROOFS.levels]
    RunInfo(roofs={"bandwidth": {"cpu/threads=1": levels}}).write(run_paths(run)[1])
    rows = placed_rows(load_many([run]))
    assert measured_levels(rows) == {"L1": 400.0, "L2": 230.0, "L3": 180.0, "DRAM": 35.0}


def test_padding_is_placed_by_the_flops_executed_and_a_note_never_hides_the_missing_target():
    from bench.core.timer import Measurement
    from bench.records.outcomes import Measured, WorkFacts

    case = make_case(model="lstm", batch_size=128, seq_len=64, embedding_dim=256, hidden_size=512)
    full = place(case, 128 * 64, _gflop(case), 200.0, ROOFS)
    quarter = place(case, 128 * 16, _gflop(case) / 4, 200.0, ROOFS)  # 75% padding: a quarter of the work useful
    assert quarter.intensity_flop_per_byte == pytest.approx(full.intensity_flop_per_byte)
    assert quarter.roof_fraction == pytest.approx(full.roof_fraction) and quarter.bound == full.bound
    fast = Measurement({"fwd": [0.001] * 6}, warmup_runs=1, sampling_s=0.1, reached_target=None)
    row = make_row(case, Measured(fast, WorkFacts(128 * 64, 0.0, _gflop(case)), 200.0, roofs=ROOFS), {}, "r")
    assert row.note.startswith("no precision target") and "above its roof" in row.note


def test_smt_siblings_sharing_a_cache_keep_it_private(tmp_path):
    cache = tmp_path / "cache"
    (tmp_path / "topology").mkdir()
    (tmp_path / "topology" / "thread_siblings_list").write_text("0,64\n")
    for i, (level, size, shared) in enumerate([(1, "48K", "0,64"), (2, "2048K", "0,64"), (3, "32768K", "0-127")]):
        d = cache / f"index{i}"
        d.mkdir(parents=True)
        for name, value in (("level", level), ("type", "Unified"), ("size", size), ("shared_cpu_list", shared)):
            (d / name).write_text(f"{value}\n")
    assert [c.private for c in cpu_caches(cache)] == [True, True, False]


def test_no_memory_level_means_no_placement():
    case = make_case(model="lstm", batch_size=1, seq_len=64, embedding_dim=256, hidden_size=512)
    assert place(case, 64, _gflop(case), 3.0, Roofs(200.0, "e", ())) is None
