"""Chapter 2: attention weights of a real model (any layer/head, or the average over heads)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.core.textinput import clean_text
from engine.lm.language_model import visible
from engine.models.loading import LoadedLM

MAX_TOKENS = 128  # a 128x128 heatmap is still readable; longer text is cut and the page says so


@dataclass
class AttentionMap:
    tokens: list[str]  # axis labels, whitespace made visible
    matrix: list[list[float]]  # (T, T): row = query position, column = key position
    layer: int
    head: int | None  # None = average over heads
    n_layers: int
    n_heads: int
    truncated_tokens: int


@torch.no_grad()
def model_attention(lm: LoadedLM, text: str, layer: int = 0, head: int | None = 0) -> AttentionMap:
    cleaned = clean_text(text, max_chars=5_000)
    ids = lm.tokenizer(cleaned.text, add_special_tokens=True)["input_ids"]
    dropped = max(0, len(ids) - MAX_TOKENS)
    ids = ids[:MAX_TOKENS]
    out = lm.model(torch.tensor([ids], device=lm.device), output_attentions=True)
    attentions = out.attentions  # n_layers x (1, H, T, T)
    n_layers, n_heads = len(attentions), attentions[0].shape[1]
    layer = max(0, min(int(layer), n_layers - 1))
    att = attentions[layer][0].float()  # (H, T, T)
    if head is None:
        mat = att.mean(dim=0)
    else:
        head = max(0, min(int(head), n_heads - 1))
        mat = att[head]
    labels = [visible(lm.tokenizer.decode([i])) for i in ids]
    return AttentionMap(labels, mat.cpu().tolist(), layer, head, n_layers, n_heads, dropped)
