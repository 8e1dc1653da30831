"""Tiny Llama checkpoints for the chapter 5 tests (random weights, saved as safetensors like the real `chat`)."""

from __future__ import annotations

from pathlib import Path

import torch

TINY = dict(
    vocab_size=256,
    hidden_size=64,
    intermediate_size=160,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    tie_word_embeddings=True,
    max_position_embeddings=256,
)


def save_tiny(path: Path, seed: int = 0, **overrides) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.manual_seed(seed)
    LlamaForCausalLM(LlamaConfig(**{**TINY, **overrides})).save_pretrained(path)
    return path
