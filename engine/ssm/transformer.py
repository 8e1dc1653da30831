"""The comparison model: a tiny causal Transformer with as many weights as the tiny Mamba.

It is transformers' Llama architecture (RMSNorm, rotary positions, SwiGLU MLP) with a tiny random config, so it
1) runs at any length (rotary positions have no table to run out of, unlike GPT-2's learned positions, which would
   make "accuracy at 4× the trained length" impossible rather than bad), and
2) generates with a real KV cache (`DynamicCache`): the memory the benchmark measures grows by
   2 × n_layer × d_model numbers per token, while Mamba's state stays the same size.

The MLP width is chosen so the parameter count matches a given Mamba within a few per cent (`matched_spec`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.core.errors import UserError

MAX_POSITIONS = 8192  # as MambaLM: longer inputs are refused, not attempted


@dataclass(frozen=True)
class TransformerSpec:
    vocab_size: int = 16
    d_model: int = 32
    n_layer: int = 2
    n_head: int = 4
    d_ff: int = 45  # the SwiGLU MLP's hidden width (three d_model × d_ff matrices)

    def to_hf_config(self):
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.d_model,
            intermediate_size=self.d_ff,
            num_hidden_layers=self.n_layer,
            num_attention_heads=self.n_head,
            num_key_value_heads=self.n_head,
            max_position_embeddings=MAX_POSITIONS,
            tie_word_embeddings=True,  # as Mamba: one matrix reads and writes tokens
            use_cache=False,
        )


def count_params(model: nn.Module) -> int:
    """Distinct parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def spec_params(spec: TransformerSpec) -> int:
    """Weights of a `TinyTransformer(spec)` without building it: per layer 4 d² attention + 3 d·d_ff MLP + 2 norms."""
    d = spec.d_model
    return spec.vocab_size * d + spec.n_layer * (4 * d * d + 3 * d * spec.d_ff + 2 * d) + d


def matched_spec(target_params: int, vocab_size: int, d_model: int, n_layer: int, n_head: int = 4) -> TransformerSpec:
    """The Transformer of this width and depth whose MLP width brings it closest to `target_params` weights."""
    d = d_model
    fixed = vocab_size * d + n_layer * (4 * d * d + 2 * d) + d
    d_ff = max(1, round((target_params - fixed) / (3 * d * n_layer)))
    return TransformerSpec(vocab_size=vocab_size, d_model=d_model, n_layer=n_layer, n_head=n_head, d_ff=d_ff)


class TinyTransformer(nn.Module):
    """Causal Transformer LM: `forward(ids) -> logits`, and `prefill` / `step` with a growing KV cache."""

    def __init__(self, spec: TransformerSpec) -> None:
        super().__init__()
        from transformers import LlamaForCausalLM

        if spec.d_model % spec.n_head:
            raise UserError("ssm.train.bad_heads", d_model=spec.d_model, n_head=spec.n_head)
        self.spec = spec
        self.model = LlamaForCausalLM(spec.to_hf_config())

    def _check(self, input_ids: torch.Tensor) -> None:
        if input_ids.dim() != 2 or not 1 <= input_ids.shape[1] <= MAX_POSITIONS:
            raise UserError("ssm.bench.bad_length", value=int(input_ids.shape[-1]), limit=MAX_POSITIONS)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, L, V)"""
        self._check(input_ids)
        return self.model(input_ids=input_ids, use_cache=False).logits

    def prefill(self, input_ids: torch.Tensor):
        """The context in one pass: logits (B, L, V) and the KV cache holding every position's keys and values."""
        self._check(input_ids)
        out = self.model(input_ids=input_ids, use_cache=True)
        return out.logits, out.cache

    def step(self, token_ids: torch.Tensor, cache):
        """One new token per sequence (B,) -> logits (B, V); the cache grows by one position (in place)."""
        out = self.model(input_ids=token_ids.unsqueeze(1), cache=cache, use_cache=True)
        return out.logits[:, -1], out.cache


def cache_nbytes(cache) -> int:
    """Bytes actually held by a KV cache's key and value tensors (measured, not computed from a formula)."""
    total = 0
    for layer in cache.layers:
        for t in (layer.keys, layer.values):
            if t is not None:
                total += t.numel() * t.element_size()
    return total


def cache_drop_last(cache, n: int = 1) -> None:
    """Forget the last `n` positions (so a benchmark can time the same step again from the same context)."""
    cache.crop(-n)
