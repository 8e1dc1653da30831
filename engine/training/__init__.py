"""Training helpers shared by the chapters that train something (ch.3 classifier, ch.4 alignment).

`callbacks` is the one place that turns a training step into progress, metric rows, cancellation and divergence
checks — for plain PyTorch loops and for 🤗 Trainer-based ones (Trainer, SFTTrainer, RewardTrainer, DPOTrainer).
"""

from __future__ import annotations

import contextlib
import os


def train_device() -> str:
    """Where in-process training runs: the LLMLAB_DEVICE setting (cuda when available, else cpu)."""
    from engine.config import get_settings

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

    want = n or int(os.environ.get("LLMLAB_TRAIN_THREADS", "1"))
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, want))
    try:
        yield
    finally:
        torch.set_num_threads(before)
