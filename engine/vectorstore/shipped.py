"""Chapter 12's store, shipped: what the default query returns once the Constitution is loaded, so the section shows
a result before a learner loads anything (loading embeds 136 articles: half a minute on 2 cores).

Made by `python -m engine vector-db-precompute --only store` (assets/precomputed/ch12_store.json) in a throwaway
sqlite file, never in the learner's collections.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

from engine.core.progress import ProgressFn, null_progress

# The page's default query and k (ui/strings/12_vector_db.yaml ch12.default_query, pages/12_vector_db.py vs_k).
QUERY = "대통령의 임기는 몇 년인가"
K = 5


def store_data(progress: ProgressFn = null_progress) -> dict:
    """The default query's hits on a fresh store holding the Constitution, as `query_view.HitRow` dicts."""
    from engine.vectorstore.embedding import SentenceTransformerEmbedding
    from engine.vectorstore.query_view import hit_rows
    from engine.vectorstore.sqlite_store import SQLiteVectorStore
    from engine.vectorstore.store import DocumentStore

    embed = SentenceTransformerEmbedding()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shipped.sqlite"
        store = DocumentStore(
            SQLiteVectorStore(path, embed_model_name=embed.model_name), embed, "sqlite", "", "shipped"
        )
        documents = store.load_corpus(progress=progress)
        rows = hit_rows(store.query(QUERY, K))
    rows = [asdict(r) for r in rows]
    return {"query": QUERY, "k": K, "documents": documents, "model": embed.model_name, "rows": rows}
