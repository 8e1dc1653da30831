"""engine.inference.kv_cache: the real cache's bytes equal the formula exactly; cached and uncached decoding agree."""

from __future__ import annotations

import pytest
import torch

from engine.core.textinput import InputError
from engine.inference.kv_cache import (
    greedy_with_cache,
    greedy_without_cache,
    kv_bench,
    kv_bytes_formula,
    kv_calculator,
    measure_cache_bytes,
    parse_counts,
    prefill_cache_size,
    reference_models,
    shape_of,
)


def test_formula_by_hand():
    # Llama-2-7B, 4096 tokens, fp16: 2 · 32 · 32 · 128 · 4096 · 2 bytes = 2 GiB
    assert kv_bytes_formula(32, 32, 128, 4096, 2) == 2 * 2**30
    assert kv_bytes_formula(32, 8, 128, 4096, 2, batch=4) == 2 * 2**30  # GQA with 8 KV heads: 4x less per sequence


def test_chat_shape_from_config(chat_lm):
    s = shape_of(chat_lm.model, "chat")
    assert (s.layers, s.heads, s.kv_heads, s.head_dim) == (30, 9, 3, 64)
    assert s.kind == "GQA"
    assert s.bytes_per_token(4) == 2 * 30 * 3 * 64 * 4


def test_prefill_cache_measured_equals_formula(chat_lm):
    size = prefill_cache_size(chat_lm, "The KV cache stores one key and one value per layer, head and token.")
    assert size.measured_bytes == size.formula_bytes
    n = len(chat_lm.tokenizer("The KV cache stores one key and one value per layer, head and token.")["input_ids"])
    assert size.tokens == n and size.tensor_shape == (1, 3, n, 64) and size.dtype == "float32"


def test_cached_and_uncached_decoding_agree(chat_lm):
    ids = chat_lm.tokenizer("Once upon a time")["input_ids"]
    with_ids, cache = greedy_with_cache(chat_lm.model, ids, 6)
    assert with_ids == greedy_without_cache(chat_lm.model, ids, 6)
    # the last generated token was never fed back, so the cache holds prompt + 5 positions
    assert measure_cache_bytes(cache) == kv_bytes_formula(30, 3, 64, len(ids) + 5, 4)


def test_batched_cache_bytes_equal_formula(chat_lm):
    ids = torch.tensor([chat_lm.tokenizer("one two three four")["input_ids"]] * 3)  # batch of 3
    with torch.no_grad():
        cache = chat_lm.model(ids, use_cache=True).past_key_values
    assert measure_cache_bytes(cache) == kv_bytes_formula(30, 3, 64, ids.shape[1], 4, batch=3)


def test_kv_bench_rows_and_bytes(chat_lm):
    rows = kv_bench(chat_lm, [2, 5])
    assert [r.new_tokens for r in rows] == [2, 5]
    for r in rows:
        assert r.kv_bytes_measured == r.kv_bytes_formula > 0
        assert r.cache_tokens == r.prompt_tokens + r.new_tokens - 1
        assert r.with_cache_s > 0 and r.without_cache_s > 0 and r.speedup > 0
        assert r.same_tokens
    assert set(rows[0].as_dict()) >= {
        "new_tokens",
        "with_cache_s",
        "without_cache_s",
        "speedup",
        "kv_bytes_measured",
        "kv_bytes_formula",
    }


def test_kv_bench_cancel_keeps_finished_counts(chat_lm):
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 4  # 2 tokens with cache + 2 without = the first count; the second is cut

    rows = kv_bench(chat_lm, [2, 8], should_stop=stop)
    assert [r.new_tokens for r in rows] == [2]


@pytest.mark.parametrize("text", ["0", "64,0", "-3", "abc", "", "100000"])
def test_bad_counts(text):
    with pytest.raises(InputError):
        parse_counts(text)


def test_calculator_mha_gqa_mqa():
    rows = {r["model"]: r for r in kv_calculator(4096)}
    assert rows["Llama-2-7B"]["attention"] == "MHA" and rows["Llama-2-7B"]["kv_gib"] == pytest.approx(2.0)
    assert rows["Llama-2-70B"]["attention"] == "GQA" and rows["Llama-2-70B"]["saving_vs_mha"] == pytest.approx(7 / 8)
    assert rows["Falcon-7B"]["attention"] == "MQA" and rows["Falcon-7B"]["kv_heads"] == 1
    assert all(m.source for m in reference_models())
    with pytest.raises(InputError):
        kv_calculator(0)


def test_calculator_matches_real_config_of_chat(chat_lm):
    s = shape_of(chat_lm.model, "chat")
    row = next(r for r in kv_calculator(100, bytes_per_value=4) if r["model"].startswith("SmolLM2"))
    assert row["kv_bytes_per_token"] == s.bytes_per_token(4)
