"""engine.compression.quantization: bitsandbytes on CPU, memory from the real tensors, perplexity on fixed texts."""

from __future__ import annotations

import math

import pytest

from engine.compression.quantization import (
    PRECISIONS,
    PrecisionResult,
    eval_texts,
    load_precision,
    model_bytes,
    perplexity,
    quant_bench,
    quantization_config,
    relative_to,
)
from engine.core.textinput import InputError


def test_texts_ship_with_sources():
    texts = eval_texts()
    for name in ("perplexity_ko", "perplexity_en", "calibration_ko", "heldout_ko", "heldout_en"):
        assert texts[name]["text"].strip() and texts[name]["source"].strip()
    assert texts["perplexity_ko"]["text"].startswith("유구한 역사와 전통에 빛나는")
    assert texts["perplexity_en"]["text"].startswith("Four score and seven years ago")


def test_configs():
    assert quantization_config("fp32") is None
    assert quantization_config("int8").load_in_8bit
    nf4 = quantization_config("nf4")
    assert nf4.load_in_4bit and nf4.bnb_4bit_quant_type == "nf4"
    assert quantization_config("fp4").bnb_4bit_quant_type == "fp4"
    with pytest.raises(InputError, match="precision"):
        quantization_config("int3")


def test_fp32_bytes_and_perplexity(chat_lm):
    size = model_bytes(chat_lm.model)
    assert size["total"] == size["params_buffers"] == size["get_memory_footprint"]
    n_params = sum(p.numel() for p in chat_lm.model.parameters())  # tied embeddings counted once
    assert size["params_buffers"] >= 4 * n_params
    # the first 160 tokens keep this test short on a busy 2-core machine (the benchmark reads whole texts)
    ppl_en = perplexity(chat_lm.model, chat_lm.tokenizer, eval_texts()["perplexity_en"]["text"], max_tokens=160)
    ppl_ko = perplexity(chat_lm.model, chat_lm.tokenizer, eval_texts()["perplexity_ko"]["text"], max_tokens=160)
    assert 2 < ppl_en < 50 and 1 < ppl_ko < 50
    assert math.isfinite(ppl_en) and math.isfinite(ppl_ko)


def test_perplexity_needs_two_tokens(chat_lm):
    with pytest.raises(InputError):
        perplexity(chat_lm.model, chat_lm.tokenizer, "", max_tokens=1)


def test_relative_to_fp32():
    rows = [
        PrecisionResult("fp32", 1000, 1000, 10.0, 8.0, 12.0, "a", 1.0),
        PrecisionResult("nf4", 300, 290, 5.0, 10.0, 15.0, "b", 2.0),
    ]
    rel = {r["precision"]: r for r in relative_to(rows)}
    assert rel["nf4"]["memory_vs_fp32"] == pytest.approx(0.3)
    assert rel["nf4"]["speed_vs_fp32"] == pytest.approx(0.5)
    assert rel["nf4"]["ppl_en_change_pct"] == pytest.approx(25.0)
    assert rel["fp32"]["ppl_ko_change_pct"] == 0


def test_bench_validates_and_cancels_before_loading():
    with pytest.raises(InputError):
        quant_bench(["fp32", "bf3"])
    assert quant_bench(PRECISIONS, should_stop=lambda: True) == []


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["int8", "nf4"])
def test_bitsandbytes_quantizes_on_cpu(chat_lm, precision):
    model = load_precision(precision)
    kinds = {type(m).__name__ for m in model.modules()}
    assert ("Linear8bitLt" if precision == "int8" else "Linear4bit") in kinds
    fp32 = model_bytes(chat_lm.model)["total"]
    size = model_bytes(model)
    assert size["quant_scales"] > 0  # the scales live outside the parameters; they are counted
    assert size["total"] < (0.45 if precision == "int8" else 0.35) * fp32
    ppl = perplexity(model, chat_lm.tokenizer, eval_texts()["perplexity_en"]["text"], max_tokens=160)
    assert math.isfinite(ppl) and ppl > 1
