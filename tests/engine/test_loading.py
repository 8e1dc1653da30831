"""engine.models.loading: the one-time GGUF -> safetensors conversion, warm loads, the sentence embedder."""

from __future__ import annotations

import json
import time

import pytest
import torch

from engine.models.loading import (
    converted_dir,
    load_causal_lm,
    load_sentence_embedder,
    load_tokenizer,
)
from engine.models.registry import ModelUnavailable

WARM_LOAD_LIMIT_S = 2.0  # issue requirement for `chat`; measured ≈0.2–0.5 s


def test_warm_load_of_chat_is_fast(chat_lm):  # chat_lm: the conversion cache exists
    # Best of three wall times (resolve + tokenizer + weights): the test machine's cores are shared.
    walls = []
    for _ in range(3):
        start = time.perf_counter()
        lm = load_causal_lm("chat")
        walls.append(time.perf_counter() - start)
        assert 0 < lm.load_seconds <= walls[-1]
    assert min(walls) <= WARM_LOAD_LIMIT_S, f"warm loads of chat took {[round(w, 2) for w in walls]} s"
    assert lm.role == "chat" and lm.device == chat_lm.device
    assert not lm.model.training


def test_converted_dir_holds_plain_safetensors(chat_lm):
    d = converted_dir("chat")
    assert d.name == "chat-b179c9523d0e"
    assert (d / "model.safetensors").is_file()
    assert (d / "tokenizer.json").is_file()
    config = json.loads((d / "config.json").read_text())
    assert "quantization_config" not in config  # dequantized float32, not tagged as GGUF-quantized
    assert not list(d.parent.glob(f".{d.name}-*"))  # no half-written temporary directory left behind


def test_converted_weights_equal_the_gguf_tensors(chat_lm):
    """The safetensors conversion is the GGUF de-quantized exactly (checked tensor by tensor with gguf's own
    de-quantizer), not a model that happens to answer well."""
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize

    from engine.models.registry import resolve

    reader = GGUFReader(resolve("chat").path)
    tensors = {t.name: t for t in reader.tensors}
    params = dict(chat_lm.model.named_parameters())
    # Tensors transformers stores without a permutation (q/k projections are re-permuted for RoPE layout).
    for gguf_name, hf_name in [
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight"),
        ("blk.0.attn_v.weight", "model.layers.0.self_attn.v_proj.weight"),
        ("blk.29.attn_norm.weight", "model.layers.29.input_layernorm.weight"),
    ]:
        t = tensors[gguf_name]
        ref = dequantize(t.data, t.tensor_type).reshape(params[hf_name].shape)
        np.testing.assert_allclose(params[hf_name].detach().cpu().numpy(), ref, rtol=0, atol=1e-6)


@torch.no_grad()
def test_converted_model_runs_in_float32(chat_lm):
    ids = chat_lm.tokenizer("The capital of France is", return_tensors="pt").input_ids
    logits = chat_lm.model(ids).logits[0, -1]
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


def test_model_uses_eager_attention(chat_lm):
    assert chat_lm.model.config._attn_implementation == "eager"  # attention weights are visible


def test_embed_is_not_a_causal_lm():
    with pytest.raises(ModelUnavailable, match="not a causal language model"):
        load_causal_lm("embed")


def test_load_tokenizer_for_every_role():
    assert load_tokenizer("chat")("hello world", add_special_tokens=False).input_ids == [28120, 905]
    assert len(load_tokenizer("embed")) == 30522  # uncased WordPiece vocabulary of MiniLM


def test_sentence_embedder_gives_normalized_384_dim_vectors():
    model = load_sentence_embedder()
    sentences = ["A cat sits on the mat.", "A kitten is sitting on a rug.", "Stock markets fell sharply today."]
    emb = model.encode(sentences, convert_to_tensor=True)
    assert emb.shape == (3, 384)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3), atol=1e-3, rtol=0)
    sims = emb @ emb.T
    assert sims[0, 1] > sims[0, 2] + 0.3  # paraphrases are far closer than unrelated text
