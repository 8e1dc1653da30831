"""engine.training.grad_accumulation: 4 micro-batches of 2 with loss scaling give batch 8's gradient within 1e-6."""

from __future__ import annotations

import pytest
import torch

from engine.training.finetune import dummy_batch, load_training_model
from engine.training.grad_accumulation import accumulated_gradients, compare_accumulation, run_accumulation_demo
from tests.engine._ch05_models import save_tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_accumulated_equals_big_batch(tiny, dtype):
    model = load_training_model(tiny, "full").to(dtype)
    batch = dummy_batch(256, 8, 16, seed=3)
    r = compare_accumulation(model, batch, micro_batch=2)
    assert (r.batch, r.micro_batch, r.steps) == (8, 2, 4)
    assert r.max_abs_diff < 1e-6
    assert r.max_abs_grad > 1e-3  # the gradients are not trivially zero
    assert r.loss_accumulated == pytest.approx(r.loss_full, abs=1e-6)
    assert r.activations_micro < r.activations_full / 3  # a quarter of the batch, plus fixed pieces


def test_without_loss_scaling_it_is_k_times_larger(tiny):
    model = load_training_model(tiny, "full").to(torch.float64)
    batch = dummy_batch(256, 4, 8)
    g_acc, _, _ = accumulated_gradients(model, batch, 1)
    model.zero_grad()
    unscaled = {}
    for i in range(4):
        model(**{k: v[i : i + 1] for k, v in batch.items()}).loss.backward()
    unscaled = {n: p.grad for n, p in model.named_parameters()}
    name = next(iter(g_acc))
    assert torch.allclose(unscaled[name], 4 * g_acc[name])


def test_micro_batch_must_divide(tiny):
    with pytest.raises(ValueError, match="must divide"):
        run_accumulation_demo(tiny, batch=8, micro_batch=3)
    with pytest.raises(ValueError, match="dtype"):
        run_accumulation_demo(tiny, batch=8, micro_batch=2, dtype="float16")


def test_demo_runs(tiny):
    r = run_accumulation_demo(tiny, batch=4, micro_batch=2, seq_len=8)
    assert r.dtype == "float64" and r.max_abs_diff < 1e-12
