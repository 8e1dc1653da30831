"""engine.lm.relative_positions: ALiBi slopes and biases, RoPE angles beyond the training length, and the measured
perplexity of `chat` when positions are shifted (unchanged: RoPE sees only distances) or stretched (worse)."""

from __future__ import annotations

import math

import pytest
import torch

from engine.lm.relative_positions import (
    alibi_bias,
    alibi_slopes,
    alibi_weights_by_distance,
    position_scaling_perplexity,
    rope_angle_table,
    rope_unseen_pairs,
)

TEXT = (
    "The KV cache stores the keys and values of every previous token. PagedAttention stores that cache in "
    "fixed-size blocks, like pages of virtual memory, so memory is allocated only when a token needs it. "
    "FlashAttention computes exact attention tile by tile and never writes the score matrix to slow memory."
)


def test_alibi_slopes_match_the_paper():
    assert alibi_slopes(8).tolist() == [2.0 ** -(i + 1) for i in range(8)]  # 1/2, 1/4, ..., 1/256
    s16 = alibi_slopes(16)
    assert s16[0] == pytest.approx(2**-0.5) and s16[-1] == pytest.approx(2**-8)
    s12 = alibi_slopes(12)  # not a power of two: 8 slopes of H=8, then every other slope of H=16
    assert s12[:8].tolist() == alibi_slopes(8).tolist()
    assert s12[8:].tolist() == alibi_slopes(16)[0::2][:4].tolist()
    with pytest.raises(ValueError):
        alibi_slopes(0)


def test_alibi_bias_is_linear_in_distance_and_causal():
    bias = alibi_bias(4, 10)  # (H, T, T)
    assert bias.shape == (4, 10, 10)
    assert torch.isinf(bias[:, 0, 1:]).all()  # the future is masked
    slope = alibi_slopes(4)[1]
    assert bias[1, 9, 0] == pytest.approx(-9 * slope)
    assert bias[1, 9, 5] == pytest.approx(-4 * slope)
    # defined at any length, the same rule beyond the "training" length: a longer matrix extends the shorter one
    assert torch.equal(alibi_bias(4, 20)[:, :10, :10], bias)


def test_alibi_weights_decay_and_sum_to_one():
    w = alibi_weights_by_distance(8, 32)
    assert torch.allclose(w.sum(-1), torch.ones(8, dtype=w.dtype))
    assert (w[:, 1:] >= w[:, :-1]).all()  # nearer keys (higher index) get more weight
    assert w[0, 0] < 1e-6  # the steepest head ignores the far end entirely


def test_rope_unseen_pairs():
    pairs = rope_unseen_pairs(64, 8192, base=100000.0)
    assert len(pairs) == 32
    assert pairs[0]["turns_in_training"] == pytest.approx(8192 / (2 * math.pi))  # θ_0 = 1 rad per position
    unseen = [p["pair"] for p in pairs if p["unseen_beyond"]]
    assert unseen == list(range(32 - len(unseen), 32)) and len(unseen) == 12  # the slowest pairs
    angles = rope_angle_table(64, 100, base=100000.0)
    assert angles.shape == (100, 32) and float(angles.min()) >= 0 and float(angles.max()) < 2 * math.pi


def test_shift_keeps_perplexity_and_stretch_raises_it(chat_lm):
    rows = position_scaling_perplexity(chat_lm, TEXT, offsets=(0, 20000), scales=(4.0,), max_tokens=64)
    by = {(r["setting"], r["offset"], r["scale"]): r for r in rows}
    base, shifted, stretched = by[("offset", 0, 1.0)], by[("offset", 20000, 1.0)], by[("scale", 0, 4.0)]
    assert shifted["perplexity"] == pytest.approx(base["perplexity"], rel=2e-3)  # only distances matter
    assert stretched["perplexity"] > 1.5 * base["perplexity"]
    assert base["trained_positions"] == 8192


def test_perplexity_bad_input(chat_lm):
    with pytest.raises(ValueError):
        position_scaling_perplexity(chat_lm, "   ")
    with pytest.raises(ValueError):
        position_scaling_perplexity(chat_lm, TEXT, scales=(0.0,))
    with pytest.raises(ValueError):
        position_scaling_perplexity(chat_lm, "hi", max_tokens=64)  # too short
