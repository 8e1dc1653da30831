"""BM25 from scratch equals rank_bm25.BM25Okapi exactly (==, not approx) on the same tokens, fast path included."""

from __future__ import annotations

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from engine.core.corpus import load_constitution
from engine.retrieval.bm25 import BM25Index, bm25_scores, fit_bm25
from engine.retrieval.evaluation import DEV_QUESTIONS, load_questions
from engine.retrieval.tokenizers import kiwi_content, whitespace_tokens


@pytest.mark.parametrize("tokenizer", [kiwi_content, whitespace_tokens])
def test_equal_to_rank_bm25_on_the_constitution(tokenizer):
    docs = load_constitution()
    corpus = [tokenizer(d.text) for d in docs]
    reference, index, stats = BM25Okapi(corpus), BM25Index.build(corpus), fit_bm25(corpus)
    for q in load_questions(DEV_QUESTIONS):
        tokens = tokenizer(q.question)
        expected = reference.get_scores(tokens)
        assert np.array_equal(bm25_scores(stats, tokens), expected)
        assert np.array_equal(index.scores(tokens), expected)


def test_equal_with_negative_idf_floor_repeats_and_unknown_terms():
    corpus = [["a", "b", "a"], ["a", "c"], ["a", "b", "d"], ["e"]]
    reference, index = BM25Okapi(corpus), BM25Index.build(corpus)
    assert index.stats.idf["a"] == reference.idf["a"] > 0  # 'a' is in 3 of 4 docs: floored at ε·mean idf
    for query in (["a"], ["a", "a", "b"], ["zzz"], [], ["d", "e", "b"]):
        assert np.array_equal(index.scores(query), reference.get_scores(query))


def test_k1_b_parameters_match():
    corpus = [["x", "y"], ["x"], ["y", "y", "z"]]
    assert np.array_equal(
        BM25Index.build(corpus, k1=0.9, b=0.4).scores(["y", "z"]),
        BM25Okapi(corpus, k1=0.9, b=0.4).get_scores(["y", "z"]),
    )


def test_empty_corpus_is_refused():
    with pytest.raises(ValueError):
        BM25Index.build([])
    with pytest.raises(ValueError):
        BM25Index.build([[], []])


def test_morphemes_beat_whitespace_on_dev():
    docs = load_constitution()
    ids = [d.doc_id for d in docs]
    dev = load_questions(DEV_QUESTIONS)

    def hit5(tok):
        index = BM25Index.build([tok(d.text) for d in docs])
        return np.mean(
            [q.doc_id in [ids[i] for i in np.argsort(-index.scores(tok(q.question)), kind="stable")[:5]] for q in dev]
        )

    assert hit5(kiwi_content) > hit5(whitespace_tokens) + 0.2
