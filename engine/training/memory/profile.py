"""Estimate and measurement side by side, for each (mode, batch) setting — what `python -m engine memory` prints.

Each setting is first estimated from the model's config (instant). A setting whose estimate does not fit in the
memory this machine has free, or whose numbers are absurd, is refused with the estimate shown, before any model
is loaded. The others are measured on one real training step (engine.training.memory.measure). Rows are handed to
`on_row` as they finish, so a run cancelled halfway keeps every finished row.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from engine.core.errors import UserError
from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError, parse_numbers
from engine.training.finetune import check_shape, dummy_batch, load_training_model, make_optimizer, model_config
from engine.training.lora import LoraSpec, QuantSpec
from engine.training.memory.estimate import COMPONENTS, MODES, Breakdown, ModelShape, estimate_breakdown
from engine.training.memory.measure import Diverged, measure_step

# A step needs more than the four components for a moment (the logits' gradient, matmul workspaces, the
# allocator's slack); refuse unless the estimate leaves this much room.
HEADROOM = 1.3
GIB = 1024**3


class MemoryRefused(UserError):
    """The setting would not fit in memory; the message carries the estimate."""

    default_code = "memory.refused"

    def __init__(self, message: str, estimate: Breakdown, **fmt) -> None:
        super().__init__(message, **fmt)
        self.estimate = estimate


def gib(n: float | None) -> str:
    return "—" if n is None else f"{n / GIB:.3f} GiB" if n >= GIB / 10 else f"{n / 1024**2:.1f} MiB"


def available_memory_bytes(device: str = "cpu") -> int:
    """Free memory the next step can use: the GPU's free memory on CUDA, otherwise the machine's available RAM."""
    if device.startswith("cuda") and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info()
        return int(free)
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # psutil is optional: POSIX sysconf gives the free pages
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def check_fits(estimate: Breakdown, label: str, available: int | None = None) -> None:
    """Raise MemoryRefused (a ValueError) when `estimate` does not fit in `available` bytes with headroom."""
    available = available_memory_bytes() if available is None else available
    needed = estimate.total * HEADROOM
    if needed > available:
        parts = ", ".join(f"{c} {gib(getattr(estimate, c))}" for c in COMPONENTS)
        raise MemoryRefused(
            "memory.does_not_fit",
            estimate,
            label=label,
            total=gib(estimate.total),
            parts=parts,
            headroom=HEADROOM,
            needed=gib(needed),
            available=gib(available),
        )


@dataclass
class MemoryRow:
    """One setting: the estimate always; the measurement unless refused, diverged or cancelled."""

    model: str
    mode: str
    batch: int
    seq_len: int
    checkpointing: bool
    estimated: dict[str, int]
    measured: dict[str, int] | None = None
    trainable_params: int | None = None
    total_params: int | None = None
    loss: float | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    cuda: dict[str, int] | None = None
    device: str = "cpu"
    refused: str | None = None
    error: str | None = None

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "mode": self.mode,
            "batch": self.batch,
            "seq_len": self.seq_len,
            "checkpointing": self.checkpointing,
            "estimated": self.estimated,
            "measured": self.measured,
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "loss": self.loss,
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            "cuda": self.cuda,
            "device": self.device,
            "refused": self.refused,
            "error": self.error,
        }

    def ratio(self, component: str) -> float | None:
        """estimated / measured for one component (1.0 = exact)."""
        if not self.measured or not self.measured.get(component):
            return None
        return self.estimated[component] / self.measured[component]


@dataclass
class ProfileResult:
    rows: list[MemoryRow] = field(default_factory=list)
    cancelled: bool = False


def parse_list(text: str | Iterable, cast=str) -> list:
    """'1,4' -> [1, 4]; also accepts a list. Bad items raise InputError (a ValueError) with the item named.
    Numbers go through engine.core.textinput.parse_numbers; names (cast=str) are split on commas."""
    if cast in (int, float):
        return parse_numbers(text, cast, name="list")
    items = [x.strip() for x in text.split(",")] if isinstance(text, str) else list(text)
    out = []
    for item in items:
        if item == "":
            continue
        try:
            out.append(cast(item))
        except (TypeError, ValueError):
            raise InputError("memory.cannot_read", value=item, type=cast.__name__) from None
    if not out:
        raise InputError("input.empty_list", name="list", example="full,lora", value="")
    return out


def model_label(source: str | Path) -> str:
    return source.name if isinstance(source, Path) else str(source)


def estimate_rows(
    source: str | Path,
    modes: list[str],
    batches: list[int],
    seq_len: int,
    lora: LoraSpec | None = None,
    quant: QuantSpec | None = None,
    checkpointing: bool = False,
    device: str = "cpu",
) -> list[MemoryRow]:
    """Estimates only (no model is loaded): what the calculator on the page shows instantly."""
    shape = ModelShape.from_config(model_config(source), name=model_label(source))
    rows = []
    for mode in modes:
        if mode not in MODES:
            raise InputError("memory.unknown_mode", choices=list(MODES), value=mode)
        for batch in batches:
            check_shape(batch, seq_len)
            est = estimate_breakdown(
                shape,
                mode,
                batch,
                seq_len,
                lora,
                quant,
                checkpointing,
                device="cpu" if not device.startswith("cuda") else "cuda",
            )
            rows.append(
                MemoryRow(model_label(source), mode, batch, seq_len, checkpointing, est.as_dict(), device=device)
            )
    return rows


def memory_profile(
    source: str | Path,
    modes: list[str],
    batches: list[int],
    seq_len: int = 64,
    lora: LoraSpec | None = None,
    quant: QuantSpec | None = None,
    checkpointing: bool = False,
    device: str | None = None,
    seed: int = 0,
    available: int | None = None,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] = lambda: False,
    on_row: Callable[[MemoryRow], None] | None = None,
) -> ProfileResult:
    """Estimate, then measure, every (mode, batch) setting; one model load per mode."""
    from engine.core.config import get_settings
    from engine.training.lora import parameter_counts

    device = device or get_settings().device
    lora = lora or LoraSpec()
    planned = estimate_rows(source, modes, batches, seq_len, lora, quant, checkpointing, device)
    result = ProfileResult()
    total = len(planned)

    def emit(row: MemoryRow) -> None:
        result.rows.append(row)
        if on_row:
            on_row(row)

    try:
        by_mode: dict[str, list[MemoryRow]] = {}
        for row in planned:
            by_mode.setdefault(row.mode, []).append(row)
        done = 0
        for mode, rows in by_mode.items():
            runnable = []
            for row in rows:
                try:
                    check_fits(
                        Breakdown(**row.estimated),
                        f"{mode} training at batch {row.batch} × {row.seq_len} tokens",
                        available,
                    )
                    runnable.append(row)
                except MemoryRefused as exc:
                    row.refused = str(exc)
                    emit(row)
                    done += 1
            if not runnable:
                continue
            if should_stop():
                raise Cancelled
            progress(done / total, f"loading {model_label(source)} for {mode}")
            model = load_training_model(source, mode, lora, quant, checkpointing, device=device)
            counts = parameter_counts(model)
            vocab = model.config.vocab_size
            for row in runnable:
                if should_stop():
                    raise Cancelled
                progress(done / total, f"measuring {mode}, batch {row.batch}")
                batch = dummy_batch(vocab, row.batch, row.seq_len, seed=seed, device=str(model.device))
                try:
                    m = measure_step(model, batch, make_optimizer(model))
                    row.measured, row.loss, row.seconds, row.cuda = m.as_dict(), m.loss, m.seconds, m.cuda
                except Diverged as exc:
                    row.error = f"diverged: {exc}"
                row.trainable_params, row.total_params = counts["trainable"], counts["total"]
                emit(row)
                done += 1
                progress(done / total, f"{mode}, batch {row.batch}: done")
            del model
            gc.collect()
    except Cancelled:
        result.cancelled = True
    return result
