"""engine.training.memory.estimate: the formulas equal the exact tensor accounting of a real step, byte for byte."""

from __future__ import annotations

import pytest

from engine.training.finetune import dummy_batch, load_training_model, make_optimizer, model_config
from engine.training.lora import LoraSpec, QuantSpec
from engine.training.memory.estimate import (
    ModelShape,
    activation_bytes,
    count_parameters,
    estimate_breakdown,
    four_bit_bytes,
    korthikanti_activation_bytes,
)
from engine.training.memory.measure import measure_step
from tests.engine._ch05_models import save_tiny

ALL = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def tiny_untied_mha(tmp_path_factory):  # no GQA (repeat_kv is a no-op) and a separate lm_head
    return save_tiny(tmp_path_factory.mktemp("tiny2"), seed=1, num_key_value_heads=4, tie_word_embeddings=False)


def _check(path, mode, batch, seq_len, lora=None, quant=None, checkpointing=False):
    shape = ModelShape.from_config(model_config(path))
    model = load_training_model(path, mode, lora, quant, checkpointing)
    measured = measure_step(model, dummy_batch(shape.vocab, batch, seq_len), make_optimizer(model))
    estimated = estimate_breakdown(shape, mode, batch, seq_len, lora, quant, checkpointing)
    assert estimated.as_dict() == measured.as_dict(), measured.saved_by_shape


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("checkpointing", [False, True])
def test_full_training_exact(tiny, batch, checkpointing):
    _check(tiny, "full", batch, 10, checkpointing=checkpointing)


def test_full_training_exact_untied_mha(tiny_untied_mha):
    _check(tiny_untied_mha, "full", 2, 12)


@pytest.mark.parametrize(
    "lora",
    [
        LoraSpec(),
        LoraSpec(r=4, targets=("o_proj",)),
        LoraSpec(targets=("k_proj", "down_proj")),
        LoraSpec(r=2, alpha=4, targets=ALL, dropout=0.05),
        LoraSpec(targets=("up_proj",), dropout=0.1),
    ],
    ids=["qv", "o", "k_down", "all_dropout", "up_dropout"],
)
@pytest.mark.parametrize("checkpointing", [False, True])
def test_lora_exact(tiny, lora, checkpointing):
    _check(tiny, "lora", 3, 10, lora=lora, checkpointing=checkpointing)


@pytest.mark.parametrize("quant", [QuantSpec(), QuantSpec(double_quant=True), QuantSpec(quant_type="fp4")])
def test_qlora_exact(tiny, quant):
    _check(tiny, "qlora", 2, 10, lora=LoraSpec(targets=("q_proj", "v_proj", "down_proj")), quant=quant)


def test_parameter_count_matches_model(tiny_untied_mha):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_untied_mha)
    counts = count_parameters(ModelShape.from_config(model.config))
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["tensors"] == len(list(model.parameters()))


def test_smollm2_shape_from_its_config():
    from transformers import LlamaConfig

    cfg = LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        head_dim=64,
        tie_word_embeddings=True,
    )
    counts = count_parameters(ModelShape.from_config(cfg))
    assert counts["total"] == 134_515_008  # SmolLM2-135M: 538,060,032 bytes in fp32, as measured
    assert counts["total"] * 4 == 538_060_032


def test_four_bit_bytes_is_about_an_eighth_of_fp32():
    n = 576 * 1536
    assert four_bit_bytes(n, QuantSpec()) == n // 2 + n // 64 * 4 + 64
    assert four_bit_bytes(n, QuantSpec(double_quant=True)) < four_bit_bytes(n, QuantSpec())
    assert 0.125 < four_bit_bytes(n, QuantSpec()) / (4 * n) < 0.145


def test_activations_grow_linearly_in_batch_and_checkpointing_saves():
    shape = ModelShape(vocab=1000, hidden=64, layers=4, heads=4, kv_heads=2, head_dim=16, intermediate=160)
    a2 = activation_bytes(shape, 2, 32).total
    a4 = activation_bytes(shape, 4, 32).total
    assert a4 - a2 == activation_bytes(shape, 6, 32).total - a4  # linear in b (b > 1)
    ck = activation_bytes(shape, 4, 32, checkpointing=True)
    assert ck.total < a4 and ck.recompute_layer > 0
    lora = activation_bytes(shape, 4, 32, mode="lora")
    assert lora.total < a4  # frozen layers save less


def test_unknown_architecture_and_mode_are_refused():
    from transformers import GPT2Config

    with pytest.raises(ValueError, match="Llama-style"):
        ModelShape.from_config(GPT2Config())
    shape = ModelShape(vocab=10, hidden=8, layers=1, heads=2, kv_heads=2, head_dim=4, intermediate=16)
    with pytest.raises(ValueError, match="mode"):
        estimate_breakdown(shape, "half", 1, 4)


def test_korthikanti_formula():
    # GPT-3 175B-like layer: s=2048, b=1, h=12288, a=96 -> sbh(34 + 5as/h) bytes
    s, b, h, a = 2048, 1, 12288, 96
    assert korthikanti_activation_bytes(s, b, h, a, 1) == int(s * b * h * (34 + 5 * a * s / h))
