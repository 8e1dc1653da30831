"""Relative position methods and what happens beyond the training length: ALiBi and RoPE.

Both make the attention score depend on the *distance* between query and key rather than on absolute places:

    ALiBi (Press et al., 2022, "Train Short, Test Long", arXiv:2108.12409): no position vectors at all; each
          head adds -slope·(i - j) to the score of query i and key j. Slopes form a geometric sequence, so some
          heads look far and some near. The bias is defined for any distance, and longer distances only push
          scores further down, so a model trained on 1k tokens still behaves at 2k (it mostly ignores the far part).
    RoPE  (Su et al., 2021, RoFormer): rotate Q and K (engine.lm.positions.apply_rope). Pair i turns by θ_i per
          position with θ_i = base^(-2i/D). Fast pairs wrap around many times during training and have seen
          every angle; slow pairs turn less than one full circle within the training length, so distances
          beyond it produce angles those pairs never saw. That is why RoPE models degrade past their window
          and why position interpolation / NTK / YaRN rescale exactly those slow pairs.

The `position_scaling_perplexity` experiment measures it on the real `chat` model (SmolLM2, RoPE base 100000,
trained to 8192 positions): shifting every position by a constant leaves the perplexity unchanged (RoPE sees
only distances), while stretching the distances makes it climb.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.lm.positions import rope_inv_freq, rope_rotation_angles

__all__ = [
    "alibi_bias",
    "alibi_slopes",
    "alibi_weights_by_distance",
    "position_scaling_perplexity",
    "rope_angle_table",
    "rope_unseen_pairs",
]


def alibi_slopes(n_heads: int) -> Tensor:
    """(H,) head slopes from the ALiBi paper: for H a power of two, 2^(-8/H), 2^(-16/H), ..., 2^(-8).

    For other H the paper's code takes the slopes of the closest smaller power of two and fills the rest with
    every other slope of the next power of two.
    """
    if not 1 <= n_heads <= 1024:
        raise InputError("positions.bad_alibi_heads", value=n_heads)

    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))  # = 2^(-8/n)
        return [start * start**i for i in range(n)]

    if math.log2(n_heads).is_integer():
        slopes = power_of_two(n_heads)
    else:
        closest = 2 ** math.floor(math.log2(n_heads))
        slopes = power_of_two(closest) + power_of_two(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(slopes, dtype=torch.float64)


def alibi_bias(n_heads: int, T: int, causal: bool = True) -> Tensor:
    """(H, T, T) additive bias: -slope_h · (i - j) for key j ≤ query i; -inf above the diagonal when causal."""
    if not 1 <= T <= 8192:
        raise InputError("positions.bad_alibi_t", value=T)
    pos = torch.arange(T, dtype=torch.float64)
    dist = pos[:, None] - pos[None, :]  # (T, T): i - j
    bias = -alibi_slopes(n_heads)[:, None, None] * dist.abs()  # (H, T, T)
    if causal:
        bias = bias.masked_fill(dist < 0, float("-inf"))
    return bias


def alibi_weights_by_distance(n_heads: int, T: int) -> Tensor:
    """(H, T): attention weights of the LAST query over keys 0..T-1 when every raw score is equal.

    With equal content scores only the bias speaks: each head's weights decay exponentially with distance at
    its own rate. Whether T is the training length or 4× it, the far keys get (almost) nothing — the
    reason ALiBi extrapolates gracefully (it behaves like a soft sliding window).
    """
    bias = alibi_bias(n_heads, T)[:, -1, :]  # (H, T)
    return torch.softmax(bias, dim=-1)


def rope_angle_table(head_dim: int, T: int, base: float = 10000.0) -> Tensor:
    """(T, D/2) angle of each pair at each position, wrapped to [0, 2π) — the picture of 'seen' angles."""
    return torch.remainder(rope_rotation_angles(head_dim, T, base), 2 * math.pi)


def rope_unseen_pairs(head_dim: int, train_len: int, base: float = 10000.0) -> list[dict]:
    """Per rotary pair: wavelength (positions per full turn), turns completed within train_len, and whether
    distances beyond train_len produce angles the pair never saw in training (turns < 1)."""
    if train_len <= 0:
        raise InputError("positions.bad_train_len", value=train_len)
    inv = rope_inv_freq(head_dim, base)  # (D/2,) radians per position
    rows = []
    for i, w in enumerate(inv.tolist()):
        turns = w * train_len / (2 * math.pi)
        rows.append({"pair": i, "wavelength": 2 * math.pi / w, "turns_in_training": turns, "unseen_beyond": turns < 1})
    return rows


def _window_nll(model, ids: Tensor, positions: Tensor) -> float:
    """Mean next-token negative log-likelihood of `ids` (1, T) evaluated at the given position ids (1, T)."""
    with torch.no_grad():
        # An explicit all-ones attention mask stops transformers from reading non-consecutive position ids as
        # several packed sequences.
        out = model(input_ids=ids, position_ids=positions, attention_mask=torch.ones_like(ids), labels=ids)
    return float(out.loss)


def position_scaling_perplexity(
    lm,
    text: str,
    offsets: tuple[int, ...] = (0, 4096, 20000),
    scales: tuple[float, ...] = (1.0, 2.0, 4.0, 16.0, 64.0),
    max_tokens: int = 256,
    progress: ProgressFn = null_progress,
    should_stop=lambda: False,
) -> list[dict]:
    """Perplexity of `lm` on `text` with position ids = offset + scale · t, measured, one row per setting.

    offset > 0 moves the whole text to absolute positions the model may never have used (20000 > 8192) but
    keeps every distance: with RoPE the scores — and the perplexity — stay the same up to float rounding.
    scale > 1 stretches distances: the last token sees the first at distance scale·T, beyond the trained
    range once scale·T > max_position_embeddings, and the perplexity climbs. scale < 1 squeezes them, which
    is what position interpolation does to reuse a model on longer inputs.
    Rows finished before a cancel are kept in the returned list only if the caller catches Cancelled — so
    this raises Cancelled with `.partial` set.
    """
    if not text.strip():
        raise InputError("positions.empty_text")
    if not 16 <= max_tokens <= 1024:
        raise InputError("positions.bad_max_tokens", value=max_tokens)
    if any(s <= 0 or s > 1024 for s in scales) or any(o < 0 or o > 1_000_000 for o in offsets):
        raise InputError("positions.bad_scales")
    tok, model = lm.tokenizer, lm.model
    ids = tok(text, return_tensors="pt").input_ids[:, :max_tokens]
    T = ids.shape[1]
    if T < 8:
        raise InputError("positions.text_too_short", tokens=T)
    trained = getattr(model.config, "max_position_embeddings", None)
    settings = [("offset", o, 1.0) for o in offsets] + [("scale", 0, s) for s in scales if s != 1.0]
    rows: list[dict] = []
    t = torch.arange(T, dtype=torch.float32)[None]
    for n, (kind, offset, scale) in enumerate(settings):
        if should_stop():
            exc = Cancelled("stopped")
            exc.partial = rows  # type: ignore[attr-defined]
            raise exc
        progress(n / len(settings), f"{kind} {offset if kind == 'offset' else scale}")
        positions = offset + scale * t
        if scale == 1.0:
            positions = positions.long()
        nll = _window_nll(model, ids, positions)
        rows.append(
            {
                "setting": kind,
                "offset": offset,
                "scale": scale,
                "tokens": T,
                "max_distance": scale * (T - 1),
                "trained_positions": trained,
                "beyond_training": bool(trained and scale * (T - 1) >= trained),
                "nll": nll,
                "perplexity": math.exp(nll),
            }
        )
    progress(1.0, "done")
    return rows
