"""Chapter 2: one tiny from-scratch transformer block run on a real sentence, every intermediate kept.

Token vectors come from a seeded random embedding table (the block is untrained: the lesson is the data flow and
the shapes, not what a trained model attends to; the real-model heatmaps show that).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.core.textinput import InputError
from engine.lm.attention import BlockConfig, TransformerBlock, attention_steps, mask_pattern, split_heads
from engine.lm.positions import sinusoidal_positions

MAX_TOKENS = 16  # the matrices are drawn cell by cell; more than this is unreadable
MAX_EMBD = 64


@dataclass
class Walkthrough:
    tokens: list[str]
    config: BlockConfig
    steps: dict[str, torch.Tensor]  # one head: x, q, k, v, scores, scaled, masked, weights, out, mask
    head_shapes: list[tuple[str, tuple[int, ...]]]  # multi-head split/merge, in order
    block: dict[str, torch.Tensor]  # TransformerBlock(return_steps=True), batch dim removed
    truncated_tokens: int


@torch.no_grad()
def attention_walkthrough(
    tokens: list[str],
    n_embd: int = 16,
    n_head: int = 2,
    *,
    causal: bool = True,
    mask_kind: str | None = None,
    seed: int = 0,
) -> Walkthrough:
    if not tokens:
        raise InputError("attention.no_tokens")
    n_embd = max(2, min(int(n_embd), MAX_EMBD))
    n_head = max(1, int(n_head))
    if n_embd % n_head:
        raise InputError("attention.heads_do_not_divide", n_embd=n_embd, n_head=n_head)
    dropped = max(0, len(tokens) - MAX_TOKENS)
    tokens = tokens[:MAX_TOKENS]
    T = len(tokens)
    torch.manual_seed(seed)
    # bias=False (as in Llama): then head 0 computed by hand below is exactly the module's head 0
    config = BlockConfig(n_embd=n_embd, n_head=n_head, bias=False)
    block = TransformerBlock(config, fused_qkv=False).eval()
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    table = torch.randn(len(vocab), n_embd)  # (V, C) the embedding lookup table
    ids = torch.tensor([vocab[t] for t in tokens])
    x = table[ids] + sinusoidal_positions(T, n_embd)  # (T, C) token vector + position vector
    mask = mask_pattern(mask_kind, T) if mask_kind else None

    # Head 0 by hand: its slice of the Q/K/V projections (a Linear weight is (out, in), hence .T).
    D = config.head_dim
    Wq = block.attn.q_proj.weight[:D].T  # (C, D)
    Wk = block.attn.k_proj.weight[:D].T  # (C, D)
    Wv = block.attn.v_proj.weight[:D].T  # (C, D)
    ln1 = block.ln_1(x[None])[0]  # (T, C): the block normalizes before attention (pre-LN)
    steps = attention_steps(ln1, Wq, Wk, Wv, causal=causal, mask=mask).as_dict()

    q, _, v = block.attn.qkv(ln1[None])  # 2 x (1, T, C)
    shapes = [
        ("x (B, T, C)", tuple(x[None].shape)),
        ("q = x·Wq (B, T, C)", tuple(q.shape)),
        ("split_heads(q) (B, H, T, D)", tuple(split_heads(q, n_head).shape)),
        ("scores = q·kᵀ/√D (B, H, T, T)", (1, n_head, T, T)),
        ("weights·v (B, H, T, D)", tuple(split_heads(v, n_head).shape)),
        ("merge_heads (B, T, C)", (1, T, n_embd)),
    ]
    result = block(x[None], causal=causal, return_steps=True, mask=mask)
    block_steps = {name: t[0] for name, t in result.items() if t is not None}
    return Walkthrough(tokens, config, steps, shapes, block_steps, dropped)
