"""Gradient checkpointing: keep only each layer's input, recompute the rest during backward.

Without it, every tensor a layer saves for backward stays alive from the forward pass until backward reaches that
layer. With it (`model.gradient_checkpointing_enable()`, in transformers 5 `activation_checkpointing_enable()`),
a layer keeps only its input; backward runs the layer's forward once more to rebuild the rest, one layer at a
time. Activation memory drops from L·(one layer) to L·(b·s·h) + one layer; time grows by about one extra forward.
The gradients do not change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.training.finetune import (
    disable_checkpointing,
    dummy_batch,
    enable_checkpointing,
    load_training_model,
    model_config,
)
from engine.training.lora import LoraSpec
from engine.training.memory.accounting import ActivationMeter
from engine.training.memory.estimate import ModelShape, activation_bytes


@dataclass
class CheckpointingRun:
    checkpointing: bool
    activations: int  # measured: bytes saved for backward
    estimated: int  # formula (engine.training.memory.estimate)
    recompute_layer: int  # estimated bytes one layer rebuilds during backward (0 without checkpointing)
    forward_seconds: float
    backward_seconds: float

    @property
    def seconds(self) -> float:
        return self.forward_seconds + self.backward_seconds


@dataclass
class CheckpointingComparison:
    model: str
    mode: str
    batch: int
    seq_len: int
    runs: list[CheckpointingRun] = field(default_factory=list)
    grad_max_diff: float | None = None  # gradients with vs without (they should agree)
    cancelled: bool = False

    def ratio(self, attr: str) -> float | None:
        if len(self.runs) < 2:
            return None
        off, on = self.runs
        return getattr(on, attr) / getattr(off, attr)


def _one_run(model, batch, repeats: int) -> tuple[int, float, float, dict[str, torch.Tensor]]:
    best_f = best_b = float("inf")
    acts = 0
    grads: dict[str, torch.Tensor] = {}
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        with ActivationMeter(model) as meter:
            loss = model(**batch).loss
        mid = time.perf_counter()
        loss.backward()
        end = time.perf_counter()
        best_f, best_b = min(best_f, mid - start), min(best_b, end - mid)
        acts = meter.bytes
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return acts, best_f, best_b, grads


def compare_checkpointing(
    source="chat",
    mode: str = "full",
    batch: int = 2,
    seq_len: int = 64,
    repeats: int = 1,
    lora: LoraSpec | None = None,
    seed: int = 0,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] = lambda: False,
    on_run: Callable[[CheckpointingRun], None] | None = None,
) -> CheckpointingComparison:
    """The same model and batch, forward + backward without and then with checkpointing: memory and time."""
    if not 1 <= repeats <= 10:
        raise InputError("training.bad_repeats", value=repeats)
    if mode not in ("full", "lora"):
        raise InputError("training.checkpointing_mode")
    shape = ModelShape.from_config(model_config(source))
    name = source.name if hasattr(source, "name") else str(source)
    result = CheckpointingComparison(name, mode, batch, seq_len)
    data = dummy_batch(shape.vocab, batch, seq_len, seed=seed)
    progress(0.0, f"loading {name}")
    model = load_training_model(source, mode, lora, progress=progress)
    grads = []
    try:
        for i, on in enumerate((False, True)):
            if should_stop():
                raise Cancelled
            (enable_checkpointing if on else disable_checkpointing)(model)
            progress(0.1 + 0.45 * i, f"forward + backward, checkpointing {'on' if on else 'off'}")
            acts, fwd, bwd, g = _one_run(model, data, repeats)
            grads.append(g)
            est = activation_bytes(shape, batch, seq_len, mode, lora, checkpointing=on)
            run = CheckpointingRun(on, acts, est.total, est.recompute_layer, fwd, bwd)
            result.runs.append(run)
            if on_run:
                on_run(run)
        progress(1.0, "done")
    except Cancelled:
        result.cancelled = True
    if len(grads) == 2:
        result.grad_max_diff = max(float((grads[0][n] - grads[1][n]).abs().max()) for n in grads[0])
    return result
