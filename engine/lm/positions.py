"""Position information: how a transformer knows token order.

Attention by itself is order-blind: shuffle the tokens and every token gets the same output, shuffled.
So something must tell the model where each token sits. Three answers, in historical order:

    sinusoidal_positions  fixed sin/cos waves added to the token vectors (Vaswani et al., 2017)
    learned_positions     a trained lookup table added to the token vectors (GPT-2, BERT)
    apply_rope            rotate Q and K by a position-dependent angle (RoFormer; Llama, Qwen, Gemma)

Shape letters: T positions, C model width, B batch, H heads, D head width.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from engine.core.textinput import InputError

__all__ = [
    "apply_rope",
    "learned_positions",
    "relative_distance_similarity",
    "rope_frequencies",
    "rope_inv_freq",
    "rope_rotation_angles",
    "rotate_half",
    "sinusoidal_positions",
]


def sinusoidal_positions(T: int, C: int, base: float = 10000.0, dtype: torch.dtype | None = None) -> Tensor:
    """(T, C) fixed position vectors from "Attention Is All You Need":

        PE[pos, 2i]   = sin(pos / base^(2i / C))
        PE[pos, 2i+1] = cos(pos / base^(2i / C))

    Each pair of columns is a wave with its own wavelength, from 2π (fast, early columns) to base·2π
    (slow, late columns), like the hands of a clock: fast hands tell nearby positions apart, slow hands
    far ones. Nothing is learned, so it is defined for any T. dtype defaults to torch's default dtype.
    """
    if T <= 0 or C <= 0:
        raise InputError("positions.bad_shape", T=T, C=C)
    pos = torch.arange(T, dtype=torch.float64).unsqueeze(1)  # (T, 1)
    two_i = torch.arange(0, C, 2, dtype=torch.float64)  # (ceil(C/2),): the even column indices 2i
    angle = pos / base ** (two_i / C)  # (T, ceil(C/2))
    pe = torch.zeros(T, C, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : C // 2])  # odd C: one fewer cosine column
    return pe.to(dtype or torch.get_default_dtype())


def learned_positions(T: int, C: int, seed: int = 0, std: float = 1.0) -> Tensor:
    """(T, C) weight of a fresh `nn.Embedding(T, C)`: learned position vectors *before* training.

    GPT-2 and BERT keep one trainable vector per position and add it to the token vector. At init the
    table is random noise (N(0, std²); std=1 is nn.Embedding's default, GPT-2 uses 0.01), so it carries
    no notion of "near" or "far" until training shapes it. It also stops at T: a model trained with
    1024 positions has no vector for position 1024.
    """
    if T <= 0 or C <= 0:
        raise InputError("positions.bad_shape", T=T, C=C)
    # fork_rng: seed a private copy of the RNG so the caller's global random state is left untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wpe = nn.Embedding(T, C)  # weight ~ N(0, 1), the layer's own init
        if std != 1.0:
            nn.init.normal_(wpe.weight, mean=0.0, std=std)
    return wpe.weight.detach().clone()


# ---------------------------------------------------------------------------------------------------------
# RoPE (rotary position embedding), in the "rotate_half" layout Hugging Face Llama uses
# ---------------------------------------------------------------------------------------------------------


def rope_inv_freq(head_dim: int, base: float = 10000.0) -> Tensor:
    """(D/2,) rotation speed of each pair of dimensions, in radians per position: base^(-2i/D)."""
    if head_dim <= 0 or head_dim % 2:
        raise InputError("positions.bad_head_dim", value=head_dim)
    return 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))


def rope_rotation_angles(head_dim: int, T: int, base: float = 10000.0) -> Tensor:
    """(T, D/2) angle in radians by which pair i is rotated at position t: t · base^(-2i/D).

    For plots: early pairs spin fast (tell neighbours apart), late pairs barely move (long range).
    """
    t = torch.arange(T, dtype=torch.float64)  # (T,)
    return torch.outer(t, rope_inv_freq(head_dim, base))  # (T, D/2)


def rope_frequencies(
    head_dim: int, T: int, base: float = 10000.0, dtype: torch.dtype | None = None
) -> tuple[Tensor, Tensor]:
    """(cos, sin), each (T, D), ready for `apply_rope`. dtype defaults to torch's default dtype.

    The D/2 angles are repeated as [angles, angles] (not interleaved) because Llama pairs dimension j
    with dimension j + D/2; see `rotate_half`.
    """
    angles = rope_rotation_angles(head_dim, T, base)  # (T, D/2)
    emb = torch.cat((angles, angles), dim=-1)  # (T, D)
    dtype = dtype or torch.get_default_dtype()
    return emb.cos().to(dtype), emb.sin().to(dtype)  # angles stay float64 until here: exact for long T


def rotate_half(x: Tensor) -> Tensor:
    """[x1, x2] -> [-x2, x1] on the last dim, where x1, x2 are its two halves.

    Together with cos/sin this is a 2-D rotation of every pair (x[j], x[j + D/2]):
        (a, b) -> (a·cos - b·sin, b·cos + a·sin)
    """
    x1, x2 = x.chunk(2, dim=-1)  # 2 x (..., D/2)
    return torch.cat((-x2, x1), dim=-1)  # (..., D)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x (B, H, T, D) by its position: x·cos + rotate_half(x)·sin.

    cos/sin are (T, D) from `rope_frequencies` (or anything broadcastable to x). Applied to Q and K only,
    never V: the point is that the score q_m · k_n then depends on the *offset* m - n alone, because
    rotating both by their own angle leaves only the angle difference in the dot product.
    """
    if cos.dim() == 2:
        cos = cos[None, None]  # (1, 1, T, D): broadcast over B and H
        sin = sin[None, None]
    return x * cos + rotate_half(x) * sin  # (B, H, T, D)


def relative_distance_similarity(pos_matrix: Tensor, normalize: bool = False) -> Tensor:
    """(T, T) dot product between every pair of position vectors (rows of pos_matrix (T, C)).

    For sinusoidal positions the values fall off smoothly with |i - j| and are the same along each
    diagonal: nearby positions look alike, and the similarity depends on distance, not absolute place.
    For learned positions at init it is noise off the diagonal. normalize=True gives cosine similarity.
    """
    if pos_matrix.dim() != 2:
        raise ValueError("pos_matrix must be (T, C)")
    p = pos_matrix
    if normalize:
        p = p / p.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return p @ p.T  # (T, C) @ (C, T) -> (T, T)


def rope_relative_similarity(head_dim: int, T: int, base: float = 10000.0) -> Tensor:
    """(T, T): the RoPE score between the same vector placed at positions m and n, averaged over pairs.

    Each pair i contributes cos(θ_i·m)·cos(θ_i·n) + sin(θ_i·m)·sin(θ_i·n) = cos(θ_i·(m − n)): only the offset
    m − n survives, which is the whole point of RoPE. (Normalized so the diagonal is 1.)
    """
    angles = rope_rotation_angles(head_dim, T, base)  # (T, D/2)
    cos, sin = angles.cos(), angles.sin()
    return (cos @ cos.T + sin @ sin.T) / angles.size(-1)  # (T, T)
