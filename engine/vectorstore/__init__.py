"""Chapter 12's vector store behind LlamaIndex: an embedded, persistent store by default, Pinecone with a key.

- `embedding`: a LlamaIndex `BaseEmbedding` over the packaged sentence-transformers model (never a download).
- `sqlite_store`: `SQLiteVectorStore`, a LlamaIndex `BasePydanticVectorStore` on one sqlite file under LLMLAB_CACHE
  (transactions make every insert/update/delete atomic; metadata filters run as SQL before the vector search).
- `store`: `DocumentStore`, the CRUD + query API the page and the CLI use, and `open_store`.
- `shipped`: the default query's answer on a store holding the Constitution (assets/precomputed/ch12_store.json).
"""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face
from engine.vectorstore.store import (
    DocumentStore,
    DuplicateId,
    Hit,
    MissingId,
    StoreCorrupted,
    StoreError,
    open_store,
    reset_collection,
    store_path,
)

_LAZY = {
    "PARTS": "query_view",
    "SentenceTransformerEmbedding": "embedding",
    "article_filter": "query_view",
    "hit_rows": "query_view",
}
__all__ = [
    "PARTS",
    "DocumentStore",
    "DuplicateId",
    "Hit",
    "MissingId",
    "SentenceTransformerEmbedding",
    "StoreCorrupted",
    "StoreError",
    "article_filter",
    "hit_rows",
    "open_store",
    "reset_collection",
    "store_path",
]
__getattr__ = lazy_face(__name__, globals(), _LAZY)
