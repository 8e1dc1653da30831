"""engine.lm.attention checked against the PyTorch originals it re-implements."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.lm.attention import (
    BlockConfig,
    LayerNorm,
    MultiHeadAttention,
    TransformerBlock,
    attention_steps,
    causal_mask,
    mask_pattern,
    merge_heads,
    mlm_vs_clm_example,
    scaled_dot_product_attention,
    split_heads,
)

TOL = dict(atol=1e-6, rtol=1e-6)


def _qkv(B=2, H=3, T=5, D=4):
    torch.manual_seed(0)
    return (torch.randn(B, H, T, D, dtype=torch.float64) for _ in range(3))


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_matches_torch(causal):
    q, k, v = _qkv()
    out, w = scaled_dot_product_attention(q, k, v, causal=causal)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 5, dtype=torch.float64), **TOL)


def test_sdpa_bool_mask_matches_torch():
    q, k, v = _qkv()
    torch.manual_seed(1)
    mask = torch.rand(2, 1, 5, 5) > 0.4  # broadcast over heads
    mask[..., 0] = True  # no fully-blocked rows (their value is a convention, compared separately)
    out, w = scaled_dot_product_attention(q, k, v, mask=mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, ref, **TOL)
    assert torch.all(w.masked_select(~mask.expand_as(w)) == 0)


def test_sdpa_fully_blocked_row_is_zero_and_return_weights_flag():
    q, k, v = _qkv(B=1, H=1, T=3)
    mask = torch.ones(3, 3, dtype=torch.bool)
    mask[1] = False
    out, w = scaled_dot_product_attention(q, k, v, mask=mask, return_weights=False)
    assert w is None
    assert torch.all(out[0, 0, 1] == 0)
    assert not torch.isnan(out).any()


def test_split_merge_roundtrip():
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).view(2, 3, 8)
    h = split_heads(x, 4)
    assert h.shape == (2, 4, 3, 2)
    torch.testing.assert_close(h[:, 1], x[..., 2:4])  # head 1 owns columns 2..3
    torch.testing.assert_close(merge_heads(h), x)


def _copy_into_torch_mha(ours: MultiHeadAttention, C: int, H: int) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(C, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        if ours.fused_qkv:
            ref.in_proj_weight.copy_(ours.c_attn.weight)  # both stack [Wq; Wk; Wv] along dim 0
            ref.in_proj_bias.copy_(ours.c_attn.bias)
        else:
            ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
            ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        ref.out_proj.weight.copy_(ours.c_proj.weight)
        ref.out_proj.bias.copy_(ours.c_proj.bias)
    return ref.eval()


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("causal", [False, True])
def test_mha_matches_torch_multihead_attention(fused, causal):
    torch.manual_seed(0)
    cfg = BlockConfig(n_embd=16, n_head=4)
    ours = MultiHeadAttention(cfg, fused_qkv=fused).double().eval()
    ref = _copy_into_torch_mha(ours, 16, 4)
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    out, w = ours(x, causal=causal, need_weights=True)
    attn_mask = ~causal_mask(6) if causal else None  # torch's bool mask marks what to *block*
    ref_out, ref_w = ref(x, x, x, attn_mask=attn_mask, need_weights=True, average_attn_weights=True)
    assert w.shape == (2, 4, 6, 6)
    torch.testing.assert_close(out, ref_out, **TOL)
    torch.testing.assert_close(w.mean(dim=1), ref_w, **TOL)
    _, no_w = ours(x, causal=causal)
    assert no_w is None


def test_layernorm_matches_torch():
    torch.manual_seed(0)
    ours = LayerNorm(10).double()
    ref = nn.LayerNorm(10, dtype=torch.float64)
    with torch.no_grad():
        ours.weight.copy_(torch.randn(10))
        ours.bias.copy_(torch.randn(10))
        ref.weight.copy_(ours.weight)
        ref.bias.copy_(ours.bias)
    x = torch.randn(3, 4, 10, dtype=torch.float64) * 5 + 2
    torch.testing.assert_close(ours(x), ref(x), **TOL)
    no_bias = LayerNorm(10, bias=False)
    assert no_bias.bias is None
    assert no_bias(x.float()).shape == (3, 4, 10)


def test_block_shapes_and_steps():
    torch.manual_seed(0)
    cfg = BlockConfig(n_embd=16, n_head=2)
    block = TransformerBlock(cfg).eval()
    x = torch.randn(2, 5, 16)
    y = block(x)
    assert y.shape == (2, 5, 16)
    steps = block(x, return_steps=True)
    assert list(steps) == [
        "input",
        "ln1",
        "attn_out",
        "attn_weights",
        "resid1",
        "ln2",
        "ffn_out",
        "resid2",
        "output",
    ]
    assert steps["attn_weights"].shape == (2, 2, 5, 5)
    torch.testing.assert_close(steps["output"], y)
    torch.testing.assert_close(steps["resid1"], x + steps["attn_out"])
    torch.testing.assert_close(steps["resid2"], steps["resid1"] + steps["ffn_out"])
    # pre-LN: what attention sees is normalized per token
    torch.testing.assert_close(steps["ln1"].mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)


def test_causal_block_ignores_future_tokens():
    torch.manual_seed(0)
    block = TransformerBlock(BlockConfig(n_embd=16, n_head=4)).double().eval()
    x = torch.randn(1, 6, 16, dtype=torch.float64)
    t = 2
    x2 = x.clone()
    x2[:, t + 1 :] = torch.randn(1, 6 - t - 1, 16, dtype=torch.float64)
    with torch.no_grad():
        y, y2 = block(x, causal=True), block(x2, causal=True)
        torch.testing.assert_close(y[:, : t + 1], y2[:, : t + 1], **TOL)
        assert not torch.allclose(y[:, t + 1 :], y2[:, t + 1 :])
        # without the causal mask the past *does* see the change
        b, b2 = block(x, causal=False), block(x2, causal=False)
        assert not torch.allclose(b[:, : t + 1], b2[:, : t + 1])


def test_mask_patterns_T4():
    full = torch.ones(4, 4, dtype=torch.bool)
    lower = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    prefix2 = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(mask_pattern("bert", 4), full)
    assert torch.equal(mask_pattern("t5-encoder", 4), full)
    assert torch.equal(mask_pattern("t5-decoder-cross", 4), full)
    assert torch.equal(mask_pattern("gpt", 4), lower)
    assert torch.equal(mask_pattern("t5-decoder", 4), lower)
    assert torch.equal(causal_mask(4), lower)
    assert torch.equal(mask_pattern("prefix-lm", 4), prefix2)  # prefix defaults to T // 2
    assert torch.equal(mask_pattern("prefix-lm", 4, prefix=2), prefix2)
    assert torch.equal(mask_pattern("prefix-lm", 4, prefix=0), lower)
    assert torch.equal(mask_pattern("prefix-lm", 4, prefix=4), full)
    with pytest.raises(ValueError):
        mask_pattern("rnn", 4)
    with pytest.raises(ValueError):
        mask_pattern("prefix-lm", 4, prefix=5)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_steps(causal):
    torch.manual_seed(0)
    T, C, D = 4, 8, 4
    x = torch.randn(T, C, dtype=torch.float64)
    Wq, Wk, Wv = (torch.randn(C, D, dtype=torch.float64) for _ in range(3))
    s = attention_steps(x, Wq, Wk, Wv, causal=causal)
    torch.testing.assert_close(s.weights.sum(-1), torch.ones(T, dtype=torch.float64), **TOL)
    torch.testing.assert_close(s.scaled, s.scores / 2.0)  # √D = 2
    if causal:
        upper = ~causal_mask(T)
        assert torch.all(s.weights[upper] == 0)
        assert torch.all(torch.isinf(s.masked[upper]))
    else:
        assert torch.all(s.weights > 0)
    out, _ = scaled_dot_product_attention(
        (x @ Wq)[None, None], (x @ Wk)[None, None], (x @ Wv)[None, None], causal=causal
    )
    torch.testing.assert_close(s.out, out[0, 0], **TOL)
    assert set(s.as_dict()) >= {"q", "k", "v", "scores", "scaled", "masked", "weights", "out"}


def test_attention_steps_custom_mask():
    torch.manual_seed(0)
    x = torch.randn(4, 6)
    W = [torch.randn(6, 2) for _ in range(3)]
    s = attention_steps(x, *W, mask=mask_pattern("prefix-lm", 4, prefix=3))
    assert s.weights[0, 2] > 0 and s.weights[0, 3] == 0


def test_block_config_validation():
    assert BlockConfig(n_embd=32, n_head=4).head_dim == 8
    with pytest.raises(ValueError):
        BlockConfig(n_embd=30, n_head=4)


def test_mlm_vs_clm_deterministic():
    tokens = ["the", "cat", "sat", "on", "the", "mat", "because", "it", "was", "warm"]
    a = mlm_vs_clm_example(tokens, mask_prob=0.3, seed=7)
    b = mlm_vs_clm_example(tokens, mask_prob=0.3, seed=7)
    assert a == b
    assert a["clm"]["input"] == tokens[:-1]
    assert a["clm"]["targets"] == tokens[1:]
    assert a["clm"]["pairs"][0] == (["the"], "cat")
    assert a["n_predictions"]["clm"] == len(tokens) - 1
    mlm = a["mlm"]
    assert mlm["positions"] and a["n_predictions"]["mlm"] == len(mlm["positions"])
    for i, tok in enumerate(tokens):
        if i in mlm["positions"]:
            assert mlm["targets"][i] == tok
            assert mlm["actions"][i] in {"mask", "random", "keep"}
            if mlm["actions"][i] == "mask":
                assert mlm["input"][i] == "[MASK]"
        else:
            assert mlm["targets"][i] is None and mlm["input"][i] == tok
    # a different seed picks something else for at least one of a few seeds
    others = [mlm_vs_clm_example(tokens, 0.3, seed=s)["mlm"]["positions"] for s in range(5)]
    assert any(p != mlm["positions"] for p in others)
    # never empty: even mask_prob=0 predicts one token
    assert len(mlm_vs_clm_example(tokens, mask_prob=0.0, seed=0)["mlm"]["positions"]) == 1
