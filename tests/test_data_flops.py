"""Synthetic batches and FLOP counts."""

import pytest
import torch

from rnnmodels import PAD_ID, forward_flops, lecture_batch, padding_fraction, synthetic_batch
from rnnmodels.data import expected_padding_fraction, parse_lengths
from rnnmodels.flops import training_flops


def test_lecture_batch_is_the_lectures():
    tokens, lens = lecture_batch()
    assert tokens.shape == (10, 20)
    assert lens.tolist() == [20, 5, 8, 10, 15, 18, 17, 6, 6, 18]
    assert tokens[1].tolist() == [62, 76, 79, 66, 32] + [PAD_ID] * 15


def test_generator_is_deterministic_per_seed():
    a = synthetic_batch(16, 32, 100, "uniform", seed=7)
    b = synthetic_batch(16, 32, 100, "uniform", seed=7)
    c = synthetic_batch(16, 32, 100, "uniform", seed=8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize(("spec", "low", "high"), [("full", 40, 40), ("uniform", 10, 40), ("uniform:3", 3, 40)])
def test_lengths_within_bounds_and_padding_where_expected(spec, low, high):
    tokens, lens = synthetic_batch(500, 40, 30, spec, seed=1)
    assert lens.min() >= low and lens.max() <= high
    positions = torch.arange(40).unsqueeze(0)
    assert (tokens[positions >= lens.unsqueeze(1)] == PAD_ID).all()
    valid = tokens[positions < lens.unsqueeze(1)]
    assert (valid >= 1).all() and (valid < 30).all()
    # 500 draws: the sample padding fraction is within a few percent of expectation
    assert padding_fraction(lens, 40) == pytest.approx(expected_padding_fraction(spec, 40), abs=0.03)


def test_full_lengths_have_no_padding():
    _, lens = synthetic_batch(8, 12, 10, "full")
    assert padding_fraction(lens, 12) == 0.0


@pytest.mark.parametrize(
    "spec",
    ["uniform:0", "uniform:x", "uniform:50", "zipf", "full:3", "pad:1", "pad:-0.1", "pad:x", "file:", "file:a@b"],
)
def test_bad_length_specs(spec):
    with pytest.raises(ValueError, match="lengths"):
        parse_lengths(spec, 40)


def test_bad_sizes():
    with pytest.raises(ValueError):
        synthetic_batch(0, 4, 10)
    with pytest.raises(ValueError, match="vocab"):
        synthetic_batch(2, 4, 1)


def test_flops_by_hand():
    # LSTM, E=3, H=2, 2 layers, bidirectional, 5 valid tokens:
    # layer 1: 8*2*(3+2)*2 dirs = 160 per token; layer 2 input 4: 8*2*(4+2)*2 = 192
    assert forward_flops("lstm", 5, 3, 2, 2, 2) == 5 * (160 + 192)
    # GRU, E=4, H=3, 1 layer, 1 dir: 6*3*7 = 126 per token
    assert forward_flops("gru", 10, 4, 3, 1, 1) == 1260
    assert training_flops(100) == 300


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 0.75, 0.9])
def test_pad_lengths_give_the_padding_fraction_asked_for(fraction):
    _, lens = synthetic_batch(32, 64, 100, f"pad:{fraction}", seed=0)
    assert padding_fraction(lens, 64) == pytest.approx(fraction, abs=0.05)
    assert expected_padding_fraction(f"pad:{fraction}", 64) == pytest.approx(fraction, abs=0.02)
    assert lens.min() >= 1 and lens.max() <= 64
    again = synthetic_batch(32, 64, 100, f"pad:{fraction}", seed=0)[1]
    assert torch.equal(lens, again)  # seeded


def test_file_lengths_draw_from_the_files_lengths(tmp_path):
    path = tmp_path / "lengths.txt"
    path.write_text("5\n12\n30\n64\n7\n")
    spec = f"file:{path}"
    _, lens = synthetic_batch(500, 64, 100, spec, seed=2)
    assert set(lens.tolist()) <= {5, 12, 30, 64, 7} and len(set(lens.tolist())) == 5
    assert padding_fraction(lens, 64) == pytest.approx(expected_padding_fraction(spec, 64), abs=0.01)
    with pytest.raises(ValueError, match="entry 4 \\(64\\) exceeds the sequence length 32"):
        parse_lengths(spec, 32)
    with pytest.raises(ValueError, match="cannot read"):
        parse_lengths(f"file:{tmp_path / 'missing.txt'}", 64)
