"""Chapter 2: attention weights of a real model (any layer/head, or the average over heads).

One forward pass gives every layer's weights (`model_attentions`); picking a layer and a head from them is instant,
so a page runs the model once per text and moves its sliders over the kept result.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import clean_text
from engine.lm.language_model import visible
from engine.lm.token_display import token_labels
from engine.models.loading import LoadedLM

MAX_TOKENS = 128  # a 128x128 heatmap is still readable; longer text is cut and the page says so


@dataclass
class AttentionMap:
    tokens: list[str]  # axis labels, whitespace made visible, byte pieces as "안 (1/3)"
    matrix: list[list[float]]  # (T, T): row = query position, column = key position
    layer: int
    head: int | None  # None = average over heads
    n_layers: int
    n_heads: int
    truncated_tokens: int


@dataclass
class AttentionStack:
    """Every layer's attention weights for one text."""

    tokens: list[str]
    weights: torch.Tensor  # (L, H, T, T) on the CPU
    truncated_tokens: int

    def pick(self, layer: int = 0, head: int | None = 0) -> AttentionMap:
        """One layer's map for one head, or the mean over heads (head=None); out-of-range values are clamped."""
        n_layers, n_heads = self.weights.shape[0], self.weights.shape[1]
        layer = max(0, min(int(layer), n_layers - 1))
        att = self.weights[layer]  # (H, T, T)
        if head is None:
            mat = att.mean(dim=0)
        else:
            head = max(0, min(int(head), n_heads - 1))
            mat = att[head]
        return AttentionMap(self.tokens, mat.tolist(), layer, head, n_layers, n_heads, self.truncated_tokens)


def _layers(model) -> list:
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    return list(getattr(decoder, "layers", []))


@torch.no_grad()
def model_attentions(
    lm: LoadedLM, text: str, progress: ProgressFn = null_progress, should_stop=lambda: False
) -> AttentionStack:
    """Run the model once with output_attentions and keep all layers. Reports progress after each layer (a
    forward hook; 2-10 s on 2 CPU cores for 20-128 tokens) and raises Cancelled there when asked to stop."""
    cleaned = clean_text(text, max_chars=5_000)
    ids = lm.tokenizer(cleaned.text, add_special_tokens=True)["input_ids"]
    dropped = max(0, len(ids) - MAX_TOKENS)
    ids = ids[:MAX_TOKENS]
    layers = _layers(lm.model)

    def after_layer(i: int):
        def hook(*_):
            if should_stop():
                raise Cancelled("attention map stopped")
            progress((i + 1) / len(layers), f"{i + 1}/{len(layers)}")

        return hook

    handles = [layer.register_forward_hook(after_layer(i)) for i, layer in enumerate(layers)]
    try:
        # the decoder alone: its attentions are the model's, without the (V, C) output projection
        decoder = lm.model.get_decoder() if hasattr(lm.model, "get_decoder") else lm.model
        out = decoder(torch.tensor([ids], device=lm.device), output_attentions=True)
    finally:
        for h in handles:
            h.remove()
    weights = torch.stack([a[0].float().cpu() for a in out.attentions])  # (L, H, T, T)
    return AttentionStack(token_labels(lm.tokenizer, ids, mark=visible), weights, dropped)


def model_attention(lm: LoadedLM, text: str, layer: int = 0, head: int | None = 0) -> AttentionMap:
    """One layer/head (head=None: the mean over heads) of `model_attentions`."""
    return model_attentions(lm, text).pick(layer, head)
