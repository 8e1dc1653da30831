"""Search over a corpus, in one import: the public entry of the search engine (chapters 10–11).

Where each part lives:
- `pipeline`: the named pipelines (`bm25`, `dense`, `hybrid`, `rerank` = `BEST_PIPELINE`) and what they compute;
- `index`: `SearchIndex`, the built index (documents, retrievers, tuned weights, per-retriever scores);
- `build`: `build_index` / `get_index` for a corpus spec (engine/core/corpus.py);
- `persistence`: the index on disk under LLMLAB_CACHE (`load_index`, `index_built`);
- `expansion`: document expansion with the corpus's training questions;
- `query`: `check_query`, the bounds of a query;  `studies`: `fusion_study`;  `types`: `Hit`, `SearchResult`.
"""

from __future__ import annotations

from engine.retrieval.build import build_index, get_index
from engine.retrieval.index import DEFAULT_ALPHA, SearchIndex
from engine.retrieval.persistence import INDEX_VERSION, index_built, load_index
from engine.retrieval.pipeline import BEST_PIPELINE, METHODS, PIPELINES
from engine.retrieval.query import MAX_QUERY_CHARS, check_query
from engine.retrieval.studies import fusion_study
from engine.retrieval.types import Hit, SearchResult

__all__ = [
    "BEST_PIPELINE",
    "DEFAULT_ALPHA",
    "INDEX_VERSION",
    "MAX_QUERY_CHARS",
    "METHODS",
    "PIPELINES",
    "Hit",
    "SearchIndex",
    "SearchResult",
    "build_index",
    "check_query",
    "fusion_study",
    "get_index",
    "index_built",
    "load_index",
]
