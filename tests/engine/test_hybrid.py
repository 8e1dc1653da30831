"""Fusion math: RRF by hand, convex fusion, and a weight chosen on dev that never loses to its best input."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.corpus import load_constitution
from engine.retrieval.bm25 import BM25Index
from engine.retrieval.evaluation import DEV_QUESTIONS, load_questions, metrics
from engine.retrieval.hybrid import choose_alpha, convex, minmax, ranks_from_scores, rrf
from engine.retrieval.tokenizers import kiwi_content, whitespace_tokens


def test_ranks_and_rrf_by_hand():
    a = np.array([3.0, 1.0, 2.0])  # ranks 1, 3, 2
    b = np.array([0.1, 0.9, 0.5])  # ranks 3, 1, 2
    assert ranks_from_scores(a).tolist() == [1, 3, 2]
    fused = rrf([a, b], k=60)
    assert fused == pytest.approx([1 / 61 + 1 / 63, 1 / 63 + 1 / 61, 2 / 62])
    assert rrf([a, b], k=0)[0] == pytest.approx(1 + 1 / 3)
    with pytest.raises(ValueError):
        rrf([a], k=-1)


def test_convex_endpoints_reproduce_inputs():
    s, d = np.array([5.0, 1.0, 3.0]), np.array([0.2, 0.9, 0.1])
    assert np.array_equal(convex(s, d, 1.0), minmax(s))
    assert np.array_equal(convex(s, d, 0.0), minmax(d))
    assert minmax(np.array([2.0, 2.0])).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError):
        convex(s, d, 1.5)


def _mrr(rows, gold):
    return metrics([int(ranks_from_scores(r)[g]) for r, g in zip(rows, gold, strict=True)])


def test_chosen_weight_never_below_best_input_on_dev():
    """Real dev questions, two real retrievers (BM25 on morphemes and on whitespace)."""
    docs = load_constitution()
    ids = [d.doc_id for d in docs]
    dev = load_questions(DEV_QUESTIONS)
    gold = [ids.index(q.doc_id) for q in dev]
    kiwi = BM25Index.build([kiwi_content(d.text) for d in docs])
    ws = BM25Index.build([whitespace_tokens(d.text) for d in docs])
    s = [kiwi.scores(kiwi_content(q.question)) for q in dev]
    w = [ws.scores(whitespace_tokens(q.question)) for q in dev]
    alpha, table = choose_alpha(s, w, gold)
    fused = [convex(a, b, alpha) for a, b in zip(s, w, strict=True)]
    best_input = max(_mrr(s, gold)["mrr"], _mrr(w, gold)["mrr"])
    assert _mrr(fused, gold)["mrr"] >= best_input - 1e-12
    assert {row["alpha"] for row in table} >= {0.0, 1.0}
