"""An embedded, persistent vector store for LlamaIndex: one sqlite file, exact cosine search in numpy.

Why sqlite and not LlamaIndex's SimpleVectorStore (JSON): SimpleVectorStore rewrites whole JSON files on every
persist, split across several files written one after the other, so a crash mid-write can leave a store that does
not load. sqlite gives every insert/update/delete its own transaction (all or nothing, journaled on disk), updates
one row instead of the whole file, tells a damaged file apart at open, and ships with Python. This is also how
embedded vector databases such as Chroma are built: sqlite for documents and metadata, plus a vector index.

Search is exact (brute force over the rows that pass the metadata filter): at a few thousand documents that takes
well under a millisecond of numpy. An HNSW index (see engine/ann) is what takes over at millions.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
from pydantic import PrivateAttr

from engine.core.errors import UserError
from engine.core.textinput import InputError

SCHEMA_VERSION = "1"
_KEY = re.compile(r"^[\w\- .]{1,64}$")  # metadata keys (Unicode letters allowed): safe inside a JSON path

SCHEMA = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    node_id    TEXT PRIMARY KEY,
    ref_doc_id TEXT,
    text       TEXT NOT NULL,
    metadata   TEXT NOT NULL,  -- the node's own metadata as JSON: what filters read with json_extract
    node       TEXT NOT NULL,  -- the whole LlamaIndex node (relationships etc.), to rebuild it on the way out
    embedding  BLOB NOT NULL,  -- float32 bytes, (dim,)
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS nodes_ref_doc ON nodes(ref_doc_id);
"""


class StoreCorruptedError(UserError):
    """The file exists but is not a readable store; it is left untouched."""

    default_code = "store.error"


class SQLiteVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store on one sqlite file (stores text, so no separate docstore is needed)."""

    stores_text: bool = True
    flat_metadata: bool = True
    path: str
    embed_model_name: str = ""

    _conn: sqlite3.Connection = PrivateAttr()
    _lock: threading.RLock = PrivateAttr()

    def __init__(self, path: str | Path, embed_model_name: str = "", **kwargs: Any):
        super().__init__(path=str(path), embed_model_name=embed_model_name, **kwargs)
        self._lock = threading.RLock()
        self._conn = _open(Path(path), embed_model_name)

    @classmethod
    def class_name(cls) -> str:
        return "SQLiteVectorStore"

    @property
    def client(self) -> sqlite3.Connection:
        return self._conn

    # --- writes: one transaction each -------------------------------------------------------------------------
    def add(self, nodes: list[BaseNode], replace_ref_docs: bool = False, **kwargs: Any) -> list[str]:
        """Insert nodes (with embeddings). replace_ref_docs: first drop every stored node of the same documents,
        in the same transaction, so an update is all-or-nothing."""
        rows, dim = [], self.dim
        for node in nodes:
            emb = node.get_embedding()
            vector = np.asarray(emb, dtype=np.float32)
            if vector.ndim != 1 or not np.isfinite(vector).all():
                raise ValueError(f"node {node.node_id}: embedding must be a finite 1-D vector")
            if dim is not None and len(vector) != dim:
                raise ValueError(f"node {node.node_id}: embedding has {len(vector)} dimensions, the store has {dim}")
            dim = len(vector)
            node_json = json.dumps(
                node_to_metadata_dict(node, remove_text=True, flat_metadata=False), ensure_ascii=False
            )
            rows.append(
                (
                    node.node_id,
                    node.ref_doc_id,
                    node.get_content(),
                    json.dumps(node.metadata, ensure_ascii=False),
                    node_json,
                    vector.tobytes(),
                    time.time(),
                )
            )
        with self._lock, self._conn:  # `with conn`: commit on success, roll back on any exception
            if replace_ref_docs:
                refs = sorted({n.ref_doc_id for n in nodes if n.ref_doc_id})
                self._conn.executemany("DELETE FROM nodes WHERE ref_doc_id = ?", [(r,) for r in refs])
            if dim is not None and self.dim is None:
                self._conn.execute("INSERT OR REPLACE INTO info VALUES ('dim', ?)", (str(dim),))
            self._conn.executemany("INSERT OR REPLACE INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        return [r[0] for r in rows]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM nodes WHERE ref_doc_id = ?", (ref_doc_id,))

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        where, params = _where(node_ids, None, filters)
        with self._lock, self._conn:
            self._conn.execute(f"DELETE FROM nodes WHERE {where}", params)

    def clear(self) -> None:
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM nodes")

    # --- reads ------------------------------------------------------------------------------------------------
    @property
    def dim(self) -> int | None:
        row = self._conn.execute("SELECT value FROM info WHERE key = 'dim'").fetchone()
        return int(row[0]) if row else None

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM nodes").fetchone()[0])

    def ref_doc_ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT DISTINCT ref_doc_id FROM nodes ORDER BY rowid")]

    def existing_ref_docs(self, ref_doc_ids: list[str]) -> set[str]:
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(ref_doc_ids), 500):  # sqlite caps the number of ? per statement
                chunk = ref_doc_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT DISTINCT ref_doc_id FROM nodes WHERE ref_doc_id IN ({marks})"
                found.update(r[0] for r in self._conn.execute(sql, chunk))
        return found

    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None) -> list[BaseNode]:
        where, params = _where(node_ids, None, filters)
        with self._lock:
            rows = self._conn.execute(f"SELECT text, node FROM nodes WHERE {where} ORDER BY rowid", params).fetchall()
        return [metadata_dict_to_node(json.loads(node), text=text) for text, node in rows]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Filter rows in SQL (pre-filtering: every result satisfies the filter, and k results come back whenever
        k rows match), then rank the survivors by cosine similarity to the query embedding."""
        if query.mode != VectorStoreQueryMode.DEFAULT:
            raise ValueError(f"query mode {query.mode.value!r} is not supported by this store (only 'default')")
        if query.query_embedding is None:
            raise ValueError("a query embedding is required")
        q = np.asarray(query.query_embedding, dtype=np.float32)  # (dim,)
        where, params = _where(query.node_ids, query.doc_ids, query.filters)
        with self._lock:
            rows = self._conn.execute(f"SELECT node_id, embedding FROM nodes WHERE {where}", params).fetchall()
            if not rows:
                return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
            ids = [r[0] for r in rows]
            matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)  # (n, dim)
            if matrix.shape[1] != len(q):
                raise ValueError(f"query has {len(q)} dimensions, the store has {matrix.shape[1]}")
            norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(q)), 1e-12)
            scores = matrix @ q / np.maximum(norms, 1e-12)  # (n,) cosine similarity
            top = np.argsort(-scores, kind="stable")[: max(1, query.similarity_top_k)]
            chosen = [ids[i] for i in top]
            marks = ",".join("?" * len(chosen))
            by_id = {
                r[0]: r
                for r in self._conn.execute(f"SELECT node_id, text, node FROM nodes WHERE node_id IN ({marks})", chosen)
            }
        nodes = [metadata_dict_to_node(json.loads(by_id[i][2]), text=by_id[i][1]) for i in chosen]
        return VectorStoreQueryResult(nodes=nodes, similarities=[float(scores[i]) for i in top], ids=chosen)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# --- opening, with corruption detection ----------------------------------------------------------------------
def _open(path: Path, embed_model_name: str) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists() and path.stat().st_size > 0
    try:
        # check_same_thread=False: Streamlit sessions are threads sharing one store; the store's lock serializes
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        if existed:
            status = conn.execute("PRAGMA quick_check").fetchone()[0]
            if status != "ok":
                raise sqlite3.DatabaseError(status)
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"info", "nodes"} <= tables:
                raise sqlite3.DatabaseError(f"tables {sorted(tables)} are not a vector store's")
        conn.execute("PRAGMA journal_mode = WAL")  # readers never block the writer; a crash cannot tear a page
        conn.executescript(SCHEMA)  # IF NOT EXISTS: creates a new store, leaves an existing one as it is
        with conn:
            info = dict(conn.execute("SELECT key, value FROM info").fetchall())
            if not info:
                conn.executemany(
                    "INSERT INTO info VALUES (?, ?)", [("schema", SCHEMA_VERSION), ("embed_model", embed_model_name)]
                )
                info = {"schema": SCHEMA_VERSION, "embed_model": embed_model_name}
    except sqlite3.DatabaseError as exc:
        raise StoreCorruptedError("store.unreadable", path=path, reason=exc) from exc
    if info.get("schema") != SCHEMA_VERSION:
        raise StoreCorruptedError("store.wrong_schema", path=path, schema=info.get("schema"), expected=SCHEMA_VERSION)
    if embed_model_name and info.get("embed_model") not in ("", embed_model_name):
        raise StoreCorruptedError(
            "store.other_embedding_model", path=path, built_with=info.get("embed_model"), model=embed_model_name
        )
    return conn


# --- LlamaIndex MetadataFilters -> SQL ------------------------------------------------------------------------
def _where(node_ids: list[str] | None, doc_ids: list[str] | None, filters: MetadataFilters | None):
    parts, params = [], []
    if node_ids:
        parts.append(f"node_id IN ({','.join('?' * len(node_ids))})")
        params.extend(node_ids)
    if doc_ids:
        parts.append(f"ref_doc_id IN ({','.join('?' * len(doc_ids))})")
        params.extend(doc_ids)
    if filters is not None and filters.filters:
        sql, p = filters_to_sql(filters)
        parts.append(f"({sql})")
        params.extend(p)
    return (" AND ".join(parts) or "1"), params


def filters_to_sql(filters: MetadataFilters) -> tuple[str, list]:
    """MetadataFilters (nested, AND/OR/NOT) -> a WHERE clause over json_extract(metadata, '$."key"').

    Values are always bound parameters, never pasted into the SQL. A missing key matches `!=` and `nin` only,
    as in LlamaIndex's own in-memory store.
    """
    clauses, params = [], []
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            sql, p = filters_to_sql(f)
        else:
            sql, p = _one_filter(f)
        clauses.append(f"COALESCE(({sql}), 0)")  # SQL's NULL (a missing key) counts as "no match", also under NOT
        params.extend(p)
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return " AND ".join(clauses), params
    if condition == FilterCondition.OR:
        return " OR ".join(clauses), params
    return f"NOT ({' OR '.join(clauses)})", params  # NOT: none of the filters match


def _one_filter(f: MetadataFilter) -> tuple[str, list]:
    if not _KEY.match(f.key):
        raise InputError("store.filter_key_not_allowed", key=f.key)
    v = "json_extract(metadata, ?)"
    path = f'$."{f.key}"'
    op, value = f.operator, f.value
    simple = {
        FilterOperator.EQ: "=",
        FilterOperator.GT: ">",
        FilterOperator.GTE: ">=",
        FilterOperator.LT: "<",
        FilterOperator.LTE: "<=",
    }
    if op in simple:
        return f"{v} {simple[op]} ?", [path, value]
    if op == FilterOperator.NE:
        return f"{v} IS NULL OR {v} != ?", [path, path, value]
    if op in (FilterOperator.IN, FilterOperator.NIN):
        values = list(value) if isinstance(value, list) else [value]
        if not values:
            return ("0" if op == FilterOperator.IN else "1"), []
        marks = ",".join("?" * len(values))
        if op == FilterOperator.IN:
            return f"{v} IN ({marks})", [path, *values]
        return f"{v} IS NULL OR {v} NOT IN ({marks})", [path, path, *values]
    if op == FilterOperator.TEXT_MATCH:
        return f"instr({v}, ?) > 0", [path, str(value)]
    if op == FilterOperator.TEXT_MATCH_INSENSITIVE:
        return f"instr(lower({v}), lower(?)) > 0", [path, str(value)]
    if op == FilterOperator.IS_EMPTY:
        return f"{v} IS NULL OR {v} = ''", [path, path]
    raise ValueError(
        f"filter operator {op.value!r} needs list-valued metadata, which this store does not keep; "
        "use ==, !=, >, >=, <, <=, in, nin or text_match"
    )
