"""One real training step, measured component by component (engine.training.memory.accounting does the counting)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from engine.training.memory.accounting import (
    ActivationMeter,
    CudaMeter,
    gradient_bytes,
    optimizer_state_bytes,
    timed,
    weight_bytes,
)


class Diverged(ValueError):
    """The loss (or a gradient) was NaN or infinite: the step is not taken."""


@dataclass
class StepMeasurement:
    weights: int
    gradients: int
    optimizer: int
    activations: int
    loss: float
    seconds: dict[str, float] = field(default_factory=dict)  # forward, backward, step
    cuda: dict[str, int] | None = None  # allocator figures on a GPU (bytes), None on a CPU
    saved_by_shape: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {
            "weights": self.weights,
            "gradients": self.gradients,
            "optimizer": self.optimizer,
            "activations": self.activations,
        }


def measure_step(model, batch: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer) -> StepMeasurement:
    """Forward (counting saved tensors), backward (counting .grad), one optimizer step (counting its state).

    The step leaves the model trained by one step and the gradients cleared, like a training loop would.
    """
    device = next(model.parameters()).device
    cuda = CudaMeter(device)
    seconds: dict[str, float] = {}
    weights = weight_bytes(model)
    cuda.reset()
    before = cuda.allocated()
    with timed(seconds, "forward"), ActivationMeter(model) as meter:
        loss = model(**batch).loss
    after_forward = cuda.allocated()
    if not math.isfinite(float(loss.detach())):
        raise Diverged(f"the loss is {float(loss.detach())}")
    with timed(seconds, "backward"):
        loss.backward()
    grads = gradient_bytes(model)
    with timed(seconds, "step"):
        optimizer.step()
    states = optimizer_state_bytes(optimizer)
    cuda_figures = None
    if cuda.available:
        cuda_figures = {
            "allocated_before_forward": before,
            "allocated_after_forward": after_forward,
            "allocated_after_step": cuda.allocated(),
            "peak": cuda.peak(),
        }
    optimizer.zero_grad(set_to_none=True)
    return StepMeasurement(
        weights=weights,
        gradients=grads,
        optimizer=states,
        activations=meter.bytes,
        loss=float(loss.detach()),
        seconds=seconds,
        cuda=cuda_figures,
        saved_by_shape=dict(meter.by_shape),
    )
