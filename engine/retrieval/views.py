"""What the chapter 10 and 11 pages show, computed in one call each: a BM25 ranking checked against the formula,
a word2vec neighbourhood in 2-D, an LM's sentence similarities, and the before/after experiments of chapter 11.
Built on the retrieval face, so the modules behind it can move without touching this file."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.core import load_constitution
from engine.core.progress import ProgressFn, null_progress
from engine.retrieval import (
    DEV_QUESTIONS,
    TEST_QUESTIONS,
    BM25Index,
    TrainConfig,
    bm25_scores,
    finetune_mnr,
    get_tokenizer,
    hit_rates,
    lm_mean_pooled,
    load_questions,
    synthetic_text_pairs,
    train_encoder,
)

LM_SENTENCES = (
    "대통령의 임기는 5년으로 한다.",
    "대통령은 몇 년 동안 일하나요?",
    "모든 국민은 종교의 자유를 가진다.",
    "국교는 인정되지 아니한다.",
    "국회의원의 임기는 4년으로 한다.",
)


def constitution_bm25(tokenizer: str, progress: ProgressFn = null_progress) -> BM25Index:
    """A BM25 index of the constitution's articles, tokenized with `tokenizer` ("whitespace", "kiwi", ...)."""
    tok = get_tokenizer(tokenizer)
    docs = load_constitution()
    progress(0.0, f"BM25 ({tokenizer})")
    return BM25Index.build([tok(d.text) for d in docs])


@dataclass
class BM25Ranking:
    tokens: list[str]  # the query as the tokenizer split it
    rows: list[dict]  # doc_id, BM25, text (first 60 characters), best first
    equal: bool  # the index's scores equal the formula's, bit for bit
    max_diff: float


def bm25_ranking(index: BM25Index, tokenizer: str, query: str, k: int) -> BM25Ranking:
    """The top k articles for `query`, and whether the index's scores equal bm25_scores() on its statistics."""
    docs = load_constitution()
    qt = get_tokenizer(tokenizer)(query)
    scores = index.scores(qt)
    order = np.argsort(-scores, kind="stable")[:k]
    rows = [{"doc_id": docs[i].doc_id, "BM25": round(float(scores[i]), 3), "text": docs[i].text[:60]} for i in order]
    reference = bm25_scores(index.stats, qt)
    return BM25Ranking(qt, rows, bool(np.array_equal(reference, scores)), float(np.abs(reference - scores).max()))


@dataclass
class WordMap:
    neighbours: list[tuple[str, float]]  # nearest words and their cosine
    words: list[str]  # the word, its neighbours and the most frequent words, without repeats
    xy: np.ndarray  # (len(words), 2) projection


def word_map(model, word: str, n: int = 10, frequent: int = 25) -> WordMap:
    """`word`'s nearest neighbours in a trained word2vec model, and a 2-D map of them among frequent words."""
    word = word.strip()
    near = model.neighbours(word, n)
    words = list(dict.fromkeys([word] + [w for w, _ in near] + model.vocab[:frequent]))
    return WordMap(near, words, model.project_2d(words))


@dataclass
class SimilarityView:
    labels: list[str]
    matrix: np.ndarray  # (n, n) cosine similarities


def lm_similarity(lm, layer: int, texts: tuple[str, ...] = LM_SENTENCES) -> SimilarityView:
    """Cosine similarities of mean-pooled (normalized) hidden states of a causal LM at `layer`."""
    vec = lm_mean_pooled(lm, list(texts), layer=layer)
    return SimilarityView([x[:14] for x in texts], (vec @ vec.T).round(3))


def mnr_experiment(
    n_pairs: int, epochs: int, lr: float, progress: ProgressFn = null_progress, should_stop=None, on_pairs=None
):
    """Fine-tune a fresh copy of the `embed` model with MNR loss on synthetic (question, article) pairs.
    `on_pairs(docs, pairs)` sees the training pairs once they are made (the page's MLflow run versions them)."""
    from engine.models import load_sentence_embedder

    docs = load_constitution()
    pairs = synthetic_text_pairs(docs, n_pairs, progress=lambda f, m: progress(0.05 * f, m))
    if on_pairs is not None:
        on_pairs(docs, pairs)
    model = load_sentence_embedder("embed")  # a fresh copy: the shared one stays untouched
    dev = load_questions(DEV_QUESTIONS)
    return finetune_mnr(model, docs, pairs, dev, epochs=epochs, lr=lr, progress=progress, should_stop=should_stop)


def zero_shot_comparison(index, progress: ProgressFn = null_progress) -> tuple[dict, dict]:
    """Hit rates on the dev questions of the Korean encoder before training (epochs=0) and as trained."""
    docs, dev = index.docs, load_questions(DEV_QUESTIONS)
    zero = train_encoder(docs, TrainConfig(epochs=0), progress, vectors=index.korean.vectors)
    return hit_rates(zero.encode, docs, dev), hit_rates(index.korean.encode, docs, dev)


def dev_and_test_metrics(index, methods: tuple[str, ...], progress: ProgressFn = null_progress) -> list[dict]:
    """index.evaluate on the dev and the held-out test questions: one row per (set, method)."""
    rows = []
    for i, (name, path) in enumerate((("dev", DEV_QUESTIONS), ("test (held-out)", TEST_QUESTIONS))):
        progress(i / 2, name)
        for method, m in index.evaluate(load_questions(path), tuple(methods)).items():
            rows.append({"set": name, "method": method, **m})
    return rows
