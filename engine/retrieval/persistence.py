"""The search index on disk: one JSON file under LLMLAB_CACHE/retrieval per (index version, documents, expansions),
next to the Korean encoder's and the LM reranker's own cache files. `load_index` reads it back in about a second,
so indexes persist across restarts."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from engine.core.config import get_settings
from engine.core.corpus import CorpusSpec, Doc, corpus_spec
from engine.core.progress import ProgressFn, null_progress
from engine.retrieval.bm25 import BM25Index
from engine.retrieval.dense import DenseIndex
from engine.retrieval.expansion import expansions
from engine.retrieval.index import SearchIndex
from engine.retrieval.korean_dense import corpus_hash, encoder_path, load_or_train

INDEX_VERSION = 5  # 5: the LM reranker carries a trained adapter


def index_path(docs: list[Doc], extra: list[list[str]]) -> Path:
    h = hashlib.sha256(json.dumps(extra, ensure_ascii=False).encode()).hexdigest()[:8]
    return get_settings().cache_dir / "retrieval" / f"index-v{INDEX_VERSION}-{corpus_hash(docs)}-{h}.json"


def index_built(corpus: str | CorpusSpec = "constitution") -> bool:
    """Both cache files exist (pages ask on every rerun, so nothing is loaded here; load_index validates)."""
    spec = corpus_spec(corpus)
    docs = spec.documents()
    return index_path(docs, expansions(spec, docs)).exists() and encoder_path(docs).exists()


def save_index(index: SearchIndex, tokens: list[list[str]], ws_tokens: list[list[str]]) -> Path:
    """Write the index (with the BM25 token lists it was built from) atomically; returns the file."""
    path = index_path(index.docs, index.expansions)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{time.time_ns()}.tmp")
    tmp.write_text(
        json.dumps(
            {
                "corpus": index.corpus,
                "tokens": tokens,
                "ws_tokens": ws_tokens,
                "alpha": index.alpha,
                "alpha_table": index.alpha_table,
                "rerank_weights": list(index.reranker.weights) if index.reranker else None,
                "rerank_table": index.rerank_table,
                "rerank_adapter": (
                    [m.tolist() for m in index.reranker.adapter] if index.reranker and index.reranker.adapter else None
                ),
                "adapter_history": index.adapter_history,
                "notes": index.notes,
                "build_seconds": index.build_seconds,
                "doc_matrix": np.round(index.dense.matrix, 6).tolist(),
            },
            ensure_ascii=False,
        )
    )
    tmp.replace(path)
    return path


def load_index(corpus: str | CorpusSpec = "constitution", progress: ProgressFn = null_progress) -> SearchIndex | None:
    """The persisted index, or None if it was never built (or was built for another version of the corpus)."""
    from engine.retrieval.late_interaction import load_states

    spec = corpus_spec(corpus)
    docs = spec.documents()
    extra = expansions(spec, docs)
    path = index_path(docs, extra)
    if not path.exists():
        return None
    encoder = load_or_train(docs, train=False)
    if encoder is None:
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    progress(0.5, "loading the index")
    dense = DenseIndex("korean-morph", encoder.encode, np.array(saved["doc_matrix"], dtype=np.float64))
    index = SearchIndex(
        spec,
        docs,
        BM25Index.build(saved["tokens"]),
        BM25Index.build(saved["ws_tokens"]),
        encoder,
        dense,
        float(saved["alpha"]),
        saved.get("alpha_table", []),
        float(saved.get("build_seconds", 0.0)),
    )
    index.expansions = extra
    index.rerank_table = saved.get("rerank_table", [])
    index.notes = saved.get("notes", [])
    if saved.get("rerank_weights"):
        index.reranker = load_states(docs)
        if index.reranker is not None:
            index.reranker.weights = tuple(saved["rerank_weights"])
            if saved.get("rerank_adapter"):
                index.reranker.set_adapter(tuple(np.array(m, dtype=np.float32) for m in saved["rerank_adapter"]))
    index.adapter_history = saved.get("adapter_history", [])
    progress(1.0, "index loaded")
    return index
