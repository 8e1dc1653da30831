"""Fusing two rankings: reciprocal rank fusion (RRF) and convex fusion of normalized scores.

RRF:     fused(d) = Σ_r 1 / (k + rank_r(d))                 — uses ranks only; a weak retriever votes as loudly
                                                               as a strong one, so fusion can *hurt*.
Convex:  fused(d) = α · norm(s_bm25(d)) + (1 − α) · norm(s_dense(d))  — α chosen on the dev questions; α = 1 or 0
                                                               reproduces one input exactly, so the best α on dev
                                                               is never below the better input there.
"""

from __future__ import annotations

import numpy as np

from engine.core.textinput import InputError


def ranks_from_scores(scores: np.ndarray) -> np.ndarray:
    """1-based rank of every document (ties: corpus order)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def rrf(score_lists: list[np.ndarray], k: float = 60.0, weights: list[float] | None = None) -> np.ndarray:
    """Reciprocal rank fusion over full rankings: Σ w_r / (k + rank_r(d))."""
    if k < 0:
        raise InputError("input.too_small", name="RRF k", limit=0, value=k)
    weights = weights or [1.0] * len(score_lists)
    fused = np.zeros(len(score_lists[0]))
    for w, s in zip(weights, score_lists, strict=True):
        fused += w / (k + ranks_from_scores(np.asarray(s)))
    return fused


def minmax(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    lo, hi = s.min(), s.max()
    return np.zeros_like(s) if hi - lo < 1e-12 else (s - lo) / (hi - lo)


def convex(sparse: np.ndarray, dense: np.ndarray, alpha: float) -> np.ndarray:
    """α · minmax(sparse) + (1 − α) · minmax(dense)."""
    if not 0.0 <= alpha <= 1.0:
        raise InputError("input.out_of_range", name="α", low=0, high=1, value=alpha)
    return alpha * minmax(sparse) + (1 - alpha) * minmax(dense)


def choose_alpha(
    sparse_rows: list[np.ndarray], dense_rows: list[np.ndarray], gold: list[int], grid: np.ndarray | None = None
) -> tuple[float, list[dict]]:
    """The α on a grid (0 and 1 included) with the best MRR on labelled questions; ties -> the larger hit@1.

    Because α = 0 and α = 1 are on the grid, the chosen α is never worse (in MRR) than the better input.
    """
    grid = np.linspace(0, 1, 21) if grid is None else grid
    table = []
    for a in grid:
        ranks = [
            int(ranks_from_scores(convex(s, d, float(a)))[g])
            for s, d, g in zip(sparse_rows, dense_rows, gold, strict=True)
        ]
        n = len(ranks)
        table.append(
            {
                "alpha": round(float(a), 3),
                "hit@1": sum(r <= 1 for r in ranks) / n,
                "hit@5": sum(r <= 5 for r in ranks) / n,
                "mrr": sum(1 / r for r in ranks) / n,
            }
        )
    best = max(table, key=lambda row: (round(row["mrr"], 9), row["hit@1"], row["hit@5"]))
    return best["alpha"], table
