"""engine.retrieval.views: BM25 ranking checked against the formula, word maps, LM similarities, the evaluations."""

from __future__ import annotations

import numpy as np

from engine.retrieval import views


def test_bm25_ranking_agrees_with_the_formula():
    index = views.constitution_bm25("whitespace")
    ranking = views.bm25_ranking(index, "whitespace", "대통령의 임기", 3)
    assert ranking.tokens and len(ranking.rows) == 3
    assert ranking.equal and ranking.max_diff == 0.0
    scores = [r["BM25"] for r in ranking.rows]
    assert scores == sorted(scores, reverse=True)


class _FakeW2V:
    def __init__(self):
        self.vocab = ["a", "b", "c", "d"]

    def neighbours(self, word, n):
        return [("b", 0.9), ("c", 0.5)][:n]

    def project_2d(self, words):
        return np.arange(2 * len(words), dtype=float).reshape(-1, 2)


def test_word_map_lists_each_word_once():
    wm = views.word_map(_FakeW2V(), " a ", n=2, frequent=4)
    assert wm.words == ["a", "b", "c", "d"] and wm.xy.shape == (4, 2)
    assert wm.neighbours == [("b", 0.9), ("c", 0.5)]


def test_lm_similarity_is_cosine_of_normalized_vectors(monkeypatch):
    vec = np.eye(3)[[0, 1, 1]]
    monkeypatch.setattr(views, "lm_mean_pooled", lambda lm, texts, layer: vec)
    sim = views.lm_similarity(None, 2, texts=("x", "y", "z"))
    assert sim.labels == ["x", "y", "z"]
    assert sim.matrix.tolist() == [[1, 0, 0], [0, 1, 1], [0, 1, 1]]


class _FakeIndex:
    def evaluate(self, questions, methods):
        return {m: {"hit@1": 0.5, "hit@5": 1.0} for m in methods}


def test_dev_and_test_metrics_has_a_row_per_set_and_method():
    rows = views.dev_and_test_metrics(_FakeIndex(), ("bm25", "dense"))
    assert [(r["set"], r["method"]) for r in rows] == [
        ("dev", "bm25"),
        ("dev", "dense"),
        ("test (held-out)", "bm25"),
        ("test (held-out)", "dense"),
    ]
