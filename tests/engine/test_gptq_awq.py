"""engine.compression.gptq_awq: on a real layer of `chat`, error-compensating (GPTQ) and activation-aware (AWQ) 4-bit
quantization beat round-to-nearest on held-out tokens; the quantizer itself behaves."""

from __future__ import annotations

import pytest
import torch

from engine.compression.gptq_awq import (
    awq,
    calibration_texts,
    compare_methods,
    gptq,
    heldout_texts,
    hessian,
    minmax_params,
    quantize,
    relative_output_error,
    rtn,
)
from engine.core.textinput import InputError


def test_rtn_uses_at_most_2_pow_bits_levels_per_row():
    w = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    for bits in (2, 3, 4):
        q = rtn(w, bits)
        assert all(len(torch.unique(row)) <= 2**bits for row in q)
        assert float((q - w).abs().max()) <= float((w.max(1).values - w.min(1).values).max()) / (2**bits - 1)


def test_quantize_grid_is_exact_for_representable_values():
    scale, zero = minmax_params(torch.tensor([[-1.0, 0.0, 2.0]]), 2)  # levels -1, 0, 1, 2
    assert torch.allclose(
        quantize(torch.tensor([[-1.0, 0.0, 1.0, 2.0]]), scale, zero, 2), torch.tensor([[-1.0, 0.0, 1.0, 2.0]])
    )


def test_gptq_beats_rtn_on_synthetic_correlated_inputs():
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(32, 32, generator=g)
    x = torch.randn(2000, 32, generator=g) @ mix  # correlated input channels, like real activations
    w = torch.randn(16, 32, generator=g)
    x_cal, x_eval = x[:1500], x[1500:]
    e_rtn = relative_output_error(w, rtn(w, 3), x_eval)
    e_gptq = relative_output_error(w, gptq(w, hessian(x_cal), 3), x_eval)
    assert e_gptq < e_rtn


def test_awq_alpha_zero_is_rtn():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 32, generator=g) * torch.linspace(0.1, 10, 32)  # a few loud channels
    w = torch.randn(16, 32, generator=g)
    w_awq, _alpha, curve = awq(w, x, 3)
    assert curve[0][0] == 0.0
    assert curve[0][1] == pytest.approx(relative_output_error(w, rtn(w, 3), x), rel=1e-4)
    assert relative_output_error(w, w_awq, x) <= curve[0][1] + 1e-9


@pytest.fixture(scope="module")
def layer0(chat_lm):
    return compare_methods(chat_lm, calibration_texts(), heldout_texts(), layer=0, projection="q_proj", bits=4)


def test_real_layer_gptq_and_awq_beat_rtn(layer0):
    e = layer0.errors
    assert e["GPTQ"] < e["RTN"]
    assert e["AWQ"] < e["RTN"]
    assert layer0.calib_tokens > 2 * layer0.shape[1]  # enough samples for a well-conditioned Hessian
    assert layer0.eval_tokens > 500
    assert layer0.shape == (576, 576)


def test_rtn_has_smallest_weight_error_not_output_error(layer0):
    # RTN minimizes ‖W − Ŵ‖ per weight; GPTQ deliberately moves weights further to make the *output* closer
    assert layer0.weight_errors["RTN"] <= layer0.weight_errors["GPTQ"]


def test_bad_layer_settings(chat_lm):
    with pytest.raises(InputError, match="layer"):
        compare_methods(chat_lm, ["a b c"], ["d e f"], layer=99)
    with pytest.raises(InputError, match="projection"):
        compare_methods(chat_lm, ["a b c"], ["d e f"], projection="nope")
    with pytest.raises(InputError, match="bits"):
        compare_methods(chat_lm, ["a b c"], ["d e f"], bits=5)
