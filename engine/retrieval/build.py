"""Building the search index for a corpus spec, once, then loading it from the cache.

`build_index` trains what is missing (the Korean encoder, ≈30 s–2 min on 2 cores; the article states of the LM
reranker, ≈1–2 min, and its adapter trained on the expansion questions, ≈2–3 min on one core), chooses α and the
rerank weights on the corpus's dev questions (if it has any: otherwise the defaults), and writes everything under
LLMLAB_CACHE (persistence.py).
"""

from __future__ import annotations

import time

import numpy as np

from engine.core.corpus import CorpusSpec, corpus_spec
from engine.core.progress import ProgressFn, null_progress
from engine.retrieval.bm25 import BM25Index
from engine.retrieval.dense import DenseIndex
from engine.retrieval.evaluation import Question, load_questions
from engine.retrieval.expansion import expansions, search_text
from engine.retrieval.hybrid import choose_alpha
from engine.retrieval.index import DEFAULT_ALPHA, SearchIndex
from engine.retrieval.korean_dense import TrainConfig, load_or_train
from engine.retrieval.persistence import index_path, load_index, save_index
from engine.retrieval.tokenizers import kiwi_content, whitespace_tokens


def build_index(
    corpus: str | CorpusSpec = "constitution",
    progress: ProgressFn = null_progress,
    config: TrainConfig | None = None,
    force: bool = False,
    reranker: bool = True,
) -> SearchIndex:
    """Everything a search needs, built once and cached: BM25, the Korean encoder (trained if missing), α, and —
    unless `reranker` is False — the LM reranker's article states and its fusion weights.

    `corpus` is a spec (engine/core/corpus.py: `CONSTITUTION`, `documents_corpus(...)`) or a name the CLI takes."""
    spec = corpus_spec(corpus)
    docs = spec.documents()
    extra = expansions(spec, docs)
    path = index_path(docs, extra)
    if path.exists() and not force:
        loaded = load_index(spec, progress)
        if loaded is not None and (loaded.reranker is not None or not reranker):
            return loaded
    start = time.perf_counter()
    progress(0.0, "Kiwi morphemes for BM25")
    texts = [search_text(d, e) for d, e in zip(docs, extra, strict=True)]
    tokens = [kiwi_content(t) for t in texts]
    ws_tokens = [whitespace_tokens(t) for t in texts]
    encoder = load_or_train(docs, config, lambda f, m: progress(0.03 + 0.3 * f, m))
    progress(0.34, "encoding documents")
    dense = DenseIndex("korean-morph", encoder.encode, np.asarray(encoder.encode(texts)))
    index = SearchIndex(spec, docs, BM25Index.build(tokens), BM25Index.build(ws_tokens), encoder, dense, DEFAULT_ALPHA)
    index.expansions = extra
    dev_path = spec.dev_questions
    dev = load_questions(dev_path) if dev_path is not None and dev_path.exists() else []
    if dev:
        progress(0.36, "choosing the hybrid weight α on the dev questions")
        gold = [index.doc_ids.index(q.doc_id) for q in dev]
        index.alpha, index.alpha_table = choose_alpha(
            list(index.score_matrix(dev, "bm25")), list(index.score_matrix(dev, "dense")), gold
        )
    if reranker:
        _attach_reranker(index, dev, lambda f, m: progress(0.38 + 0.6 * f, m))
    index.build_seconds = round(time.perf_counter() - start, 2)
    save_index(index, tokens, ws_tokens)
    progress(1.0, f"index ready ({index.build_seconds:.0f} s)")
    return index


def _attach_reranker(index: SearchIndex, dev: list[Question], progress: ProgressFn) -> None:
    """Article states of the LM (cached per corpus), then the fusion weights chosen on `dev` (if any)."""
    from engine.models.registry import ModelUnavailable
    from engine.retrieval.late_interaction import DEFAULT_WEIGHTS, build_states, choose_weights, train_adapter

    try:
        reranker = build_states(index.docs, lambda f, m: progress(0.5 * f, m))
    except (ModelUnavailable, ValueError, OSError) as exc:
        index.notes.append(f"LM reranker skipped: {exc}")
        return
    reranker.weights = DEFAULT_WEIGHTS
    index.reranker = reranker
    train = [(q, i) for i, extra in enumerate(index.expansions) for q in extra]
    if train:
        adapter, index.adapter_history = train_adapter(
            reranker, train, progress=lambda f, m: progress(0.5 + 0.35 * f, m)
        )
        reranker.set_adapter(adapter)
    if not dev:
        return
    rows = []
    for i, q in enumerate(dev):
        if i % 10 == 0:
            progress(0.85 + 0.15 * i / len(dev), f"rerank weights on the dev questions {i}/{len(dev)}")
        p = index.pipeline(q.question)
        rows.append((p["candidates"], p["bm25"], p["dense"], p["lm"], p["type"], index.doc_ids.index(q.doc_id)))
    reranker.weights, index.rerank_table = choose_weights(rows)


def get_index(corpus: str | CorpusSpec = "constitution", progress: ProgressFn = null_progress) -> SearchIndex:
    """The cached index, built first if it is missing."""
    return load_index(corpus, progress) or build_index(corpus, progress)
