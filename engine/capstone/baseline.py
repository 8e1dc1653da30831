"""The retrieval baseline: answer a new question with the answer of the most similar training question.

Before fine-tuning anything, ask what a search engine over the CSV would score. Two retrievers, both offline:
BM25 over Kiwi morphemes (exact words) and embeddings — each question becomes the mean of its content morphemes'
vectors from Kiwi's CoNg language model (engine/retrieval/kiwi_vectors.py: 세금 ≈ 조세 without any training here),
compared by cosine similarity. A fine-tuned generator has to beat this to be worth its ten minutes; on an FAQ whose
held-out questions rephrase known facts it often does not, and that is a lesson, not a failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine.capstone.qa_csv import QAPair
from engine.capstone.scoring import char_f1
from engine.retrieval.bm25 import BM25Index
from engine.retrieval.kiwi_vectors import MorphemeVectors, content_morphs
from engine.retrieval.tokenizers import kiwi_morphemes


@dataclass(frozen=True)
class BaselineRow:
    question: str
    reference: str
    matched_question: str
    answer: str
    f1: float


@dataclass(frozen=True)
class BaselineResult:
    method: str  # "bm25" | "embedding"
    rows: tuple[BaselineRow, ...]
    mean_f1: float
    seconds: float


@lru_cache(maxsize=1)
def morpheme_vectors() -> MorphemeVectors:
    return MorphemeVectors.build()


def embed(texts: list[str]) -> np.ndarray:
    """(N, r) unit vectors: mean of the content morphemes' CoNg vectors; a zero row when none has a vector."""
    vectors = morpheme_vectors()
    out = np.zeros((len(texts), vectors.dim))
    for i, text in enumerate(texts):
        found = [v for m in content_morphs(text) if (v := vectors.morph_vector(m)) is not None]
        if found:
            v = np.mean(found, axis=0)
            out[i] = v / (np.linalg.norm(v) + 1e-9)
    return out


def nearest(method: str, train: list[QAPair], questions: list[str]) -> list[int]:
    """For each question, the index of the most similar training question (ties: the first)."""
    if method == "bm25":
        index = BM25Index.build([kiwi_morphemes(p.question) for p in train])
        return [int(np.argmax(index.scores(kiwi_morphemes(q)))) for q in questions]
    if method == "embedding":
        sims = embed(questions) @ embed([p.question for p in train]).T  # (Q, N) cosine similarities
        return [int(i) for i in sims.argmax(axis=1)]
    raise ValueError(f"unknown retrieval method {method!r}")


def retrieval_baseline(train: list[QAPair], heldout: list[QAPair], method: str = "embedding") -> BaselineResult:
    start = time.perf_counter()
    picks = nearest(method, train, [p.question for p in heldout])
    rows = tuple(
        BaselineRow(
            p.question, p.answer, train[i].question, train[i].answer, round(char_f1(train[i].answer, p.answer), 4)
        )
        for p, i in zip(heldout, picks, strict=True)
    )
    f1 = round(float(np.mean([r.f1 for r in rows])), 4) if rows else 0.0
    return BaselineResult(method, rows, f1, round(time.perf_counter() - start, 3))
