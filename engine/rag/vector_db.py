"""The vector database under the RAG chapter: Chroma, persistent, behind LlamaIndex, with the Korean encoder.

- `KoreanEmbedding`: a LlamaIndex embedding over the project's Korean morpheme encoder (engine/retrieval/
  korean_dense.py) — the packaged MiniLM cuts Hangul into jamo (hit@5 ≈ .06 on our questions), this one was
  trained for the corpus. For the Constitution it is the encoder `build_index` trained; for an uploaded document
  set it is trained the same way (`load_or_train` on the same `documents_corpus` docs), so both share one cache file.
- `chroma_index`: a `VectorStoreIndex` over a persistent Chroma collection under `<LLMLAB_CACHE>/rag/chroma`. The
  collection's name carries a hash of the passages and the embedding model, so it is rebuilt exactly when either
  changes and reopened (no embedding) otherwise; older versions for the same corpus id are dropped (derived data).
- `compare_stores`: one run on the same vectors — the Constitution's Korean embeddings (136 × 256, the test
  questions as queries) and 20,000 random unit vectors (seed 0) — of insert time, median query latency and
  recall@10 against exact brute force, for Chroma (chromadb directly and through LlamaIndex), chapter 12's sqlite
  store and hnswlib. Measured (tests/bench/bench_vector_db.py, 2 shared cores, 100 queries, median top-10):

  | 20,000 × 256     | clustered: query · recall · insert | random directions: query · recall · insert |
  |------------------|------------------------------------|--------------------------------------------|
  | exact numpy      | 0.49 ms · 1 · —                    | 4.0 ms · 1 · —                             |
  | Chroma           | 0.58 ms · .999 · 5.3 s             | 0.74 ms · .42 · 10.6 s                     |
  | Chroma+LlamaIndex| 1.5 ms · .999 · 13.0 s             | 5.7 ms · .43 · 18.0 s                      |
  | sqlite (ch.12)   | 40.7 ms · 1 · 1.6 s                | 153.7 ms · 1 · 3.3 s                       |
  | hnswlib          | 0.07 ms · .998 · 1.2 s             | 0.22 ms · .42 · 10.6 s                     |

  The Constitution (136 × 256, 40 test questions): every store recall 1; Chroma 0.65 ms, sqlite 0.31 ms — at this
  size a scan is as fast as an index. The sqlite store rereads every vector from disk per query, hence its cost.
  Random directions are HNSW's hard case (M=16, ef=100 keep .42 in Chroma and hnswlib alike).
"""

from __future__ import annotations

import hashlib
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from engine.core.config import get_settings
from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError

STORES = ("exact", "chroma", "chroma-llamaindex", "sqlite", "hnswlib")
DATASETS = ("constitution", "synthetic", "clustered")
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 16, 100, 100  # Chroma's defaults, given to hnswlib too
EMBED_BATCH = 64


# --- the embedding -------------------------------------------------------------------------------------------
class KoreanEmbedding(BaseEmbedding):
    """Unit vectors from the Korean morpheme encoder (numpy only: no torch at query time, ≈1 ms per query).

    A text without Korean content morphemes (emoji, only English) has no vector; it gets the zero vector, whose
    cosine with every document is 0 — never a made-up direction."""

    _encoder: Any = PrivateAttr(default=None)

    def __init__(self, encoder: Any, model_name: str = "korean-morph", **kwargs: Any):
        super().__init__(model_name=model_name, embed_batch_size=EMBED_BATCH, **kwargs)
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        return "KoreanEmbedding"

    @property
    def encoder(self) -> Any:
        return self._encoder

    @property
    def dimension(self) -> int:
        return int(self._encoder.base.shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.asarray(self._encoder.encode(list(texts)), dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.where(norms > 1e-9, vectors / np.maximum(norms, 1e-12), 0.0).astype(np.float32)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.encode([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()


def corpus_docs(corpus_id: str, passages) -> list:
    """The engine.core.corpus Docs a search index is built from: the Constitution's own articles when the passages
    are the Constitution, else `documents_corpus(corpus_id, passages)` (what the retriever indexes too)."""
    from engine.core.corpus import documents_corpus, load_constitution

    passages = list(passages)
    if passages and all(p.source == "constitution" for p in passages):
        docs = load_constitution()
        if [d.doc_id for d in docs] == [p.doc_id for p in passages]:
            return docs
    return documents_corpus(corpus_id, [(p.doc_id, p.text) for p in passages]).documents()


def korean_embedding(corpus_id: str, passages, progress: ProgressFn = null_progress) -> KoreanEmbedding:
    """The Korean encoder for this document set (trained and cached on first use: ≈30 s–2 min on 2 cores)."""
    from engine.retrieval.korean_dense import corpus_hash, load_or_train

    docs = corpus_docs(corpus_id, passages)
    encoder = load_or_train(docs, progress=progress)
    return KoreanEmbedding(encoder, model_name=f"korean-morph-{corpus_hash(docs)}")


# --- the persistent index ------------------------------------------------------------------------------------
_LOCK = threading.Lock()


def rag_chroma_dir() -> Path:
    return get_settings().cache_dir / "rag" / "chroma"


def passages_hash(passages, model_name: str) -> str:
    h = hashlib.sha256(model_name.encode() + b"\0")
    for p in passages:
        for part in (p.doc_id, p.title, p.text, p.source):
            h.update(part.encode("utf-8") + b"\0")
    return h.hexdigest()[:12]


def collection_prefix(corpus_id: str) -> str:
    """An ASCII, Chroma-valid prefix for a corpus id (Hangul ids get a hash): `rag-<slug>-`."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", corpus_id).strip("-")[:40] or "c"
    tag = hashlib.sha1(corpus_id.encode("utf-8")).hexdigest()[:6]
    return f"rag-{slug}-{tag}-"


@dataclass
class IndexInfo:
    collection: str
    rebuilt: bool  # False: reopened as it was
    passages: int
    seconds: float


def chroma_index(
    corpus_id: str,
    passages,
    embed_model: BaseEmbedding | None = None,
    progress: ProgressFn = null_progress,
    path: Path | None = None,
):
    """A LlamaIndex `VectorStoreIndex` over a persistent Chroma collection holding `passages` (one node each: node
    id = doc_id, metadata doc_id/title/source). Rebuilt only when the passages or the embedding model change.

    The returned index has `.rag_info` (IndexInfo): which collection, whether it was rebuilt, how long it took."""
    from llama_index.core import VectorStoreIndex

    from engine.vectorstore.chroma_store import ChromaStore, chroma_client
    from engine.vectorstore.embedding import disable_llamaindex_llm

    passages = list(passages)
    if not passages:
        raise InputError("rag.doc.no_passages")
    disable_llamaindex_llm()
    start = time.perf_counter()
    embed_model = embed_model or korean_embedding(corpus_id, passages, lambda f, m: progress(0.5 * f, m))
    prefix = collection_prefix(corpus_id)
    name = prefix + passages_hash(passages, embed_model.model_name)
    client = chroma_client(path or rag_chroma_dir())
    with _LOCK:
        existing = {c.name for c in client.list_collections()}
        col = client.get_collection(name, embedding_function=None) if name in existing else None
        rebuilt = col is None or col.count() != len(passages)  # a crash mid-build leaves fewer rows: rebuild
        if rebuilt:
            if col is not None:
                client.delete_collection(name)
            col = client.create_collection(
                name, metadata={"hnsw:space": "cosine", "embed_model": embed_model.model_name}, embedding_function=None
            )
            store = ChromaStore(chroma_collection=col)
            nodes = passage_nodes(passages)
            for i in range(0, len(nodes), EMBED_BATCH):
                progress(0.5 + 0.5 * i / len(nodes), f"embedding passages {i:,}/{len(nodes):,}")
                batch = nodes[i : i + EMBED_BATCH]
                for node, vec in zip(batch, embed_model.get_text_embedding_batch([n.text for n in batch]), strict=True):
                    node.embedding = vec
                store.add(batch)
            for old in existing:  # older versions of this corpus: derived data, dropped
                if old.startswith(prefix) and old != name:
                    client.delete_collection(old)
        store = ChromaStore(chroma_collection=col)
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed_model)
    index.rag_info = IndexInfo(name, rebuilt, len(passages), round(time.perf_counter() - start, 3))
    progress(1.0, f"{len(passages):,} passages in Chroma ({'built' if rebuilt else 'reopened'})")
    return index


def passage_nodes(passages) -> list:
    """One TextNode per passage (never split further: a passage is what a citation points to)."""
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    return [
        TextNode(
            id_=p.doc_id,
            text=p.text,
            metadata={"doc_id": p.doc_id, "title": p.title, "source": p.source},
            excluded_embed_metadata_keys=["doc_id", "title", "source"],
            excluded_llm_metadata_keys=["source"],
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=p.doc_id)},
        )
        for p in passages
    ]


# --- the comparison ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoreRow:
    store: str  # one of STORES
    dataset: str  # one of DATASETS
    n: int
    dim: int
    insert_s: float  # all vectors in (with the store's own persistence), wall seconds
    query_ms: float  # median latency of one top-k query, one query at a time
    recall_at_k: float  # against exact brute force on the same vectors
    k: int
    note: str = ""


@dataclass
class StoreComparison:
    rows: list[StoreRow]
    k: int
    queries: dict[str, int] = field(default_factory=dict)  # dataset -> number of queries timed

    def row(self, store: str, dataset: str) -> StoreRow | None:
        return next((r for r in self.rows if r.store == store and r.dataset == dataset), None)


def constitution_vectors(n_queries: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(documents, queries): the Constitution's 136 articles and its test questions, Korean-encoded (unit)."""
    from engine.core.corpus import load_constitution
    from engine.retrieval.evaluation import TEST_QUESTIONS, load_questions
    from engine.retrieval.korean_dense import load_or_train

    docs = load_constitution()
    embed = KoreanEmbedding(load_or_train(docs))
    questions = [q.question for q in load_questions(TEST_QUESTIONS)][:n_queries]
    return embed.encode([d.text for d in docs]), embed.encode(questions)


def synthetic_vectors(
    n: int, dim: int, n_queries: int, seed: int = 0, kind: str = "gaussian"
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors, fixed seed: "gaussian" directions (no structure at all: the hard case for an HNSW graph) or
    "clustered" (50 blobs, closer to real embeddings; engine.ann.exact.make_vectors)."""
    from engine.ann.exact import make_vectors

    x = make_vectors(n + n_queries, dim, seed=seed, kind=kind).astype(np.float32)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x[:n], x[n:]


def exact_top_k(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k most cosine-similar rows per query (unit vectors: a dot product), best first."""
    scores = queries @ data.T
    k = min(k, data.shape[0])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(top, order, axis=1)


def _recall(found: list[list[int]], truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f[:k]) & set(t.tolist())) / k for f, t in zip(found, truth, strict=True)]))


def _median_ms(times: list[float]) -> float:
    return round(statistics.median(times) * 1000, 4)


def compare_stores(
    datasets: Sequence[str] = DATASETS,
    n: int = 20_000,
    dim: int = 256,
    n_queries: int = 100,
    k: int = 10,
    seed: int = 0,
    stores: Sequence[str] = STORES,
    progress: ProgressFn = null_progress,
) -> StoreComparison:
    """Insert time, median query latency and recall@k per store on the same vectors (temporary directories)."""
    unknown = set(stores) - set(STORES)
    if unknown:
        raise InputError("input.unknown_choice", name="store", value=sorted(unknown)[0], choices=", ".join(STORES))
    rows: list[StoreRow] = []
    counts: dict[str, int] = {}
    steps = len(datasets) * len(stores)
    for di, dataset in enumerate(datasets):
        if dataset == "constitution":
            data, queries = constitution_vectors(n_queries)
        elif dataset in ("synthetic", "clustered"):
            data, queries = synthetic_vectors(
                n, dim, n_queries, seed, "gaussian" if dataset == "synthetic" else dataset
            )
        else:
            raise InputError("input.unknown_choice", name="dataset", value=dataset, choices=", ".join(DATASETS))
        counts[dataset] = len(queries)
        truth = exact_top_k(data, queries, k)
        for si, store in enumerate(stores):
            progress((di * len(stores) + si) / steps, f"{dataset}: {store}")
            with tempfile.TemporaryDirectory(prefix=f"llmlab-{store}-") as tmp:
                insert_s, times, found, note = _MEASURE[store](Path(tmp), data, queries, k)
            rows.append(
                StoreRow(
                    store,
                    dataset,
                    int(data.shape[0]),
                    int(data.shape[1]),
                    round(insert_s, 4),
                    _median_ms(times),
                    round(_recall(found, truth), 4),
                    k,
                    note,
                )
            )
    progress(1.0, "done")
    return StoreComparison(rows, k, counts)


def _timed_queries(queries: np.ndarray, search) -> tuple[list[float], list[list[int]]]:
    search(queries[0])  # warm-up (first-query allocations, lazy loads)
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        ids = search(q)
        times.append(time.perf_counter() - start)
        found.append(ids)
    return times, found


def _measure_exact(tmp: Path, data, queries, k):
    start = time.perf_counter()
    matrix = np.ascontiguousarray(data)
    insert_s = time.perf_counter() - start

    def search(q):
        return exact_top_k(matrix, q[None, :], k)[0].tolist()

    return (insert_s, *_timed_queries(queries, search), "numpy brute force: the ground truth")


def _measure_chroma(tmp: Path, data, queries, k):
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(str(tmp), settings=Settings(anonymized_telemetry=False))
    col = client.create_collection("bench", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    ids = [str(i) for i in range(len(data))]
    start = time.perf_counter()
    for i in range(0, len(data), 5_000):
        col.add(ids=ids[i : i + 5_000], embeddings=data[i : i + 5_000])
    insert_s = time.perf_counter() - start

    def search(q):
        return [int(x) for x in col.query(query_embeddings=[q], n_results=k, include=[])["ids"][0]]

    out = (insert_s, *_timed_queries(queries, search), f"chromadb directly, HNSW M={HNSW_M} ef={HNSW_EF_SEARCH}")
    client.close()  # the directory is deleted next
    return out


def _measure_chroma_llamaindex(tmp: Path, data, queries, k):
    import chromadb
    from chromadb.config import Settings

    from engine.vectorstore.chroma_store import ChromaStore

    client = chromadb.PersistentClient(str(tmp), settings=Settings(anonymized_telemetry=False))
    col = client.create_collection("bench", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    out = _measure_llamaindex_store(
        ChromaStore(chroma_collection=col), data, queries, k, "ChromaVectorStore (nodes, metadata, similarity)"
    )
    client.close()
    return out


def _measure_llamaindex_store(store, data, queries, k, what: str):
    """Insert as LlamaIndex nodes and query through `VectorStoreQuery`: the path a LlamaIndex app pays for."""
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores.types import VectorStoreQuery

    start = time.perf_counter()
    store.add([TextNode(id_=str(i), text=f"v{i}", embedding=v.tolist()) for i, v in enumerate(data)])
    insert_s = time.perf_counter() - start

    def search(q):
        res = store.query(VectorStoreQuery(query_embedding=q.tolist(), similarity_top_k=k))
        return [int(x) for x in res.ids]

    return (insert_s, *_timed_queries(queries, search), what)


def _measure_sqlite(tmp: Path, data, queries, k):
    from engine.vectorstore.sqlite_store import SQLiteVectorStore

    store = SQLiteVectorStore(tmp / "bench.sqlite")
    out = _measure_llamaindex_store(
        store, data, queries, k, "chapter 12's store: sqlite rows, exact numpy scan per query"
    )
    store.close()
    return out


def _measure_hnswlib(tmp: Path, data, queries, k):
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=data.shape[1])
    start = time.perf_counter()
    index.init_index(max_elements=len(data), M=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION, random_seed=0)
    index.add_items(data, np.arange(len(data)))
    index.save_index(str(tmp / "bench.bin"))  # persisted, like the others
    insert_s = time.perf_counter() - start
    index.set_ef(max(HNSW_EF_SEARCH, k))

    def search(q):
        labels, _ = index.knn_query(q[None, :], k=min(k, len(data)), num_threads=1)
        return labels[0].tolist()

    return (insert_s, *_timed_queries(queries, search), f"hnswlib in memory, M={HNSW_M} ef={HNSW_EF_SEARCH}")


_MEASURE = {
    "exact": _measure_exact,
    "chroma": _measure_chroma,
    "chroma-llamaindex": _measure_chroma_llamaindex,
    "sqlite": _measure_sqlite,
    "hnswlib": _measure_hnswlib,
}
