"""engine.lm.views: the chapter 2 and 8 pictures, computed in one call (shapes, labels, agreement with the parts)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from engine.lm import views
from engine.lm.relative_positions import alibi_slopes, rope_unseen_pairs


def test_parallel_pairs_is_the_shipped_asset():
    pairs = views.parallel_pairs()
    assert pairs and isinstance(pairs, list)


@pytest.mark.parametrize("kind", views.POSITION_KINDS)
def test_position_view_shapes(kind):
    pv = views.position_view(kind, 8, 6)
    assert len(pv.matrix) == len(pv.positions) == 8
    assert len(pv.matrix[0]) == len(pv.columns) == (3 if kind == "rope" else 6)
    assert len(pv.similarity) == 8 and len(pv.similarity[0]) == 8


def test_position_view_rejects_an_unknown_kind():
    with pytest.raises(ValueError):
        views.position_view("fourier", 4, 4)


def test_alibi_view_matches_slopes_and_clamps():
    av = views.alibi_view(8, 4)
    assert av.slope == pytest.approx(float(alibi_slopes(8)[0]))
    assert len(av.bias) == len(av.labels) == 8 and min(min(r) for r in av.bias) >= -20
    assert {r["head"] for r in av.weights} and len(av.weights) == 4 * 8  # heads 0, 2, 4, 6 × 2L keys


def test_rope_view_counts_unseen_pairs():
    rv = views.rope_view(64, 8192, base=100000.0)
    pairs = rope_unseen_pairs(64, 8192, base=100000.0)
    assert rv.unseen == sum(p["unseen_beyond"] for p in pairs) and rv.total == 32
    assert len(rv.angles) == len(rv.pairs) == 32 and len(rv.angles[0]) == len(rv.positions) == 128
    assert all(0 <= a < 2 * math.pi for a in rv.angles[5])


def test_attention_view_masks_the_future(monkeypatch):
    words = ["나", "는", "학교", "에", "가"]
    piece = SimpleNamespace(pieces=words)
    monkeypatch.setattr(views, "compare_tokenizers", lambda text, toks: ([piece], None))
    av = views.attention_view("나는 학교에 가", {"Kiwi (morphemes)": object()}, heads=2, causal=True, seed=0)
    n = len(av.walkthrough.tokens)
    assert n == len(words) and len(av.masked) == n
    assert math.isnan(av.masked[0][1]) and not math.isnan(av.masked[1][0])
    assert all(abs(sum(row) - 1) < 1e-5 for row in av.weights)
    assert av.block_rows and {"step", "shape", "mean", "std"} <= set(av.block_rows[0])
