"""engine.lm.positions: known values, the RoPE relative-position property, and Hugging Face Llama parity."""

from __future__ import annotations

import math

import pytest
import torch

from engine.lm.positions import (
    apply_rope,
    learned_positions,
    relative_distance_similarity,
    rope_frequencies,
    rope_rotation_angles,
    rotate_half,
    sinusoidal_positions,
)


def test_sinusoidal_known_values():
    pe = sinusoidal_positions(6, 8)
    assert pe.shape == (6, 8)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0] * 4))  # pos 0: sin 0, cos 0, ...
    # column pair 0 has wavelength 2π: PE[p, 0] = sin(p), PE[p, 1] = cos(p)
    torch.testing.assert_close(pe[:, 0], torch.sin(torch.arange(6.0)))
    torch.testing.assert_close(pe[:, 1], torch.cos(torch.arange(6.0)))
    # column 2i = 2 uses frequency 1 / 10000^(2/8)
    assert pe[3, 2].item() == pytest.approx(math.sin(3 / 10000 ** (2 / 8)), abs=1e-6)
    assert pe[3, 3].item() == pytest.approx(math.cos(3 / 10000 ** (2 / 8)), abs=1e-6)
    assert sinusoidal_positions(3, 5).shape == (3, 5)  # odd width works too


def test_sinusoidal_similarity_depends_on_distance():
    sim = relative_distance_similarity(sinusoidal_positions(16, 32))
    assert sim.shape == (16, 16)
    torch.testing.assert_close(sim, sim.T)
    torch.testing.assert_close(torch.diagonal(sim), torch.full((16,), 16.0))  # |PE|² = C/2
    # same distance -> same similarity (each diagonal is constant)
    torch.testing.assert_close(torch.diagonal(sim, 3), torch.full((13,), sim[0, 3].item()), atol=1e-4, rtol=0)
    assert sim[5, 6] > sim[5, 9]  # neighbours are more alike than positions further apart
    cos = relative_distance_similarity(sinusoidal_positions(16, 32), normalize=True)
    torch.testing.assert_close(torch.diagonal(cos), torch.ones(16))


def test_learned_positions_seeded_and_random():
    a = learned_positions(8, 16, seed=0)
    assert a.shape == (8, 16) and not a.requires_grad
    torch.testing.assert_close(a, learned_positions(8, 16, seed=0))
    assert not torch.equal(a, learned_positions(8, 16, seed=1))
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    learned_positions(8, 16, seed=5)
    assert torch.equal(torch.rand(1), before)  # the global RNG is left alone


def test_rope_shapes_and_angles():
    cos, sin = rope_frequencies(8, 5)
    assert cos.shape == sin.shape == (5, 8)
    torch.testing.assert_close(cos[0], torch.ones(8))  # position 0 is not rotated
    torch.testing.assert_close(sin[0], torch.zeros(8))
    ang = rope_rotation_angles(8, 5)
    assert ang.shape == (5, 4)
    torch.testing.assert_close(ang[:, 0], torch.arange(5, dtype=torch.float64))  # pair 0: 1 rad/position
    torch.testing.assert_close(cos[:, :4], ang.cos().float())
    x = torch.arange(4.0)
    torch.testing.assert_close(rotate_half(x), torch.tensor([-2.0, -3.0, 0.0, 1.0]))
    with pytest.raises(ValueError):
        rope_frequencies(7, 5)


def test_rope_preserves_norm():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 8, dtype=torch.float64)
    cos, sin = rope_frequencies(8, 6, dtype=torch.float64)
    torch.testing.assert_close(apply_rope(x, cos, sin).norm(dim=-1), x.norm(dim=-1))


def test_rope_dot_product_depends_only_on_relative_position():
    torch.manual_seed(0)
    D, T = 16, 32
    cos, sin = rope_frequencies(D, T, dtype=torch.float64)
    q = torch.randn(D, dtype=torch.float64)
    k = torch.randn(D, dtype=torch.float64)

    def rotated(vec, pos):
        return apply_rope(vec.view(1, 1, 1, D), cos[pos], sin[pos]).view(D)

    m, n = 3, 7
    base = rotated(q, m) @ rotated(k, n)
    for shift in (1, 5, 20):
        shifted = rotated(q, m + shift) @ rotated(k, n + shift)
        assert shifted.item() == pytest.approx(base.item(), abs=1e-9)
    assert (rotated(q, m) @ rotated(k, n + 1)).item() != pytest.approx(base.item(), abs=1e-6)


def test_rope_matches_hugging_face_llama():
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    torch.manual_seed(0)
    B, H, T, D = 2, 3, 5, 8
    q = torch.randn(B, H, T, D)
    k = torch.randn(B, H, T, D)
    cos, sin = rope_frequencies(D, T)
    torch.testing.assert_close(rotate_half(q), llama.rotate_half(q))
    ref_q, ref_k = llama.apply_rotary_pos_emb(q, k, cos[None], sin[None])  # cos (B=1, T, D), unsqueezed at 1
    torch.testing.assert_close(apply_rope(q, cos, sin), ref_q, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(apply_rope(k, cos, sin), ref_k, atol=1e-6, rtol=1e-6)
