"""Measured memory: exact byte counts of the tensors a training step keeps alive.

On a CPU there is no allocator counter like `torch.cuda.max_memory_allocated`, so we count tensors directly:
- weights: every parameter's storage (and, for 4-bit weights, the quantization constants that belong to it),
- gradients: every `.grad` after `backward()`,
- optimizer states: every tensor in `optimizer.state` after one `step()`,
- activations: every tensor autograd saves for the backward pass, seen through
  `torch.autograd.graph.saved_tensors_hooks`.

Tensors are counted by their storage, once: a view (`x.view(...)`, `x.t()`) shares its base's storage, and autograd
often saves views, so counting `numel * element_size` per saved tensor would count the same bytes twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch


def _storage_key(t: torch.Tensor) -> tuple[int, int] | None:
    storage = t.untyped_storage()
    if storage.nbytes() == 0:
        return None
    return (storage.data_ptr(), storage.nbytes())


class StorageCounter:
    """Adds up tensor bytes, each underlying storage once."""

    def __init__(self, exclude: Iterable[torch.Tensor] = ()) -> None:
        self._seen: set[tuple[int, int]] = set()
        self._excluded = {k for k in (_storage_key(t) for t in exclude) if k is not None}
        self.bytes = 0
        self.tensors = 0

    def add(self, t: torch.Tensor | None) -> None:
        if t is None or not isinstance(t, torch.Tensor) or t.is_meta:
            return
        key = _storage_key(t)
        if key is None or key in self._seen or key in self._excluded:
            return
        self._seen.add(key)
        self.bytes += key[1]
        self.tensors += 1


def quant_state_tensors(param: torch.Tensor) -> list[torch.Tensor]:
    """bitsandbytes 4-bit weights keep their scales (absmax), code book and, with double quantization, a second
    level of them next to the packed uint8 data. They are part of what the weights cost."""
    qs = getattr(param, "quant_state", None)
    if qs is None:
        return []
    out = [qs.absmax, qs.code]
    if getattr(qs, "nested", False):
        out += [qs.offset, qs.state2.absmax, qs.state2.code]
    return [t for t in out if isinstance(t, torch.Tensor)]


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of all parameters (tied weights once), plus 4-bit quantization constants."""
    counter = StorageCounter()
    for p in model.parameters():
        counter.add(p)
        for t in quant_state_tensors(p):
            counter.add(t)
    return counter.bytes


def gradient_bytes(model: torch.nn.Module) -> int:
    """Bytes of every `.grad` (call after `backward()`; None grads cost nothing)."""
    counter = StorageCounter()
    for p in model.parameters():
        counter.add(p.grad)
    return counter.bytes


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of every tensor the optimizer keeps per parameter (AdamW: exp_avg, exp_avg_sq and a `step` counter)."""
    counter = StorageCounter()
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                counter.add(value)
    return counter.bytes


@dataclass
class ActivationMeter:
    """Counts what autograd saves for backward while the context is open (parameters excluded: they are weights).

    with ActivationMeter(model) as meter:
        loss = model(**batch).loss
    meter.bytes  # activation bytes that stay alive until backward
    """

    model: torch.nn.Module | None = None
    bytes: int = 0
    tensors: int = 0
    by_shape: dict[str, int] = field(default_factory=dict)
    _counter: StorageCounter | None = None
    _hooks: object = None

    def __enter__(self) -> ActivationMeter:
        params = list(self.model.parameters()) if self.model is not None else []
        self._counter = StorageCounter(exclude=params)

        def pack(t: torch.Tensor) -> torch.Tensor:
            before = self._counter.bytes
            self._counter.add(t)
            added = self._counter.bytes - before
            if added:
                key = f"{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}"
                self.by_shape[key] = self.by_shape.get(key, 0) + added
            return t

        self._hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
        self.bytes = self._counter.bytes
        self.tensors = self._counter.tensors


@dataclass
class CudaMeter:
    """On a GPU the allocator counts for us: bytes allocated now, and the peak since `reset()`."""

    device: torch.device

    @property
    def available(self) -> bool:
        return self.device.type == "cuda" and torch.cuda.is_available()

    def reset(self) -> None:
        if self.available:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def allocated(self) -> int | None:
        if not self.available:
            return None
        torch.cuda.synchronize(self.device)
        return int(torch.cuda.memory_allocated(self.device))

    def peak(self) -> int | None:
        if not self.available:
            return None
        torch.cuda.synchronize(self.device)
        return int(torch.cuda.max_memory_allocated(self.device))


@contextmanager
def timed(out: dict, key: str):
    """Wall time of a block into out[key] (seconds)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        out[key] = time.perf_counter() - start
