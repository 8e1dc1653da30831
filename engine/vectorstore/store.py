"""Documents in, documents out: CRUD, metadata filters and similarity search through LlamaIndex.

`open_store("constitution")` returns a `DocumentStore` whose LlamaIndex `VectorStoreIndex` sits on
- Chroma (default, backend="chroma"): a maintained embedded vector database with a persistent HNSW index,
  `<LLMLAB_CACHE>/vector_store/chroma/` (chroma_store.py; measured against the others in
  tests/bench/bench_vector_db.py);
- `SQLiteVectorStore` (backend="sqlite", formerly "local", still accepted): chapter 12's hand-written teaching store,
  one sqlite file `<LLMLAB_CACHE>/vector_store/<collection>.sqlite` searched by brute force;
- Pinecone, when PINECONE_API_KEY is set (or backend="pinecone"): `llama-index-vector-stores-pinecone`, imported
  only then (`pip install '.[cloud]'`).

The CRUD and filter semantics are the same on every backend (tests/engine/test_vector_store.py runs the behaviour
tests on sqlite and Chroma): a missing metadata key matches `!=` and `nin`, filters run before the vector search,
an update replaces the document's one vector, and `score` is the cosine similarity. One difference: Chroma has no
substring match on metadata, so `text_match` is refused there with a message.

One document = one LlamaIndex node (a constitution article is short); its node id is derived from the document id,
so updating a document replaces its vector instead of adding a second one. Every operation checks its input first
and raises a `StoreError` with a message for the learner, so a bad request never half-applies.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llama_index.core import VectorStoreIndex
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters

from engine.core.config import get_settings
from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError, clean_text
from engine.retrieval.types import Hit  # the app's one hit type (as_dict: doc_id, score, text, metadata)
from engine.vectorstore.embedding import SentenceTransformerEmbedding, disable_llamaindex_llm
from engine.vectorstore.errors import DuplicateId, MissingId, StoreCorrupted, StoreError
from engine.vectorstore.sqlite_store import SQLiteVectorStore, StoreCorruptedError

BACKENDS = ("chroma", "sqlite", "pinecone")
DEFAULT_BACKEND = "chroma"  # the embedded default when no Pinecone key is set
ALIASES = {"local": "sqlite"}  # the sqlite store's name before Chroma became the default
EMBEDDED = ("chroma", "sqlite")

MAX_TEXT_CHARS = 10_000
MAX_BATCH = 5_000
KEEP_BACKUPS = 3  # renamed old files kept per collection by reset_collection
# Hangul syllables too: a Korean learner names a collection in Korean (헌법); the name is a file name, never a path.
_COLLECTION = re.compile(r"^[A-Za-z0-9_\-\uac00-\ud7a3]{1,48}$")
OPERATORS = ("==", "!=", ">", ">=", "<", "<=", "in", "nin", "text_match")


@dataclass
class Record:
    doc_id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def store_path(collection: str) -> Path:
    return get_settings().cache_dir / "vector_store" / f"{_check_collection(collection)}.sqlite"


def node_id_for(doc_id: str) -> str:
    """ASCII node id from any document id ("제1조" -> "doc-…"): Pinecone accepts only ASCII ids."""
    return "doc-" + hashlib.sha1(doc_id.encode("utf-8")).hexdigest()[:24]


class DocumentStore:
    def __init__(self, vector_store: Any, embed_model: Any, backend: str, location: str, collection: str):
        disable_llamaindex_llm()
        self.vector_store = vector_store
        self.embed_model = embed_model
        self.backend = backend
        self.location = location
        self.collection = collection
        # embed_model passed explicitly: LlamaIndex never falls back to its OpenAI default
        self.index = VectorStoreIndex.from_vector_store(vector_store, embed_model=embed_model)

    # --- writes -----------------------------------------------------------------------------------------------
    def add(self, records: Iterable[Record | dict], progress: ProgressFn = null_progress, batch: int = 32) -> int:
        """Insert new documents. Ids already stored, or repeated in the batch, are refused before anything is
        written (use `update` to change a document)."""
        recs = [_record(r) for r in records]
        if not recs:
            raise StoreError("store.nothing_to_add")
        if len(recs) > MAX_BATCH:
            raise StoreError("store.batch_too_large", count=len(recs), limit=MAX_BATCH)
        seen: set[str] = set()
        repeated = sorted({r.doc_id for r in recs if r.doc_id in seen or seen.add(r.doc_id)})
        if repeated:
            raise DuplicateId("store.duplicate_in_batch", ids=", ".join(repeated[:5]))
        existing = self._existing([r.doc_id for r in recs])
        if existing:
            more = " …" if len(existing) > 5 else ""
            raise DuplicateId("store.already_exists", ids=", ".join(sorted(existing)[:5]) + more)
        for start in range(0, len(recs), batch):
            progress(start / len(recs), f"embedding and storing {start:,}/{len(recs):,}")
            self.index.insert_nodes([_node(r) for r in recs[start : start + batch]])
        progress(1.0, f"stored {len(recs):,} documents")
        return len(recs)

    def update(self, doc_id: str, text: str | None = None, metadata: dict[str, Any] | None = None) -> Record:
        """Replace a document's text and/or metadata (its vector is recomputed); one transaction on disk."""
        doc_id = _doc_id(doc_id)
        old = self.get(doc_id)
        if old is None:
            raise MissingId("store.missing_for_update", doc_id=doc_id)
        new = _record(
            Record(doc_id, old.text if text is None else text, old.metadata if metadata is None else metadata)
        )
        # sqlite: delete + insert in one transaction; Chroma and Pinecone upsert by node id (one node per document)
        kwargs = {"replace_ref_docs": True} if self.backend == "sqlite" else {}
        self.index.insert_nodes([_node(new)], **kwargs)
        return new

    def delete(self, doc_id: str) -> None:
        doc_id = _doc_id(doc_id)
        if not self._existing([doc_id]):
            raise MissingId("store.missing_for_delete", doc_id=doc_id)
        if self.backend in EMBEDDED:
            self.index.delete_ref_doc(doc_id)
        else:
            self.index.delete_nodes([node_id_for(doc_id)])

    def load_corpus(self, replace: bool = False, progress: ProgressFn = null_progress) -> int:
        """The Constitution (engine.core.corpus), one document per article; existing ids are skipped unless replace."""
        from engine.core.corpus import load_constitution

        docs = load_constitution()
        records = [Record(d.doc_id, d.text, corpus_metadata(d)) for d in docs]
        if replace:
            for r in records:
                if self._existing([r.doc_id]):
                    self.delete(r.doc_id)
        missing = set(r.doc_id for r in records) - self._existing([r.doc_id for r in records])
        todo = [r for r in records if r.doc_id in missing]
        return self.add(todo, progress) if todo else 0

    # --- reads ------------------------------------------------------------------------------------------------
    def get(self, doc_id: str) -> Record | None:
        doc_id = _doc_id(doc_id)
        if self.backend in EMBEDDED:
            nodes = self.vector_store.get_nodes(node_ids=[node_id_for(doc_id)])
            if not nodes:
                return None
            return Record(doc_id, nodes[0].get_content(), dict(nodes[0].metadata))
        fetched = self.vector_store._pinecone_index.fetch(ids=[node_id_for(doc_id)]).vectors
        if not fetched:
            return None
        meta = dict(next(iter(fetched.values())).metadata or {})
        return Record(doc_id, meta.pop("text", ""), {k: v for k, v in meta.items() if not k.startswith("_")})

    def count(self) -> int:
        if self.backend in EMBEDDED:
            return self.vector_store.count()
        return int(self.vector_store._pinecone_index.describe_index_stats().total_vector_count)

    def ids(self) -> list[str]:
        if self.backend in EMBEDDED:
            return self.vector_store.ref_doc_ids()
        raise StoreError("store.no_listing")

    def query(self, text: str, k: int = 5, where: Any = None) -> list[Hit]:
        """Top-k documents by cosine similarity, among those that pass the metadata filter `where`."""
        cleaned = clean_text(text, max_chars=MAX_TEXT_CHARS)  # empty -> InputError; too long -> cut
        if not 1 <= int(k) <= 100:
            raise StoreError("store.bad_k", value=k)
        filters = parse_where(where)
        if self.backend == "chroma":
            _check_chroma_filters(filters)
        retriever = self.index.as_retriever(similarity_top_k=int(k), filters=filters)
        hits = []
        for nws in retriever.retrieve(cleaned.text):
            node = nws.node
            hits.append(
                Hit(
                    node.ref_doc_id or node.node_id,
                    float(nws.score or 0.0),
                    text=node.get_content(),
                    metadata=dict(node.metadata),
                )
            )
        return hits

    def info(self) -> dict:
        return {
            "backend": self.backend,
            "location": self.location,
            "collection": self.collection,
            "documents": self.count(),
            "embed_model": self.embed_model.model_name,
        }

    def _existing(self, doc_ids: list[str]) -> set[str]:
        if self.backend == "sqlite":
            return self.vector_store.existing_ref_docs(doc_ids)
        if self.backend == "chroma":
            by_node = {node_id_for(d): d for d in doc_ids}
            return {by_node[n] for n in self.vector_store.existing_node_ids(list(by_node))}
        found = self.vector_store._pinecone_index.fetch(ids=[node_id_for(d) for d in doc_ids]).vectors
        by_node = {node_id_for(d): d for d in doc_ids}
        return {by_node[n] for n in found}


# --- input checks ---------------------------------------------------------------------------------------------
def _doc_id(doc_id: Any) -> str:
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise InputError("store.missing_doc_id")
    doc_id = clean_text(doc_id, max_chars=10_000).text.strip()
    if len(doc_id) > 200 or "\n" in doc_id:
        raise InputError("store.bad_doc_id")
    return doc_id


def _record(r: Record | dict) -> Record:
    if isinstance(r, dict):
        unknown = set(r) - {"doc_id", "text", "metadata"}
        if unknown:
            raise StoreError("store.unknown_fields", fields=sorted(unknown))
        r = Record(r.get("doc_id", ""), r.get("text", ""), r.get("metadata") or {})
    doc_id = _doc_id(r.doc_id)
    try:
        cleaned = clean_text(r.text, max_chars=MAX_TEXT_CHARS)
    except InputError as exc:
        raise InputError("store.empty_text", doc_id=doc_id) from exc
    if cleaned.truncated:
        raise InputError("store.text_too_long", doc_id=doc_id, chars=cleaned.original_chars, limit=MAX_TEXT_CHARS)
    return Record(doc_id, cleaned.text, _metadata(r.metadata, doc_id))


def _metadata(meta: Any, doc_id: str) -> dict[str, Any]:
    if not isinstance(meta, dict):
        raise StoreError("store.metadata_not_object", doc_id=doc_id)
    if len(meta) > 32:
        raise StoreError("store.too_many_metadata_keys", doc_id=doc_id, limit=32)
    out = {}
    for key, value in meta.items():
        if not isinstance(key, str) or not re.match(r"^[\w\- .]{1,64}$", key) or key.startswith("_"):
            raise StoreError("store.bad_metadata_key", doc_id=doc_id, key=key)
        if key in ("text", "doc_id", "ref_doc_id", "document_id"):
            raise StoreError("store.reserved_metadata_key", doc_id=doc_id, key=key)
        if not (value is None or isinstance(value, str | int | float | bool)):
            raise StoreError("store.bad_metadata_value", doc_id=doc_id, key=key)
        if isinstance(value, str) and len(value) > 1_000:
            raise StoreError("store.metadata_value_too_long", doc_id=doc_id, key=key, limit=1_000)
        out[key] = value
    return out


def _node(r: Record) -> TextNode:
    return TextNode(
        id_=node_id_for(r.doc_id),
        text=r.text,
        metadata=r.metadata,
        # only the text is embedded; metadata is for filtering (LlamaIndex would otherwise prepend "key: value")
        excluded_embed_metadata_keys=list(r.metadata),
        excluded_llm_metadata_keys=list(r.metadata),
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=r.doc_id)},  # ref_doc_id = doc_id
    )


def corpus_metadata(doc) -> dict[str, Any]:
    """The filterable fields of a corpus Doc (flat scalars only)."""
    meta = {k: v for k, v in (doc.meta or {}).items() if isinstance(v, str | int | float | bool) and k != "source"}
    meta["title"] = doc.title
    return meta


def parse_where(where: Any) -> MetadataFilters | None:
    """`{"part": "부칙"}` (all equal) or `[["number", ">=", 10], ["part", "==", "본문"]]` -> MetadataFilters (AND)."""
    if where in (None, {}, []):
        return None
    if isinstance(where, MetadataFilters):
        return where
    triples = list(where.items()) if isinstance(where, dict) else where
    filters = []
    for item in triples:
        if isinstance(where, dict):
            key, op, value = item[0], "==", item[1]
        elif isinstance(item, list | tuple) and len(item) == 3:
            key, op, value = item
        else:
            raise StoreError("store.bad_filter", value=item)
        if op not in OPERATORS:
            raise StoreError("store.unknown_operator", op=op, choices=", ".join(OPERATORS))
        if op in ("in", "nin") and not isinstance(value, list):
            raise StoreError("store.operator_needs_list", op=op)
        try:
            filters.append(MetadataFilter(key=str(key), value=value, operator=FilterOperator(op)))
        except Exception as exc:  # pydantic rejects e.g. a dict as value
            raise StoreError("store.invalid_filter", key=key, op=op, value=value, reason=exc) from exc
    return MetadataFilters(filters=filters)


def _check_chroma_filters(filters: MetadataFilters | None) -> None:
    """Chroma's `where` has no substring match on metadata (its `$contains` is for documents and lists)."""
    for f in filters.filters if filters is not None else []:
        if isinstance(f, MetadataFilters):
            _check_chroma_filters(f)
        elif f.operator not in _CHROMA_OPERATORS:
            raise StoreError("store.operator_not_supported", op=f.operator.value, backend="chroma")


_CHROMA_OPERATORS = {FilterOperator(op) for op in ("==", "!=", ">", ">=", "<", "<=", "in", "nin")}


def _check_collection(collection: str) -> str:
    if not isinstance(collection, str) or not _COLLECTION.match(collection):
        raise InputError("store.bad_collection_name", name=collection)
    return collection


# --- opening ----------------------------------------------------------------------------------------------------
def resolve_backend(backend: str | None, embedded: str = DEFAULT_BACKEND) -> str:
    """The backend a call means: an explicit name (or the old alias "local"), else Pinecone when PINECONE_API_KEY is
    set, else the embedded default (`embedded`: chapter 12's page passes "sqlite", its teaching store)."""
    if backend is None:
        return "pinecone" if get_settings().pinecone_api_key else ALIASES.get(embedded, embedded)
    backend = ALIASES.get(backend, backend)
    if backend not in BACKENDS:
        raise StoreError("store.unknown_backend", backend=backend, choices=", ".join((*BACKENDS, *ALIASES)))
    return backend


def open_store(
    collection: str = "constitution", backend: str | None = None, embed_model: Any = None, embedded: str = "chroma"
) -> DocumentStore:
    """Chroma (default), the chapter-12 sqlite store (backend="sqlite" or "local"), or Pinecone when
    PINECONE_API_KEY is set (or backend="pinecone"). `embedded` picks the store used when no backend is named and
    no Pinecone key is set."""
    _check_collection(collection)
    backend = resolve_backend(backend, embedded)
    if backend == "pinecone":
        embed_model = embed_model or SentenceTransformerEmbedding()
        from engine.vectorstore.pinecone_backend import pinecone_vector_store

        vs, where = pinecone_vector_store(collection, embed_model.dimension)
        return DocumentStore(vs, embed_model, "pinecone", where, collection)
    embed_model = embed_model or SentenceTransformerEmbedding()
    if backend == "sqlite":
        path = store_path(collection)
        try:
            vs = SQLiteVectorStore(path, embed_model_name=embed_model.model_name)
        except StoreCorruptedError as exc:
            raise StoreCorrupted(exc.code, **exc.fmt) from exc
        return DocumentStore(vs, embed_model, "sqlite", str(path), collection)
    from engine.vectorstore.chroma_store import ChromaOtherModel, ChromaStore, chroma_dir, chroma_name

    path, name = chroma_dir(), chroma_name(collection)
    try:
        col = _chroma_collection(path, name, embed_model.model_name)
    except ChromaOtherModel as exc:
        raise StoreCorrupted(
            "store.other_embedding_model",
            path=f"{path} ({name})",
            built_with=exc.built_with,
            model=embed_model.model_name,
        ) from exc
    return DocumentStore(ChromaStore(chroma_collection=col), embed_model, "chroma", f"{path} ({name})", collection)


def _chroma_collection(path: Path, name: str, model_name: str):
    from engine.vectorstore.chroma_store import ChromaOtherModel, open_chroma_collection

    try:
        return open_chroma_collection(path, name, model_name)
    except ChromaOtherModel:
        raise
    except Exception as exc:  # chromadb raises its own (Rust-side) errors for a damaged directory
        raise StoreCorrupted("store.unreadable", path=path, reason=exc) from exc


def reset_collection(collection: str, backend: str = "sqlite") -> Path | str | None:
    """Start a collection afresh; the old one is kept aside, never deleted. Returns where it went (None: nothing
    to reset).

    sqlite: the file is renamed `<name>.sqlite.bak-<time>` (works on a damaged file too). Chroma: the collection is
    renamed `<chroma name>-bak-<time>` inside the same database (the newest KEEP_BACKUPS kept either way)."""
    _check_collection(collection)
    backend = ALIASES.get(backend, backend)
    if backend == "chroma":
        return _reset_chroma(collection)
    path = store_path(collection)
    if not path.exists():
        return None
    backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
    path.rename(backup)
    for suffix in ("-wal", "-shm"):  # sqlite's write-ahead log travels with its database
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(backup.with_name(backup.name + suffix))
    for old in sorted(path.parent.glob(f"{path.name}.bak-*"))[:-KEEP_BACKUPS]:  # keep the newest few
        old.unlink(missing_ok=True)
    return backup


def _reset_chroma(collection: str) -> str | None:
    from engine.vectorstore.chroma_store import chroma_client, chroma_dir, chroma_name

    client, name = chroma_client(chroma_dir()), chroma_name(collection)
    existing = [c.name for c in client.list_collections()]
    if name not in existing:
        return None
    backup = f"{name}-bak-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 1000:03d}"
    client.get_collection(name, embedding_function=None).modify(name=backup)
    for old in sorted(c for c in existing if c.startswith(f"{name}-bak-"))[: -(KEEP_BACKUPS - 1) or None]:
        client.delete_collection(old)
    return backup
