"""Training, chapters 3 and 5, and the helpers every chapter that trains shares.

- `hf_basics`, `classifier`: a Korean dataset, tokenizer and model the 🤗 way; Trainer vs a plain loop.
- `finetune`, `lora`: full / LoRA / QLoRA training steps, adapters, merging (bitsandbytes on CPU).
- `checkpointing`, `grad_accumulation`: activation checkpointing and gradient accumulation, measured.
- `memory/`: training memory estimated from the shape vs measured from the tensors; ZeRO; the book's figures.
- `callbacks`: the one place that turns a training step into progress, metric rows, cancellation and divergence
  checks — for plain PyTorch loops and for 🤗 Trainer-based ones (Trainer, SFTTrainer, RewardTrainer, DPOTrainer).
"""

from __future__ import annotations

import contextlib


def train_device() -> str:
    """Where in-process training runs: the LLMLAB_DEVICE setting (cuda when available, else cpu)."""
    from engine.core.config import get_settings

    return get_settings().device


def use_cpu() -> bool:
    """For 🤗 TrainingArguments(use_cpu=...): keep Trainer on the CPU unless the configured device is CUDA."""
    return not train_device().startswith("cuda")


@contextlib.contextmanager
def training_threads(n: int | None = None):
    """Run a tiny model on one CPU thread (or `n`, or LLMLAB_TRAIN_THREADS), restoring the setting afterwards.

    A model with a few hundred thousand weights does too little work per operation to pay for waking a second
    thread; on a busy 2-core machine, two threads made these runs ~10× slower, one thread never did.
    """
    import torch

    from engine.core.config import get_settings

    want = n or get_settings().train_threads
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, want))
    try:
        yield
    finally:
        torch.set_num_threads(before)


# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face  # noqa: E402

_LAZY = {
    "CANCELLED": "callbacks",
    "COMPONENTS": "memory.estimate",
    "ClassifierConfig": "classifier",
    "DIVERGED": "callbacks",
    "FINISHED": "callbacks",
    "LLAMA_LINEARS": "lora",
    "LoraSpec": "lora",
    "MODES": "memory.estimate",
    "ModelShape": "memory.estimate",
    "QuantSpec": "lora",
    "STAGE_NAMES": "memory.zero",
    "accumulation_view": "efficient_report",
    "available_memory_bytes": "memory.profile",
    "book_comparison": "memory.book",
    "book_lines": "efficient_report",
    "book_reference": "memory.book",
    "checkpointing_lines": "efficient_report",
    "classify": "classifier",
    "classify_lines": "classifier_report",
    "compare_checkpointing": "checkpointing",
    "compare_loops": "classifier",
    "count_parameters": "memory.estimate",
    "dataset_examples": "classifier_report",
    "dataset_overview": "hf_basics",
    "dummy_batch": "finetune",
    "estimate_rows": "memory.profile",
    "estimated_weight_bytes": "memory.estimate:weight_bytes",
    "first_texts": "classifier_report",
    "load_training_model": "finetune",
    "loaded_weights": "efficient_report",
    "loop_status": "classifier_report",
    "loop_summary": "classifier_report",
    "loops_from_shipped": "classifier_report",
    "lora_merge_demo": "efficient_report",
    "lora_parameter_count": "memory.estimate",
    "lora_view": "efficient_report",
    "max_params_that_fit": "memory.zero",
    "measured_view": "efficient_report",
    "memory_estimate": "efficient_report",
    "memory_profile": "memory.profile",
    "merge_check": "lora",
    "model_config": "finetune",
    "padded_batch": "hf_basics",
    "parameter_counts": "lora",
    "qlora_weights": "efficient_report",
    "randomize_adapters": "lora",
    "roundtrip_check": "classifier",
    "roundtrip_report": "classifier_report",
    "run_accumulation_demo": "grad_accumulation",
    "shipped_demo": "efficient_report",
    "text_lines": "classifier_report",
    "mode_statuses": "efficient_report",
    "modes_batch": "efficient_report",
    "train_modes": "efficient_report",
    "train_steps": "finetune",
    "train_view": "efficient_report",
    "weight_bytes": "memory.accounting",
    "zero_table": "memory.zero",
    "zero_view": "efficient_report",
}
__all__ = [
    "CANCELLED",
    "COMPONENTS",
    "DIVERGED",
    "FINISHED",
    "LLAMA_LINEARS",
    "MODES",
    "STAGE_NAMES",
    "ClassifierConfig",
    "LoraSpec",
    "ModelShape",
    "QuantSpec",
    "accumulation_view",
    "available_memory_bytes",
    "book_comparison",
    "book_lines",
    "book_reference",
    "checkpointing_lines",
    "classify",
    "classify_lines",
    "compare_checkpointing",
    "compare_loops",
    "count_parameters",
    "dataset_examples",
    "dataset_overview",
    "dummy_batch",
    "estimate_rows",
    "estimated_weight_bytes",
    "first_texts",
    "load_training_model",
    "loaded_weights",
    "loop_status",
    "loop_summary",
    "loops_from_shipped",
    "lora_merge_demo",
    "lora_parameter_count",
    "lora_view",
    "max_params_that_fit",
    "measured_view",
    "memory_estimate",
    "memory_profile",
    "merge_check",
    "mode_statuses",
    "model_config",
    "modes_batch",
    "padded_batch",
    "parameter_counts",
    "qlora_weights",
    "randomize_adapters",
    "roundtrip_check",
    "roundtrip_report",
    "run_accumulation_demo",
    "shipped_demo",
    "text_lines",
    "train_modes",
    "train_steps",
    "train_view",
    "weight_bytes",
    "zero_table",
    "zero_view",
]
__getattr__ = lazy_face(__name__, globals(), _LAZY)
