"""A transformer block from scratch, in small named steps (the style of nanoGPT).

Every piece here is the plain-PyTorch version of something `torch.nn` already has, written out so a page
can show each intermediate tensor. The tests check each piece against the PyTorch original:

    scaled_dot_product_attention  ==  torch.nn.functional.scaled_dot_product_attention
    MultiHeadAttention            ==  torch.nn.MultiheadAttention (weights copied across)
    LayerNorm                     ==  torch.nn.LayerNorm

Shape letters used in the comments:
    B batch, T query positions (time), S key positions (= T in self-attention),
    C model width (n_embd), H heads, D head width (C // H).

Masks are boolean "allowed" masks: True means "this query may look at this key", the same convention as
`torch.nn.functional.scaled_dot_product_attention` (and the opposite of `torch.nn.MultiheadAttention`,
whose boolean `attn_mask` marks the positions to *block*).
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.core.textinput import InputError

__all__ = [
    "MASK_KINDS",
    "AttentionSteps",
    "BlockConfig",
    "FeedForward",
    "LayerNorm",
    "MultiHeadAttention",
    "TransformerBlock",
    "attention_steps",
    "causal_mask",
    "mask_pattern",
    "merge_heads",
    "mlm_vs_clm_example",
    "scaled_dot_product_attention",
    "split_heads",
]


# ---------------------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockConfig:
    """Hyperparameters of one transformer block. The defaults are tiny so a CPU draws every tensor."""

    n_embd: int = 32  # C: width of every token vector flowing through the residual stream
    n_head: int = 4  # H: heads split C into H independent D = C // H wide attention "views"
    dropout: float = 0.0  # 0 for demos and tests: dropout makes outputs random, which hides what we show
    bias: bool = True  # bias in Linear and LayerNorm, as in GPT-2; many newer models (Llama) drop it

    def __post_init__(self) -> None:
        if self.n_embd <= 0 or self.n_head <= 0:
            raise InputError("attention.bad_sizes", n_embd=self.n_embd, n_head=self.n_head)
        if self.n_embd % self.n_head != 0:
            # Heads are equal slices of C; a remainder would leave part of each vector unused.
            raise InputError("attention.heads_do_not_divide", n_embd=self.n_embd, n_head=self.n_head)
        if not 0.0 <= self.dropout < 1.0:
            raise InputError("attention.bad_dropout", value=self.dropout)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


# ---------------------------------------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------------------------------------


def causal_mask(T: int, S: int | None = None, device: torch.device | str | None = None) -> Tensor:
    """(T, S) bool, True on and below the diagonal: query t may see keys 0..t, never the future.

    S defaults to T (self-attention). With S != T the diagonal starts at the top-left corner, the same
    alignment `torch.nn.functional.scaled_dot_product_attention(is_causal=True)` uses.
    """
    S = T if S is None else S
    return torch.ones(T, S, dtype=torch.bool, device=device).tril()


MASK_KINDS: dict[str, str] = {
    "bert": "Encoder (BERT): every token sees every token, both directions.",
    "gpt": "Decoder (GPT): each token sees itself and the tokens before it (causal).",
    "t5-encoder": "T5 encoder: bidirectional, like BERT.",
    "t5-decoder": "T5 decoder self-attention: causal, like GPT.",
    "t5-decoder-cross": "T5 decoder cross-attention: every decoder token sees the whole encoder output.",
    "prefix-lm": "Prefix LM (T5 paper, UniLM): bidirectional inside the prefix, causal after it.",
}


def mask_pattern(kind: str, T: int, prefix: int | None = None) -> Tensor:
    """The (T, T) bool "allowed" mask each architecture uses; row = query position, column = key position.

    - "bert" / "t5-encoder": all True. The encoder reads the whole input at once, so a token may use
      context on both sides (that is what makes it good for understanding, and unable to generate).
    - "gpt" / "t5-decoder": lower triangle. A token may not see the future because at generation time
      the future does not exist yet; training with the same mask lets every position be a next-token
      example in one pass.
    - "t5-decoder-cross": all True. Queries come from the decoder, keys from the encoder output, which is
      fully known before decoding starts, so nothing needs hiding. (Rows are decoder positions, columns
      encoder positions; here both have length T to keep the picture square.)
    - "prefix-lm": the first `prefix` columns are visible to every row (the prompt/input part is read
      bidirectionally); the rest is causal (the part being generated). `prefix` defaults to T // 2.
      prefix=0 gives "gpt", prefix=T gives "bert".
    """
    if kind not in MASK_KINDS:
        raise InputError("attention.unknown_mask", value=kind, choices=sorted(MASK_KINDS))
    if T <= 0:
        raise InputError("attention.bad_t", value=T)
    if kind in ("bert", "t5-encoder", "t5-decoder-cross"):
        return torch.ones(T, T, dtype=torch.bool)
    if kind in ("gpt", "t5-decoder"):
        return causal_mask(T)
    # prefix-lm
    p = T // 2 if prefix is None else prefix
    if not 0 <= p <= T:
        raise InputError("attention.bad_prefix", limit=T, value=p)
    mask = causal_mask(T)
    mask[:, :p] = True  # every query can read the whole prefix
    return mask


# ---------------------------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------------------------


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    causal: bool = False,
    return_weights: bool = True,
    dropout_p: float = 0.0,
) -> tuple[Tensor, Tensor | None]:
    """softmax(Q Kᵀ / √D + mask) V, the formula of "Attention Is All You Need".

    q: (B, H, T, D), k and v: (B, H, S, D). `mask` is a bool "allowed" mask broadcastable to (B, H, T, S).
    Returns (out (B, H, T, D), weights (B, H, T, S)) — weights is None when return_weights is False.

    A query row whose keys are all masked has nothing to attend to; softmax over all -inf is NaN, so
    such rows come out as zeros instead (what PyTorch's own SDPA returns too).
    """
    D = q.size(-1)
    T, S = q.size(-2), k.size(-2)
    scores = q @ k.transpose(-2, -1)  # (B, H, T, D) @ (B, H, D, S) -> (B, H, T, S)
    # Dividing by √D keeps the scores' variance ~1 whatever D is; without it large D gives huge
    # scores, softmax saturates to one-hot and its gradients vanish.
    scores = scores / math.sqrt(D)
    allowed = None
    if causal:
        allowed = causal_mask(T, S, device=q.device)
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError("mask must be a bool tensor (True = allowed)")
        allowed = mask if allowed is None else allowed & mask
    if allowed is not None:
        # -inf becomes exactly 0 after softmax: a blocked key gets no weight at all.
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = F.softmax(scores, dim=-1)  # (B, H, T, S), each row sums to 1 over the keys
    weights = torch.nan_to_num(weights, nan=0.0)  # fully-blocked rows: 0/0 -> 0
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    out = weights @ v  # (B, H, T, S) @ (B, H, S, D) -> (B, H, T, D): a weighted average of value rows
    return out, (weights if return_weights else None)


@dataclass
class AttentionSteps:
    """Every intermediate of one attention head on one sequence, in the order they are computed."""

    x: Tensor  # (T, C) input token vectors
    q: Tensor  # (T, D) queries: "what am I looking for?"
    k: Tensor  # (T, D) keys: "what do I contain?"
    v: Tensor  # (T, D) values: "what do I hand over if chosen?"
    scores: Tensor  # (T, T) raw Q Kᵀ: how well each query matches each key
    scaled: Tensor  # (T, T) scores / √D
    masked: Tensor  # (T, T) scaled, with blocked positions set to -inf
    weights: Tensor  # (T, T) softmax over each row; rows sum to 1
    out: Tensor  # (T, D) weights @ V
    mask: Tensor  # (T, T) bool, True = allowed

    def as_dict(self) -> dict[str, Tensor]:
        return asdict(self)


def attention_steps(
    x: Tensor,
    Wq: Tensor,
    Wk: Tensor,
    Wv: Tensor,
    causal: bool = False,
    mask: Tensor | None = None,
) -> AttentionSteps:
    """One head, one sequence, one step at a time: x (T, C) and weight matrices (C, D) -> AttentionSteps.

    The same arithmetic as `scaled_dot_product_attention`, unbatched, keeping every tensor for display.
    `mask` (T, T) bool is combined with the causal mask when both are given.
    """
    if x.dim() != 2:
        raise ValueError("x must be (T, C)")
    T = x.size(0)
    q = x @ Wq  # (T, C) @ (C, D) -> (T, D)
    k = x @ Wk  # (T, D)
    v = x @ Wv  # (T, D)
    scores = q @ k.T  # (T, T)
    scaled = scores / math.sqrt(q.size(-1))  # (T, T)
    allowed = torch.ones(T, T, dtype=torch.bool, device=x.device)
    if causal:
        allowed = allowed & causal_mask(T, device=x.device)
    if mask is not None:
        allowed = allowed & mask.to(torch.bool)
    masked = scaled.masked_fill(~allowed, float("-inf"))  # (T, T)
    weights = torch.nan_to_num(F.softmax(masked, dim=-1), nan=0.0)  # (T, T)
    out = weights @ v  # (T, D)
    return AttentionSteps(x, q, k, v, scores, scaled, masked, weights, out, allowed)


def split_heads(x: Tensor, n_head: int) -> Tensor:
    """(B, T, C) -> (B, H, T, D): cut each token vector into H slices of width D, one per head.

    The transpose puts H next to B so the matmuls in attention run over (B, H) as one batch.
    """
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)  # (B, T, H, D) -> (B, H, T, D)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, D) -> (B, T, C): the inverse of split_heads, gluing the heads' outputs side by side."""
    B, H, T, D = x.shape
    # transpose makes the memory non-contiguous; view needs contiguous memory.
    return x.transpose(1, 2).contiguous().view(B, T, H * D)


class MultiHeadAttention(nn.Module):
    """H heads of attention in parallel, then one Linear to mix what the heads found.

    fused_qkv=True keeps Q, K and V in one (C -> 3C) Linear as GPT-2/nanoGPT do (one matmul is faster
    than three); fused_qkv=False uses three Linears as Llama/BERT code does. Same math either way.
    """

    def __init__(self, config: BlockConfig, fused_qkv: bool = True) -> None:
        super().__init__()
        C = config.n_embd
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.fused_qkv = fused_qkv
        if fused_qkv:
            self.c_attn = nn.Linear(C, 3 * C, bias=config.bias)
        else:
            self.q_proj = nn.Linear(C, C, bias=config.bias)
            self.k_proj = nn.Linear(C, C, bias=config.bias)
            self.v_proj = nn.Linear(C, C, bias=config.bias)
        self.c_proj = nn.Linear(C, C, bias=config.bias)  # output projection: mixes the heads
        self.resid_dropout = nn.Dropout(config.dropout)

    def qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, T, C) -> three (B, T, C) tensors, before splitting into heads."""
        if self.fused_qkv:
            return self.c_attn(x).split(x.size(-1), dim=-1)  # (B, T, 3C) -> 3 x (B, T, C)
        return self.q_proj(x), self.k_proj(x), self.v_proj(x)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """x (B, T, C) -> (out (B, T, C), weights (B, H, T, T) or None)."""
        q, k, v = self.qkv(x)  # 3 x (B, T, C)
        q = split_heads(q, self.n_head)  # (B, H, T, D)
        k = split_heads(k, self.n_head)  # (B, H, T, D)
        v = split_heads(v, self.n_head)  # (B, H, T, D)
        y, weights = scaled_dot_product_attention(
            q,
            k,
            v,
            mask=mask,
            causal=causal,
            return_weights=need_weights,
            dropout_p=self.dropout if self.training else 0.0,
        )  # (B, H, T, D)
        y = merge_heads(y)  # (B, T, C)
        y = self.resid_dropout(self.c_proj(y))  # (B, T, C)
        return y, weights


# ---------------------------------------------------------------------------------------------------------
# The rest of the block
# ---------------------------------------------------------------------------------------------------------


class LayerNorm(nn.Module):
    """Normalize each token vector to mean 0, variance 1 over its C features, then scale and shift.

    It keeps the residual stream's numbers in a steady range however deep the stack gets. Unlike
    BatchNorm it uses no statistics across the batch, so one token's result never depends on another's.
    """

    def __init__(self, ndim: int, bias: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps  # keeps the division safe when a vector is (nearly) constant
        self.weight = nn.Parameter(torch.ones(ndim))  # learned scale, starts as "no change"
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None  # learned shift

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=-1, keepdim=True)  # (B, T, 1)
        var = x.var(dim=-1, keepdim=True, unbiased=False)  # (B, T, 1); population variance, as PyTorch
        x_hat = (x - mean) / torch.sqrt(var + self.eps)  # (B, T, C)
        y = x_hat * self.weight
        return y + self.bias if self.bias is not None else y


class FeedForward(nn.Module):
    """Per-token MLP: C -> 4C -> GELU -> C. Attention mixes tokens; this thinks about each token alone."""

    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)  # 4x wider, as GPT-2
        self.gelu = nn.GELU()  # smooth ReLU; the exact (erf) form, as nanoGPT
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        h = self.gelu(self.c_fc(x))  # (B, T, 4C)
        return self.dropout(self.c_proj(h))  # (B, T, C)


class TransformerBlock(nn.Module):
    """Pre-LN block (GPT-2 style): x + attn(ln1(x)), then x + ffn(ln2(x)).

    The residual "+" lets each sub-layer add a correction instead of replacing x, so gradients reach early
    layers unchanged; normalizing *before* each sub-layer (pre-LN) keeps deep stacks stable to train.
    """

    def __init__(self, config: BlockConfig, fused_qkv: bool = True) -> None:
        super().__init__()
        self.config = config
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = MultiHeadAttention(config, fused_qkv=fused_qkv)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = FeedForward(config)

    def forward(
        self,
        x: Tensor,
        causal: bool = True,
        return_steps: bool = False,
        mask: Tensor | None = None,
    ) -> Tensor | dict[str, Tensor]:
        """x (B, T, C) -> (B, T, C).

        With return_steps=True returns a dict instead, in computation order: "input", "ln1",
        "attn_out", "attn_weights" (B, H, T, T), "resid1", "ln2", "ffn_out", "resid2", "output"
        (the same tensor as "resid2").
        """
        ln1 = self.ln_1(x)  # (B, T, C)
        attn_out, weights = self.attn(ln1, mask=mask, causal=causal, need_weights=return_steps)
        resid1 = x + attn_out  # (B, T, C)
        ln2 = self.ln_2(resid1)  # (B, T, C)
        ffn_out = self.mlp(ln2)  # (B, T, C)
        resid2 = resid1 + ffn_out  # (B, T, C)
        if not return_steps:
            return resid2
        return {
            "input": x,
            "ln1": ln1,
            "attn_out": attn_out,
            "attn_weights": weights,
            "resid1": resid1,
            "ln2": ln2,
            "ffn_out": ffn_out,
            "resid2": resid2,
            "output": resid2,
        }


# ---------------------------------------------------------------------------------------------------------
# Training objectives: masked LM (BERT) vs causal LM (GPT)
# ---------------------------------------------------------------------------------------------------------

MASK_TOKEN = "[MASK]"


def mlm_vs_clm_example(tokens: list[str], mask_prob: float = 0.15, seed: int = 0) -> dict:
    """What each objective asks the model to predict for the same sentence. Pure Python, deterministic.

    MLM (BERT): pick ~mask_prob of the positions; of those, 80% become [MASK], 10% a random token from
    the sentence, 10% stay as they are (so the model cannot assume "unmasked means correct"). Only the
    picked positions are predicted. At least one position is picked so there is always something to learn.

    CLM (GPT): the input is tokens[:-1] and the target at each position is the next token, tokens[1:].
    Every position is a prediction, which is why causal LMs get more training signal per sentence.

    Returns {"tokens", "mlm": {"input", "targets", "positions", "actions"}, "clm": {"input", "targets",
    "pairs"}, "n_predictions": {"mlm", "clm"}}. targets hold None where nothing is predicted; actions hold
    "mask" / "random" / "keep" / None per position; pairs are (context tokens, next token).
    """
    if not 0.0 <= mask_prob <= 1.0:
        raise InputError("attention.bad_mask_prob", value=mask_prob)
    tokens = list(tokens)
    rng = random.Random(seed)
    n = len(tokens)

    picked = [i for i in range(n) if rng.random() < mask_prob]
    if n and not picked:
        picked = [rng.randrange(n)]
    mlm_input = list(tokens)
    targets: list[str | None] = [None] * n
    actions: list[str | None] = [None] * n
    for i in picked:
        targets[i] = tokens[i]
        r = rng.random()
        if r < 0.8:
            actions[i], mlm_input[i] = "mask", MASK_TOKEN
        elif r < 0.9:
            actions[i], mlm_input[i] = "random", rng.choice(tokens)
        else:
            actions[i] = "keep"

    clm_input = tokens[:-1]
    clm_targets = tokens[1:]
    pairs = [(tokens[: i + 1], tokens[i + 1]) for i in range(n - 1)]
    return {
        "tokens": tokens,
        "mlm": {"input": mlm_input, "targets": targets, "positions": picked, "actions": actions},
        "clm": {"input": clm_input, "targets": clm_targets, "pairs": pairs},
        "n_predictions": {"mlm": len(picked), "clm": len(clm_targets)},
    }
