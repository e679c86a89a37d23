"""The models: the lecture's shapes, exact packing, the padded pitfall."""

import warnings

import pytest
import torch

from rnnmodels import GRUModel, LSTMModel, lecture_batch, synthetic_batch

MODELS = [LSTMModel, GRUModel]


def states(model_class, state):
    """Final states as a tuple, whatever the model."""
    return state if model_class is LSTMModel else (state,)


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize("use_pack", [True, False])
@pytest.mark.parametrize(
    ("n_layers", "n_dirs", "out_dim", "state_rows"),
    [(1, 1, 512, 1), (2, 2, 1024, 4)],
)
def test_lecture_shapes(model_class, use_pack, n_layers, n_dirs, out_dim, state_rows):
    torch.manual_seed(0)
    batch, batch_lens = lecture_batch()
    model = model_class(100, 256, 512, n_layers, n_dirs, use_pack)
    with torch.inference_mode():
        outputs, state = model(batch, batch_lens, "cpu")  # the lecture's call form
    assert isinstance(outputs, torch.Tensor)
    assert outputs.shape == (20, 10, out_dim)
    for s in states(model_class, state):
        assert s.shape == (state_rows, 10, 512)


def test_device_argument_is_optional_and_checked():
    model = GRUModel(100, 8, 16, 1, 1, True)
    batch, lens = lecture_batch()
    out_a, _ = model(batch, lens)
    out_b, _ = model(batch, lens, torch.device("cpu"))
    torch.testing.assert_close(out_a, out_b)
    with pytest.raises(ValueError, match="device"):
        model(batch, lens, "meta")


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("n_dirs", [1, 2])
def test_packed_mode_is_exact_per_sequence(model_class, n_layers, n_dirs):
    torch.manual_seed(1)
    model = model_class(50, 12, 16, n_layers, n_dirs, use_pack=True).double()
    tokens, lens = synthetic_batch(6, 9, 50, "uniform:1", seed=3)
    lens[0] = 9  # one full-length sequence, the rest unsorted and shorter
    assert not torch.equal(lens, lens.sort(descending=True).values)
    with torch.inference_mode():
        out, state = model(tokens, lens)
        for b in range(tokens.size(0)):
            n = int(lens[b])
            alone_out, alone_state = model(tokens[b : b + 1, :n], lens[b : b + 1])
            torch.testing.assert_close(out[:n, b], alone_out[:, 0])
            for batched, single in zip(states(model_class, state), states(model_class, alone_state), strict=True):
                torch.testing.assert_close(batched[:, b], single[:, 0])
            assert torch.count_nonzero(out[n:, b]) == 0  # padded positions are zero


def test_packed_mode_takes_lengths_on_other_devices_and_dtypes():
    model = LSTMModel(50, 8, 8, 1, 2, use_pack=True)
    tokens, lens = synthetic_batch(4, 7, 50, "uniform:2", seed=0)
    out_long, _ = model(tokens, lens)
    out_int, _ = model(tokens, lens.to(torch.int32))
    torch.testing.assert_close(out_long, out_int)


@pytest.mark.parametrize("model_class", MODELS)
def test_padded_mode_differs_from_packed_for_bidirectional_stack(model_class):
    """The lecture's pitfall: unpacked input reads the padding at valid positions too."""
    torch.manual_seed(2)
    packed = model_class(50, 12, 16, 2, 2, use_pack=True)
    padded = model_class(50, 12, 16, 2, 2, use_pack=False)
    padded.load_state_dict(packed.state_dict())
    tokens, lens = synthetic_batch(5, 10, 50, "uniform:2", seed=4)
    with torch.inference_mode():
        out_packed, _ = packed(tokens, lens)
        out_padded, _ = padded(tokens, lens)
    valid = torch.arange(10).unsqueeze(1) < lens.unsqueeze(0)  # (L, B)
    drift = (out_packed - out_padded).abs()[valid].max()
    assert drift > 1e-3


def test_padded_mode_is_exact_for_one_layer_unidirectional():
    torch.manual_seed(3)
    packed = LSTMModel(50, 12, 16, 1, 1, use_pack=True)
    padded = LSTMModel(50, 12, 16, 1, 1)
    padded.load_state_dict(packed.state_dict())
    tokens, lens = synthetic_batch(5, 10, 50, "uniform:2", seed=4)
    with torch.inference_mode():
        out_packed, _ = packed(tokens, lens)
        out_padded, _ = padded(tokens, lens)
    valid = torch.arange(10).unsqueeze(1) < lens.unsqueeze(0)
    torch.testing.assert_close(out_packed[valid], out_padded[valid])


def test_initial_states_follow_dtype():
    model = GRUModel(50, 8, 8, 1, 1, use_pack=True).double()
    tokens, lens = synthetic_batch(3, 5, 50, seed=0)
    out, h_n = model(tokens, lens)
    assert out.dtype == h_n.dtype == torch.float64


@pytest.mark.parametrize("kwargs", [{"n_dirs": 3}, {"varlen": "bogus"}, {"use_pack": True, "varlen": "padded"}])
def test_bad_constructor_arguments(kwargs):
    args = {"x_dim": 10, "embedding_dim": 4, "h_dim": 4, "n_layers": 1, "n_dirs": 1} | kwargs
    with pytest.raises(ValueError):
        LSTMModel(**args)


def test_padded_final_states_are_taken_after_the_padding():
    torch.manual_seed(4)
    packed = GRUModel(50, 8, 8, 1, 1, use_pack=True)
    padded = GRUModel(50, 8, 8, 1, 1)
    padded.load_state_dict(packed.state_dict())
    tokens, lens = synthetic_batch(4, 10, 50, "uniform:2", seed=5)
    lens[0] = 10
    with torch.inference_mode():
        _, h_packed = packed(tokens, lens)
        _, h_padded = padded(tokens, lens)
    torch.testing.assert_close(h_packed[:, 0], h_padded[:, 0])  # the full-length sequence agrees
    short = lens < 10
    assert short.any() and (h_packed[:, short] - h_padded[:, short]).abs().max() > 1e-3


def _pair(model_class, n_layers, n_dirs, varlen, impl="module"):
    """A packed reference and a model in ``varlen``/``impl`` mode with the same weights."""
    torch.manual_seed(2)
    reference = model_class(50, 12, 16, n_layers, n_dirs, use_pack=True).double()
    other = model_class(50, 12, 16, n_layers, n_dirs, varlen=varlen, impl=impl).double()
    other.load_state_dict(reference.state_dict())
    return reference, other


def _lengths_batch(seq_len=9):
    """Unsorted lengths with repeats, one equal to L and one equal to 1."""
    tokens, lens = synthetic_batch(7, seq_len, 50, "uniform:1", seed=5)
    lens[2], lens[4], lens[5] = seq_len, 1, lens[1]
    return tokens, lens


def assert_same_as_packed(reference, other, tokens, lens, model_class, atol=1e-10):
    with torch.no_grad():
        out_ref, state_ref = reference(tokens, lens)
        out, state = other(tokens, lens)
    torch.testing.assert_close(out, out_ref, atol=atol, rtol=0)  # padding positions are zero in both
    for s, s_ref in zip(states(model_class, state), states(model_class, state_ref), strict=True):
        torch.testing.assert_close(s, s_ref, atol=atol, rtol=0)


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize("n_layers", [1, 2, 3])
@pytest.mark.parametrize("n_dirs", [1, 2])
def test_exact_mode_equals_packed_mode(model_class, n_layers, n_dirs):
    reference, exact = _pair(model_class, n_layers, n_dirs, "exact")
    tokens, lens = _lengths_batch()
    assert_same_as_packed(reference, exact, tokens, lens, model_class)


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize("lengths", ["full", "uniform@1"])
def test_exact_mode_edge_lengths_and_gradients(model_class, lengths):
    """All lengths equal L (one chunk), or all shorter than L; gradients equal packing's."""
    reference, exact = _pair(model_class, 2, 2, "exact")
    tokens, lens = synthetic_batch(5, 8, 50, "full", seed=1)
    if lengths != "full":
        lens = torch.tensor([3, 1, 5, 3, 2])  # max 5 < L = 8
    assert_same_as_packed(reference, exact, tokens, lens, model_class)
    grads = []
    for model in (reference, exact):
        model.zero_grad()
        out, _ = model(tokens, lens)
        out.pow(2).sum().backward()
        grads.append(model.rnn.weight_hh_l1_reverse.grad.clone())
    torch.testing.assert_close(grads[1], grads[0])


@pytest.mark.parametrize("model_class", MODELS)
def test_padded_mode_is_not_exact_for_bidirectional(model_class):
    reference, padded = _pair(model_class, 1, 2, "padded")
    tokens, lens = _lengths_batch()
    valid = torch.arange(9).unsqueeze(1) < lens.unsqueeze(0)
    with torch.no_grad():
        drift = (padded(tokens, lens)[0] - reference(tokens, lens)[0]).abs()[valid].max()
    assert drift > 1e-3


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize("varlen", ["packed", "exact"])
@pytest.mark.parametrize("n_dirs", [1, 2])
def test_cells_stopping_at_each_end_equal_packed_module(model_class, varlen, n_dirs):
    reference, cells = _pair(model_class, 2, n_dirs, varlen, impl="cells")
    tokens, lens = _lengths_batch()
    assert_same_as_packed(reference, cells, tokens, lens, model_class)


@pytest.mark.parametrize("model_class", MODELS)
def test_padded_cells_equal_padded_module(model_class):
    module, cells = _pair(model_class, 2, 2, "padded", impl="cells")
    module.varlen = "padded"
    tokens, lens = _lengths_batch()
    assert_same_as_packed(module, cells, tokens, lens, model_class)


@pytest.mark.parametrize("model_class", MODELS)
def test_cells_share_the_module_parameters(model_class):
    _, cells = _pair(model_class, 1, 2, "exact", impl="cells")
    tokens, lens = _lengths_batch()
    out, _ = cells(tokens, lens)
    out.sum().backward()
    assert cells.rnn.weight_ih_l0_reverse.grad is not None
    assert set(cells.state_dict()) == set(model_class(50, 12, 16, 1, 2).state_dict())


def test_bad_varlen_and_impl_are_refused():
    with pytest.raises(ValueError, match="varlen"):
        LSTMModel(10, 4, 4, 1, 1, varlen="sorted")
    with pytest.raises(ValueError, match="impl"):
        GRUModel(10, 4, 4, 1, 1, impl="triton")


@pytest.mark.cuda
@pytest.mark.parametrize("model_class", MODELS)
def test_exact_mode_on_cuda_equals_packed(model_class):
    """cuDNN path: lengths on the GPU too; TF32 off so both sides do float32 math."""
    reference, exact = _pair(model_class, 2, 2, "exact")
    reference, exact = reference.float().cuda(), exact.float().cuda()
    tokens, lens = _lengths_batch()
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        assert_same_as_packed(reference, exact, tokens.cuda(), lens.cuda(), model_class, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.parametrize("model_class", MODELS)
def test_exact_mode_gives_cudnn_each_directions_weights_in_place(model_class):
    """Each layer and direction starts its own flat buffer, so cuDNN copies no weights."""
    from rnnmodels.layers import direction_params

    _, exact = _pair(model_class, 2, 2, "exact")
    exact = exact.float().cuda()
    for layer in range(2):
        for direction in range(2):
            params = direction_params(exact.rnn, layer, direction)
            assert params[0].storage_offset() == 0
            assert {p.untyped_storage().data_ptr() for p in params} == {params[0].untyped_storage().data_ptr()}
    tokens, lens = _lengths_batch()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "RNN module weights are not part of single contiguous chunk"
        out, _ = exact(tokens.cuda(), lens)
        out.float().sum().backward()
    assert exact.rnn.weight_hh_l1_reverse.grad is not None


@pytest.mark.cuda
@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize(("varlen", "impl"), [("padded", "module"), ("exact", "module"), ("exact", "cells")])
def test_forward_never_waits_for_the_gpu(model_class, varlen, impl):
    """No blocking host-device copy inside a timed forward (lengths stay on the CPU)."""
    model = model_class(50, 12, 16, 2, 2, varlen=varlen, impl=impl).cuda()
    tokens, lens = _lengths_batch()
    tokens = tokens.cuda()
    model(tokens, lens)  # the first call allocates pinned memory; later ones reuse it
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        model(tokens, lens)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("lengths", [[3, 1, 3, 2], [5], [2, 2, 2], [4, 1, 4, 1, 3]])
def test_exact_lstm_chunks_end_at_each_distinct_length(lengths):
    """Each chunk runs the sequences still going (sorted longest first) up to the next length."""
    from rnnmodels.layers import LengthPlan

    plan = LengthPlan.of(torch.tensor(lengths), torch.device("cpu"))
    ends = sorted(set(lengths))
    assert [c[1] for c in plan.chunks] == ends
    assert [c[0] for c in plan.chunks] == [0, *ends[:-1]]
    for _, end, active, still in plan.chunks:
        assert active == sum(n >= end for n in lengths) and still == sum(n > end for n in lengths)
