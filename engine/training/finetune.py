"""Full fine-tuning, LoRA and QLoRA set up the same way, so their memory and a few training steps compare fairly.

- full: every weight in fp32 trains (AdamW keeps two fp32 states per weight).
- lora: the fp32 base is frozen; peft adds LoRA adapters (only they train).
- qlora: the base is loaded in 4 bits with bitsandbytes (`BitsAndBytesConfig(load_in_4bit=True, nf4)`),
  prepared with peft's `prepare_model_for_kbit_training`, then given the same adapters.

Models come from a directory of safetensors weights: `chat` is SmolLM2-135M-Instruct converted from the packaged
GGUF once (engine.models.loading), `tiny` is a small random Llama of the same family made here (for fast demos
and tests). The data is what the book's chapter 5 uses for its memory experiments: random token ids.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from engine.core.config import get_settings
from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.training.lora import LoraSpec, QuantSpec, add_lora, bnb_config, guard_bnb_cpu_packing

SOURCES = ("chat", "tiny")
# A small Llama with SmolLM2's vocabulary and head layout (GQA 2:1), for runs that finish in seconds.
TINY_CONFIG = dict(
    vocab_size=49152,
    hidden_size=128,
    intermediate_size=384,
    num_hidden_layers=6,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=32,
    tie_word_embeddings=True,
    max_position_embeddings=2048,
    rms_norm_eps=1e-5,
)
MAX_BATCH = 1024
MAX_SEQ_LEN = 4096


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def tiny_dir() -> Path:
    return get_settings().cache_dir / "models" / "ch05-tiny-llama"


def ensure_tiny(seed: int = 0) -> Path:
    """Write the tiny random Llama once (a few MB of safetensors); later calls return its directory."""
    from transformers import LlamaConfig, LlamaForCausalLM

    target = tiny_dir()
    if (target / "config.json").exists():
        return target
    _quiet_transformers()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**TINY_CONFIG))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".tmp-{time.time_ns()}")
    model.save_pretrained(tmp, safe_serialization=True)
    if target.exists():
        import shutil

        shutil.rmtree(tmp)
    else:
        tmp.rename(target)
    return target


def model_dir(source: str | Path, progress: ProgressFn = null_progress) -> Path:
    """A local safetensors directory for `chat`, `tiny`, or a path given directly (tests)."""
    if isinstance(source, Path):
        return source
    if source == "tiny":
        return ensure_tiny()
    if source == "chat":
        from engine.models.loading import converted_dir, load_tokenizer

        target = converted_dir("chat")
        if not (target / "config.json").exists():
            load_tokenizer("chat", progress)  # converts the packaged GGUF once
        return target
    raise InputError("training.unknown_model", value=source, choices=list(SOURCES))


def model_config(source: str | Path):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model_dir(source))


def load_training_model(
    source: str | Path,
    mode: str,
    lora: LoraSpec | None = None,
    quant: QuantSpec | None = None,
    checkpointing: bool = False,
    device: str = "cpu",
    progress: ProgressFn = null_progress,
):
    """The model ready to train in `mode` (train() mode, eager attention, fp32 compute) on `device`."""
    from transformers import AutoModelForCausalLM

    if mode not in ("full", "lora", "qlora"):
        raise InputError("training.unknown_mode", value=mode)
    _quiet_transformers()
    path = model_dir(source, progress)
    lora = lora or LoraSpec()
    kwargs = dict(dtype=torch.float32, attn_implementation="eager")
    if mode == "qlora":
        progress(0.1, "loading the base in 4 bits (bitsandbytes NF4)")
        kwargs["quantization_config"] = bnb_config(quant or QuantSpec())
        kwargs["device_map"] = {"": device}  # bitsandbytes quantizes while placing the weights
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        if mode != "qlora":
            model.to(device)
        model.config.use_cache = False  # a training step has no KV cache
        if mode == "qlora":
            from peft import prepare_model_for_kbit_training

            guard_bnb_cpu_packing(model)
            # checkpointing is a separate switch here, so QLoRA's saving is not mixed up with recomputation
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        if checkpointing:
            enable_checkpointing(model)
        if mode in ("lora", "qlora"):
            model = add_lora(model, lora)
    model.train()
    return model


def enable_checkpointing(model) -> None:
    """Gradient (activation) checkpointing on every decoder layer, the book's `gradient_checkpointing_enable()`.

    transformers 5 calls it `activation_checkpointing_enable` and uses PyTorch's non-reentrant checkpoint, which
    needs no `enable_input_require_grads` trick for frozen embeddings (LoRA).
    """
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enable()


def disable_checkpointing(model) -> None:
    disable = getattr(model, "activation_checkpointing_disable", None) or model.gradient_checkpointing_disable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        disable()


def dummy_batch(vocab: int, batch: int, seq_len: int, seed: int = 0, device: str = "cpu") -> dict[str, torch.Tensor]:
    """The book's `make_dummy_dataset`: random token ids, labels = inputs (memory does not depend on content)."""
    check_shape(batch, seq_len)
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(min(100, vocab - 1), vocab, (batch, seq_len), generator=gen)
    ids = ids.to(device)
    return {"input_ids": ids, "labels": ids}


def check_shape(batch: int, seq_len: int) -> None:
    if not 1 <= int(batch) <= MAX_BATCH:
        raise InputError("training.bad_batch", limit=MAX_BATCH, value=batch)
    if not 2 <= int(seq_len) <= MAX_SEQ_LEN:
        raise InputError("training.bad_seq_len", limit=MAX_SEQ_LEN, value=seq_len)


def trainable(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def make_optimizer(model, lr: float = 1e-4) -> torch.optim.AdamW:
    if not (math.isfinite(lr) and 0 < lr <= 1e4):
        raise InputError("training.bad_lr", value=lr)
    return torch.optim.AdamW(trainable(model), lr=lr)


@dataclass
class TrainLog:
    """A few optimizer steps: the loss per finished step, and why the run ended early if it did."""

    mode: str
    lr: float
    losses: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    diverged_at: int | None = None  # step whose loss or gradient was NaN/inf; training stopped before updating
    cancelled: bool = False

    @property
    def finished_steps(self) -> int:
        return len(self.losses)

    def as_dict(self) -> dict:
        return {
            "mode": self.mode,
            "lr": self.lr,
            "losses": self.losses,
            "seconds": self.seconds,
            "diverged_at": self.diverged_at,
            "cancelled": self.cancelled,
        }


def train_steps(
    model,
    batch: dict[str, torch.Tensor],
    steps: int,
    lr: float,
    mode: str = "",
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] = lambda: False,
    on_step: Callable[[TrainLog], None] | None = None,
) -> TrainLog:
    """Run `steps` AdamW steps on one batch (a model should memorise it: the loss must fall).

    A NaN or infinite loss or gradient stops the run *before* the bad update and is reported as `diverged_at`;
    a cancel (should_stop() or a progress callback raising Cancelled) keeps the finished steps.
    """
    if not 1 <= steps <= 1000:
        raise InputError("input.out_of_range", name="steps", low=1, high=1000, value=steps)
    optimizer = make_optimizer(model, lr)
    log = TrainLog(mode=mode, lr=lr)
    model.train()
    try:
        for step in range(1, steps + 1):
            if should_stop():
                log.cancelled = True
                break
            start = time.perf_counter()
            loss = model(**batch).loss
            bad = not torch.isfinite(loss)
            if not bad:
                loss.backward()
                bad = any(p.grad is not None and not torch.isfinite(p.grad).all() for p in trainable(model))
            if bad:
                log.diverged_at = step
                optimizer.zero_grad(set_to_none=True)
                break
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            log.losses.append(float(loss.detach()))
            log.seconds.append(time.perf_counter() - start)
            if on_step:
                on_step(log)
            progress(step / steps, f"{mode} step {step}/{steps}: loss {log.losses[-1]:.3f}")
    except Cancelled:
        log.cancelled = True
    return log
