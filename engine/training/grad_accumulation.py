"""Gradient accumulation: the gradient of a big batch, built from small micro-batches.

The loss of a causal LM is a mean over tokens. Split a batch of B sequences into k micro-batches of B/k (all the
same length, no padding), call backward on each micro-batch loss divided by k, and the .grad buffers add up to
exactly the big batch's gradient: mean over B = (1/k)·Σ mean over B/k. Only the activations of one micro-batch
are alive at a time, so activation memory shrinks by k while the optimizer step sees the big batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.training.memory.accounting import ActivationMeter


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def full_batch_gradients(model, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], float, int]:
    """(gradients, loss, activation bytes) of one backward pass over the whole batch."""
    model.zero_grad(set_to_none=True)
    with ActivationMeter(model) as meter:
        loss = model(**batch).loss
    loss.backward()
    return _grads(model), float(loss.detach()), meter.bytes


def accumulated_gradients(
    model, batch: dict[str, torch.Tensor], micro_batch: int, progress: ProgressFn = null_progress
) -> tuple[dict[str, torch.Tensor], float, int]:
    """(gradients, mean loss, largest activation bytes of one micro-batch) from k = B / micro_batch backward passes,
    each loss scaled by 1/k — the book's `loss = loss / gradient_accumulation_steps`."""
    size = batch["input_ids"].shape[0]
    if micro_batch < 1 or size % micro_batch:
        raise InputError("training.micro_batch", micro_batch=micro_batch, batch=size)
    steps = size // micro_batch
    model.zero_grad(set_to_none=True)
    total_loss, peak = 0.0, 0
    for i in range(steps):
        part = {k: v[i * micro_batch : (i + 1) * micro_batch] for k, v in batch.items()}
        with ActivationMeter(model) as meter:
            loss = model(**part).loss / steps
        loss.backward()  # .grad accumulates: the sum of the scaled micro-batch gradients
        total_loss += float(loss.detach())
        peak = max(peak, meter.bytes)
        progress((i + 1) / steps, f"micro-batch {i + 1}/{steps}")
    return _grads(model), total_loss, peak


@dataclass
class AccumulationResult:
    batch: int
    micro_batch: int
    steps: int
    dtype: str
    max_abs_diff: float  # largest |g_big - g_accumulated| over every parameter
    max_abs_grad: float  # for scale
    loss_full: float
    loss_accumulated: float
    activations_full: int  # bytes saved for backward by the big batch
    activations_micro: int  # ... by one micro-batch
    seconds_full: float
    seconds_accumulated: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def compare_accumulation(
    model, batch: dict[str, torch.Tensor], micro_batch: int, progress: ProgressFn = null_progress
) -> AccumulationResult:
    """Big batch in one step vs micro-batches with loss scaling, on the same model and data."""
    progress(0.0, "whole batch")
    start = time.perf_counter()
    g_full, loss_full, act_full = full_batch_gradients(model, batch)
    seconds_full = time.perf_counter() - start
    start = time.perf_counter()
    g_acc, loss_acc, act_micro = accumulated_gradients(model, batch, micro_batch, lambda f, m: progress(0.5 + f / 2, m))
    seconds_acc = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    diff = max(float((g_full[n] - g_acc[n]).abs().max()) for n in g_full)
    scale = max(float(g.abs().max()) for g in g_full.values())
    size = batch["input_ids"].shape[0]
    return AccumulationResult(
        batch=size,
        micro_batch=micro_batch,
        steps=size // micro_batch,
        dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
        max_abs_diff=diff,
        max_abs_grad=scale,
        loss_full=loss_full,
        loss_accumulated=loss_acc,
        activations_full=act_full,
        activations_micro=act_micro,
        seconds_full=seconds_full,
        seconds_accumulated=seconds_acc,
    )


def run_accumulation_demo(
    source="tiny",
    batch: int = 8,
    micro_batch: int = 2,
    seq_len: int = 32,
    dtype: str = "float64",
    seed: int = 0,
    progress: ProgressFn = null_progress,
) -> AccumulationResult:
    """The page's demo: load the model in full-training mode, cast to `dtype`, compare on random token ids."""
    from engine.training.finetune import dummy_batch, load_training_model

    if dtype not in ("float32", "float64"):
        raise InputError("training.bad_dtype", value=dtype)
    if micro_batch < 1 or batch % micro_batch:
        raise InputError("training.micro_batch", micro_batch=micro_batch, batch=batch)
    model = load_training_model(source, "full", progress=progress).to(getattr(torch, dtype))
    data = dummy_batch(model.config.vocab_size, batch, seq_len, seed=seed)
    return compare_accumulation(model, data, micro_batch, progress)
