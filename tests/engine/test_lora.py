"""engine.training.lora and .finetune: adapters, merge equality, QLoRA on CPU, a few steps, NaN and cancel."""

from __future__ import annotations

import pytest
import torch

from engine.core.progress import Cancelled
from engine.training.finetune import dummy_batch, load_training_model, model_config, train_steps
from engine.training.lora import LoraSpec, QuantSpec, merge_check, parameter_counts, randomize_adapters
from engine.training.memory.accounting import weight_bytes
from engine.training.memory.estimate import ModelShape, count_parameters, lora_parameter_count
from tests.engine._ch05_models import save_tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize(
    "spec",
    [
        LoraSpec(),
        LoraSpec(r=16, alpha=32, targets=("q_proj", "k_proj", "v_proj", "o_proj")),
        LoraSpec(r=1, targets=("gate_proj", "up_proj", "down_proj")),
    ],
)
def test_trainable_count_matches_formula(tiny, spec):
    model = load_training_model(tiny, "lora", spec)
    shape = ModelShape.from_config(model_config(tiny))
    counts = parameter_counts(model)
    assert counts["trainable"] == lora_parameter_count(shape, spec)["trainable"]
    assert counts["total"] == count_parameters(shape)["total"] + counts["trainable"]
    trainable_names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable_names and all("lora_" in n for n in trainable_names)


def test_merged_model_equals_unmerged(tiny):
    model = load_training_model(tiny, "lora", LoraSpec(r=4, alpha=8, targets=("q_proj", "v_proj", "down_proj")))
    randomize_adapters(model, seed=1, scale=0.05)
    r = merge_check(model, dummy_batch(256, 2, 12)["input_ids"])
    assert r.delta_norm > 1e-3  # the adapters change the output...
    assert r.max_abs_diff < 1e-5  # ...and W + (alpha/r)·B·A gives the same logits


def test_merging_into_4bit_weights_rounds(tiny):
    """Merging into NF4 re-quantizes W + ΔW: close, not equal (peft warns); merge into a full-precision base."""
    model = load_training_model(tiny, "qlora", LoraSpec(r=4, alpha=8, targets=("q_proj", "v_proj", "down_proj")))
    randomize_adapters(model, seed=1, scale=0.05)
    r = merge_check(model, dummy_batch(256, 2, 12)["input_ids"])
    assert 1e-5 < r.max_abs_diff < 0.5 * r.max_abs_logit


def test_qlora_weights_are_small_and_train(tiny):
    full = load_training_model(tiny, "full")
    q = load_training_model(tiny, "qlora", quant=QuantSpec())
    assert weight_bytes(q) < weight_bytes(full)
    kinds = {type(p).__name__ for p in q.parameters()}
    assert "Params4bit" in kinds
    log = train_steps(q, dummy_batch(256, 2, 16), steps=4, lr=1e-2, mode="qlora")
    assert log.finished_steps == 4 and log.diverged_at is None
    assert log.losses[-1] < log.losses[0]


def test_huge_learning_rate_stops_cleanly_on_nan(tiny):
    model = load_training_model(tiny, "full")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    log = train_steps(model, dummy_batch(256, 2, 16), steps=10, lr=1e4, mode="full")
    assert log.diverged_at is not None and log.finished_steps == log.diverged_at - 1
    assert all(torch.isfinite(torch.tensor(x)) for x in log.losses)
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())  # it did train before
    assert all(p.grad is None for p in model.parameters())  # the bad step left nothing behind


def test_cancel_keeps_finished_steps(tiny):
    model = load_training_model(tiny, "lora")

    def progress(fraction, message):
        if "step 2/" in message:
            raise Cancelled

    log = train_steps(model, dummy_batch(256, 1, 8), steps=5, lr=1e-3, progress=progress)
    assert log.cancelled and log.finished_steps == 2
    stop_after = iter([False, False, False, True])
    log = train_steps(model, dummy_batch(256, 1, 8), steps=5, lr=1e-3, should_stop=lambda: next(stop_after))
    assert log.cancelled and log.finished_steps == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(r=0), "rank"),
        (dict(alpha=0), "alpha"),
        (dict(targets=()), "target"),
        (dict(targets=("qkv",)), "unknown"),
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_bad_lora_specs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LoraSpec(**kwargs)


def test_bad_training_input(tiny):
    model = load_training_model(tiny, "lora")
    batch = dummy_batch(256, 1, 8)
    for lr in (0.0, -1.0, float("nan"), 1e9):
        with pytest.raises(ValueError, match="learning rate"):
            train_steps(model, batch, 2, lr)
    with pytest.raises(ValueError, match="steps"):
        train_steps(model, batch, 0, 1e-3)
    with pytest.raises(ValueError, match="quant type"):
        QuantSpec(quant_type="int3")
    with pytest.raises(ValueError, match="mode"):
        load_training_model(tiny, "half")


@pytest.mark.slow
def test_qlora_on_chat_weights_at_most_35_percent_of_fp32():
    """The real SmolLM2-135M in NF4 on this CPU (about 30 s to quantize on 2 cores)."""
    q = load_training_model("chat", "qlora")
    ratio = weight_bytes(q) / 538_060_032
    assert ratio <= 0.35
    log = train_steps(q, dummy_batch(49152, 1, 16), steps=2, lr=1e-3, mode="qlora")
    assert log.finished_steps == 2 and log.diverged_at is None
