"""What the chapter 2 and 8 pages show, computed in one call each: position tables, the attention walkthrough's
matrices, the ALiBi and RoPE pictures. Each returns a small dataclass of plain lists ready to draw."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from engine.core.assets import asset
from engine.lm.attention_lab import Walkthrough, attention_walkthrough
from engine.lm.positions import (
    learned_positions,
    relative_distance_similarity,
    rope_relative_similarity,
    rope_rotation_angles,
    sinusoidal_positions,
)
from engine.lm.relative_positions import alibi_bias, alibi_slopes, alibi_weights_by_distance, rope_angle_table
from engine.lm.relative_positions import rope_unseen_pairs as _rope_unseen_pairs
from engine.lm.tokenization import compare_tokenizers

POSITION_KINDS = ("sinusoidal", "learned", "rope")


def parallel_pairs() -> list[dict]:
    """The Korean/English parallel sentences (assets/parallel_ko_en.yaml) that token_cost compares."""
    return yaml.safe_load(asset("parallel_ko_en.yaml").read_text("utf-8"))


@dataclass
class PositionView:
    """A position table (or, for RoPE, the sine of each pair's angle) and the similarity of positions."""

    kind: str
    matrix: list[list[float]]  # (T, C) or, for rope, (T, C/2)
    columns: list[str]
    positions: list[str]
    similarity: list[list[float]]  # (T, T)


def position_view(kind: str, T: int, C: int) -> PositionView:
    if kind not in POSITION_KINDS:
        raise ValueError(f"position kind must be one of {POSITION_KINDS}")
    if kind == "rope":
        matrix = rope_rotation_angles(C, T).sin()  # (T, C/2)
        sim = rope_relative_similarity(C, T)
    else:
        matrix = sinusoidal_positions(T, C) if kind == "sinusoidal" else learned_positions(T, C, seed=0)
        sim = relative_distance_similarity(matrix, normalize=True)
    return PositionView(
        kind,
        matrix.tolist(),
        [str(i) for i in range(matrix.shape[1])],
        [str(i) for i in range(T)],
        sim.tolist(),
    )


@dataclass
class AttentionView:
    """attention_walkthrough over a sentence's Kiwi morphemes, with its matrices as lists (masked cells NaN)."""

    walkthrough: Walkthrough
    scaled: list[list[float]]
    masked: list[list[float]]
    weights: list[list[float]]
    block_rows: list[dict]  # step, shape, mean, std of every ≥2-D intermediate of the block


def attention_view(text: str, tokenizers: dict, heads: int, causal: bool, seed: int, width: int = 16) -> AttentionView:
    kiwi_name = next(n for n in tokenizers if n.startswith("Kiwi"))
    words = list(compare_tokenizers(text, {kiwi_name: tokenizers[kiwi_name]})[0][0].pieces)
    wt = attention_walkthrough(words, width, heads, causal=causal, seed=seed)
    s = wt.steps
    masked = s["masked"].masked_fill(~s["mask"], float("nan"))
    rows = [
        {
            "step": name,
            "shape": str(tuple(v.shape)),
            "mean": round(float(v.float().mean()), 4),
            "std": round(float(v.float().std()), 4),
        }
        for name, v in wt.block.items()
        if v.dim() >= 2
    ]
    return AttentionView(wt, s["scaled"].tolist(), masked.tolist(), s["weights"].tolist(), rows)


@dataclass
class AlibiView:
    """ALiBi for `heads` heads over 2·train_len positions: head 0's bias matrix and weight-by-distance curves."""

    bias: list[list[float]]  # head 0, clamped at -20 so the colour scale stays readable
    labels: list[str]
    slope: float  # head 0's slope
    weights: list[dict]  # key, weight, head (every H/4-th head)
    train_len: int


def alibi_view(heads: int, train_len: int) -> AlibiView:
    T = 2 * train_len
    slopes = alibi_slopes(heads)
    w = alibi_weights_by_distance(heads, T)  # (H, T)
    rows = [
        {"key": j, "weight": float(w[h, j]), "head": f"h{h} (m={float(slopes[h]):.3f})"}
        for h in range(0, heads, max(1, heads // 4))
        for j in range(T)
    ]
    bias = alibi_bias(heads, T)[0].clamp_min(-20).tolist()
    return AlibiView(bias, [str(i) for i in range(T)], float(slopes[0]), rows, train_len)


@dataclass
class RopeView:
    """RoPE angles over twice the training length (sampled rows) and how many turns each pair made in training."""

    angles: list[list[float]]  # (pairs, samples): angle of each pair at each sampled position
    positions: list[str]
    pairs: list[str]
    turns: list[dict]  # pair, turns
    unseen: int  # pairs that never completed a turn within train_len
    total: int
    train_len: int


def rope_view(head_dim: int = 64, train_len: int = 8192, base: float = 100000.0, samples: int = 128) -> RopeView:
    pairs = _rope_unseen_pairs(head_dim, train_len, base=base)
    stride = max(1, 2 * train_len // samples)
    angles = rope_angle_table(head_dim, 2 * train_len, base=base)[::stride]  # (samples, D/2)
    return RopeView(
        angles.T.tolist(),
        [str(i * stride) for i in range(angles.shape[0])],
        [str(i) for i in range(angles.shape[1])],
        [{"pair": p["pair"], "turns": p["turns_in_training"]} for p in pairs],
        sum(p["unseen_beyond"] for p in pairs),
        len(pairs),
        train_len,
    )
