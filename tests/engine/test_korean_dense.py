"""The Korean morpheme encoder: Kiwi vectors reproduce Kiwi's similarities, and a tiny MNR run trains."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.corpus import load_constitution
from engine.retrieval.kiwi_vectors import MorphemeVectors, content_morphs
from engine.retrieval.korean_dense import KoreanEncoder, TrainConfig, train_encoder
from engine.retrieval.tokenizers import kiwi


@pytest.fixture(scope="module")
def vectors():
    return MorphemeVectors.build()


def test_nystrom_reproduces_kiwi_similarity(vectors):
    k = kiwi()
    (tax,) = [m for m in content_morphs("세금") if m.form == "세금"]
    (duty,) = [m for m in content_morphs("납세") if m.form == "납세"]
    assert vectors.dim >= 200
    assert vectors.similarity(tax.id, duty.id) == pytest.approx(k.morpheme_similarity(tax.id, duty.id), abs=1e-3)


def test_tiny_mnr_training_runs_and_saves(vectors, tmp_path):
    docs = load_constitution()[:20]
    enc = train_encoder(docs, TrainConfig(epochs=1, queries_per_doc=2, batch_size=16), vectors=vectors)
    assert enc.info.history and np.isfinite(enc.info.history[0]["loss"])
    v = enc.encode(["대통령의 임기", "국회의원"])
    assert v.shape == (2, vectors.dim) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-6)
    enc.save(tmp_path / "enc.npz")
    again = KoreanEncoder.load(tmp_path / "enc.npz")
    assert np.allclose(again.encode(["대통령의 임기"]), v[:1], atol=1e-6)
