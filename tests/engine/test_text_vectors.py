"""One-hot / BoW / TF-IDF, word2vec and pooling on small real inputs."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.corpus import load_constitution
from engine.core.textinput import InputError
from engine.retrieval.sentence_embeddings import pool
from engine.retrieval.text_vectors import text_vectors
from engine.retrieval.word2vec import Word2VecConfig, train_word2vec


def test_one_hot_bow_tfidf():
    tv = text_vectors(
        ["모든 국민은 종교의 자유를 가진다.", "모든 국민은 양심의 자유를 가진다.", "대통령의 임기는 5년이다."]
    )
    assert "국민" in tv.vocab and "종교" in tv.vocab  # Kiwi dropped the particles
    assert np.all(tv.one_hot.sum(1) == 1)
    assert tv.idf[tv.vocab.index("국민")] < tv.idf[tv.vocab.index("종교")]
    assert tv.cosine_tfidf[0, 1] > tv.cosine_tfidf[0, 2]
    assert np.allclose(np.linalg.norm(tv.tfidf, axis=1), 1)


def test_text_vectors_needs_two_sentences():
    with pytest.raises(InputError):
        text_vectors(["하나뿐", ""])


def test_pooling_math():
    states = np.array([[[1.0, 0.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = np.array([[1, 1, 0]])
    assert pool(states, mask, "mean").tolist() == [[2.0, 2.0]]
    assert pool(states, mask, "cls").tolist() == [[1.0, 0.0]]
    assert pool(states, mask, "max").tolist() == [[3.0, 4.0]]
    with pytest.raises(ValueError):
        pool(states, mask, "median")


def test_word2vec_trains_and_finds_neighbours():
    w2v = train_word2vec(load_constitution()[:60], Word2VecConfig(dim=16, epochs=1, min_count=2))
    assert w2v.losses[0] < 4.2  # below the untrained loss ln2·(1+5)
    assert len(w2v.neighbours("대통령", 3)) == 3
    assert w2v.project_2d(w2v.vocab[:5]).shape == (5, 2)
    with pytest.raises(ValueError):
        w2v.neighbours("없는단어")
