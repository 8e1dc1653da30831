"""engine.vectorstore: the persistent LlamaIndex store — CRUD, metadata filters, persistence, bad input, safety.

The real packaged MiniLM embeds the documents (no mocks); filter semantics are also tested on hand-made vectors.
The behaviour tests run on both embedded backends — Chroma (the default) and chapter 12's sqlite store — so their
semantics stay equal; tests of the sqlite file's internals open it with backend="sqlite".
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

from engine.core.textinput import InputError
from engine.vectorstore import (
    DuplicateId,
    MissingId,
    StoreCorrupted,
    StoreError,
    open_store,
    reset_collection,
    store_path,
)
from engine.vectorstore.embedding import SentenceTransformerEmbedding
from engine.vectorstore.sqlite_store import SQLiteVectorStore

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    {
        "doc_id": "cat",
        "text": "Cats are small furry pets that purr and chase mice.",
        "metadata": {"topic": "animals", "year": 2020, "lang": "en"},
    },
    {
        "doc_id": "dog",
        "text": "Dogs are loyal pets that bark and love long walks.",
        "metadata": {"topic": "animals", "year": 2021, "lang": "en"},
    },
    {
        "doc_id": "python",
        "text": "Python is a programming language popular for data science.",
        "metadata": {"topic": "code", "year": 2022, "lang": "en"},
    },
    {
        "doc_id": "sql",
        "text": "SQL queries read rows from relational database tables.",
        "metadata": {"topic": "code", "year": 2023, "lang": "en"},
    },
    {
        "doc_id": "pasta",
        "text": "Boil the pasta in salted water and add tomato sauce.",
        "metadata": {"topic": "food", "year": 2024},
    },
    {"doc_id": "제1조", "text": "대한민국은 민주공화국이다.", "metadata": {"topic": "law", "year": 1987, "lang": "ko"}},
]


@pytest.fixture(scope="module")
def embed_model():
    return SentenceTransformerEmbedding()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    monkeypatch.delenv("PINECONE_API_KEY", raising=False)
    return tmp_path


@pytest.fixture(params=["sqlite", "chroma"])
def backend(request):
    return request.param


@pytest.fixture
def store(cache, embed_model, backend):
    s = open_store("test", backend=backend, embed_model=embed_model)
    s.add(DOCS)
    return s


@pytest.fixture
def sqlite_store(cache, embed_model):
    s = open_store("test", backend="sqlite", embed_model=embed_model)
    s.add(DOCS)
    return s


def reopen(backend: str, embed_model, collection: str = "test"):
    """The store as after a restart: a new connection (sqlite) or a new client (Chroma)."""
    if backend == "chroma":
        from engine.vectorstore.chroma_store import reset_clients

        reset_clients()
    return open_store(collection, backend=backend, embed_model=embed_model)


def ids(hits):
    return [h.doc_id for h in hits]


# --- CRUD and query -------------------------------------------------------------------------------------------
def test_insert_query_update_delete(store):
    assert store.count() == len(DOCS)
    assert store.ids() == [d["doc_id"] for d in DOCS]
    hits = store.query("Which animal purrs?", k=3)
    assert hits[0].doc_id == "cat" and hits[0].score > hits[1].score
    assert hits[0].metadata == DOCS[0]["metadata"] and hits[0].text == DOCS[0]["text"]

    store.update("cat", text="Rust is a systems programming language with a borrow checker.")
    assert store.get("cat").text.startswith("Rust")
    assert store.get("cat").metadata == DOCS[0]["metadata"]  # metadata kept when only the text changes
    assert store.count() == len(DOCS)  # replaced, not duplicated
    assert store.query("borrow checker in a systems language", k=1)[0].doc_id == "cat"

    store.update("cat", metadata={"topic": "code"})
    assert store.get("cat").metadata == {"topic": "code"}

    store.delete("dog")
    assert store.get("dog") is None and store.count() == len(DOCS) - 1
    assert "dog" not in ids(store.query("loyal pet that barks", k=10))


def test_one_hit_type_for_the_store_and_retrieval(store):
    """The store answers with retrieval's Hit; its JSON row (the `vector-db query` contract) keeps its four keys."""
    from engine.retrieval import Hit
    from engine.vectorstore import Hit as StoreHit

    assert StoreHit is Hit
    hit = store.query("Which animal purrs?", k=1)[0]
    assert type(hit) is Hit and hit.rank == 0 and hit.title == ""
    row = hit.as_dict()
    assert list(row) == ["doc_id", "score", "text", "metadata"]
    assert row["doc_id"] == "cat" and row["score"] == round(hit.score, 6) and row["metadata"] == DOCS[0]["metadata"]


def test_metadata_filters(store):
    assert set(ids(store.query("pets", k=10, where={"topic": "animals"}))) == {"cat", "dog"}
    in_range = store.query("anything", k=10, where=[["year", ">=", 2021], ["year", "<", 2024]])
    assert set(ids(in_range)) == {"dog", "python", "sql"}
    assert set(ids(store.query("x", k=10, where=[["topic", "in", ["food", "law"]]]))) == {"pasta", "제1조"}
    assert "pasta" in ids(store.query("x", k=10, where=[["lang", "!=", "en"]]))  # a missing key matches !=
    assert ids(store.query("x", k=10, where=[["lang", "==", "ko"]])) == ["제1조"]
    # pre-filtering: k results whenever k documents pass, even if better matches are filtered out
    code = store.query("Which animal purrs?", k=2, where={"topic": "code"})
    assert len(code) == 2 and set(ids(code)) == {"python", "sql"}
    assert store.query("x", k=5, where={"topic": "nothing"}) == []


def test_persists_across_reopen(store, cache, embed_model, backend):
    before = [(h.doc_id, round(h.score, 5)) for h in store.query("database tables", k=3)]
    if backend == "sqlite":
        path = store_path("test")
        assert path.is_file() and path.parent == cache / "vector_store"
    else:
        assert (cache / "vector_store" / "chroma" / "chroma.sqlite3").is_file()
    reopened = reopen(backend, embed_model)
    assert reopened.count() == len(DOCS) and reopened.ids() == [d["doc_id"] for d in DOCS]
    assert [(h.doc_id, round(h.score, 5)) for h in reopened.query("database tables", k=3)] == before


def test_default_backend_is_chroma(cache, embed_model):
    from engine.vectorstore.store import resolve_backend

    assert open_store("d", embed_model=embed_model).backend == "chroma"
    assert open_store("d", backend="local", embed_model=embed_model).backend == "sqlite"  # the old name still works
    assert open_store("d", embed_model=embed_model, embedded="sqlite").backend == "sqlite"  # chapter 12's page
    with pytest.raises(StoreError, match="chroma, sqlite, pinecone"):
        resolve_backend("faiss")


def test_chroma_refuses_text_match(store, backend):
    if backend == "sqlite":
        assert ids(store.query("x", k=10, where=[["lang", "text_match", "k"]])) == ["제1조"]
    else:
        with pytest.raises(StoreError, match="not supported by chroma"):
            store.query("x", k=10, where=[["lang", "text_match", "k"]])


def test_chroma_reset_keeps_a_backup(store, backend, embed_model):
    if backend == "sqlite":
        pytest.skip("the sqlite reset is tested with a damaged file below")
    backup = reset_collection("test", backend="chroma")
    assert backup and backup.startswith("llmlab-test-bak-")
    assert open_store("test", backend="chroma", embed_model=embed_model).count() == 0
    from engine.vectorstore.chroma_store import chroma_client, chroma_dir

    assert chroma_client(chroma_dir()).get_collection(backup).count() == len(DOCS)  # kept aside, never deleted
    assert reset_collection("never-made", backend="chroma") is None


def test_persists_across_processes(store, cache, backend):
    """A separate Python process (a restart) reads what this one wrote."""
    if backend == "sqlite":
        code = (
            "from engine.vectorstore.sqlite_store import SQLiteVectorStore; import sys; "
            "print(SQLiteVectorStore(sys.argv[1]).count())"
        )
        where = str(store_path("test"))
    else:
        code = (
            "from engine.vectorstore.chroma_store import chroma_client; import sys; "
            "print(chroma_client(sys.argv[1]).get_collection('llmlab-test').count())"
        )
        where = str(cache / "vector_store" / "chroma")
    r = subprocess.run([sys.executable, "-c", code, where], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip()) == len(DOCS)


# --- bad input: clear messages, nothing lost ------------------------------------------------------------------
def test_bad_input_changes_nothing(store):
    n = store.count()
    with pytest.raises(InputError, match="empty"):
        store.add([{"doc_id": "blank", "text": "   \n"}])
    with pytest.raises(DuplicateId, match="already in the store: cat"):
        store.add([{"doc_id": "new-one", "text": "fine"}, {"doc_id": "cat", "text": "again"}])
    with pytest.raises(DuplicateId, match="twice in this batch: x"):
        store.add([{"doc_id": "x", "text": "a"}, {"doc_id": "x", "text": "b"}])
    with pytest.raises(MissingId, match="nothing was deleted"):
        store.delete("no-such-id")
    with pytest.raises(MissingId, match="to update"):
        store.update("no-such-id", text="hello")
    with pytest.raises(InputError, match="id is required"):
        store.add([{"doc_id": "", "text": "no id"}])
    with pytest.raises(InputError, match="limit is 10,000"):
        store.add([{"doc_id": "long", "text": "가" * 10_001}])
    with pytest.raises(StoreError, match="must be a string, number"):
        store.add([{"doc_id": "nested", "text": "t", "metadata": {"a": {"b": 1}}}])
    with pytest.raises(StoreError, match="reserved"):
        store.add([{"doc_id": "r", "text": "t", "metadata": {"doc_id": "x"}}])
    with pytest.raises(StoreError, match="nothing to add"):
        store.add([])
    with pytest.raises(InputError, match="empty"):
        store.query("   ")
    with pytest.raises(StoreError, match="unknown filter operator"):
        store.query("x", where=[["year", "~", 1]])
    with pytest.raises(StoreError, match="needs a list"):
        store.query("x", where=[["topic", "in", "code"]])
    with pytest.raises(StoreError, match="k must be"):
        store.query("x", k=0)
    assert store.count() == n
    assert store.get("new-one") is None  # the valid half of a refused batch was not written either
    assert len(store.query("x" * 20_000, k=2)) == 2  # a 20,000-character query is cut, not refused


def test_bad_collection_name(cache, embed_model, backend):
    for name in ("", "../escape", "a" * 49, "공백 있음"):
        with pytest.raises(InputError, match="collection name"):
            open_store(name, backend=backend, embed_model=embed_model)


def test_korean_collection_name(cache, embed_model, backend):
    """The Korean page's default collection is 헌법: a Hangul name is a collection of its own, next to the others."""
    s = open_store("헌법", backend=backend, embed_model=embed_model)
    s.add(DOCS[:1])
    if backend == "sqlite":
        assert store_path("헌법") == cache / "vector_store" / "헌법.sqlite" and store_path("헌법").is_file()
    assert open_store("헌법", backend=backend, embed_model=embed_model).count() == 1
    assert open_store("법률", backend=backend, embed_model=embed_model).count() == 0
    assert open_store("constitution", backend=backend, embed_model=embed_model).count() == 0


def test_chroma_collection_names():
    """Every store collection name maps to a valid Chroma name, and two names never share one."""
    from engine.vectorstore.chroma_store import chroma_name

    names = ["a", "ab", "test", "My_Notes", "x-", "x_", "헌법", "법률", "notes-헌법", "가" * 48, "a" * 48]
    mapped = [chroma_name(n) for n in names]
    assert len(set(mapped)) == len(names)
    for m in mapped:
        assert 3 <= len(m) <= 512 and m[0].isalnum() and m[-1].isalnum() and m.isascii()


def test_pinecone_index_names():
    """ASCII names map as before; Hangul names get a hash so two of them never share an index."""
    from engine.vectorstore.pinecone_backend import pinecone_index_name

    assert pinecone_index_name("constitution") == "llmlab-constitution"
    assert pinecone_index_name("My_Notes") == "llmlab-my-notes"
    ko, law = pinecone_index_name("헌법"), pinecone_index_name("법률")
    assert ko != law and len(ko) == len("llmlab-") + 8 and ko.startswith("llmlab-")
    assert pinecone_index_name("notes-헌법").startswith("llmlab-notes-")
    for name in (ko, pinecone_index_name("가" * 48), pinecone_index_name("a" * 40 + "가")):
        assert len(name) <= 45 and all(c in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in name) and "--" not in name


def test_failed_update_keeps_the_old_document(store, monkeypatch):
    def broken(texts):
        raise RuntimeError("embedding model crashed")

    monkeypatch.setattr(store.embed_model, "_encode", broken)
    with pytest.raises(RuntimeError, match="crashed"):
        store.update("cat", text="something else")
    monkeypatch.undo()
    assert store.get("cat").text == DOCS[0]["text"] and store.count() == len(DOCS)


class _FailingInsert:
    """A connection whose row insert fails (a disk error in the middle of a transaction)."""

    def __init__(self, conn):
        self._conn = conn

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def __enter__(self):
        return self._conn.__enter__()

    def __exit__(self, *exc):
        return self._conn.__exit__(*exc)

    def executemany(self, sql, rows):
        if sql.startswith("INSERT OR REPLACE INTO nodes"):
            raise sqlite3.OperationalError("disk I/O error (simulated)")
        return self._conn.executemany(sql, rows)


def test_update_is_one_transaction(sqlite_store):
    store = sqlite_store
    real = store.vector_store._conn
    store.vector_store._conn = _FailingInsert(real)
    try:
        with pytest.raises(sqlite3.OperationalError, match="simulated"):
            store.update("cat", text="the old row was deleted in this transaction, then the insert failed")
    finally:
        store.vector_store._conn = real
    assert store.get("cat").text == DOCS[0]["text"]  # the delete was rolled back with the failed insert


def test_corrupted_file_is_reported_and_left_alone(cache, embed_model):
    path = store_path("broken")
    path.parent.mkdir(parents=True)
    garbage = b"this is not a database\x00" * 100
    path.write_bytes(garbage)
    with pytest.raises(StoreCorrupted, match=r"not a readable vector store.*left untouched"):
        open_store("broken", backend="sqlite", embed_model=embed_model)
    assert path.read_bytes() == garbage
    moved = reset_collection("broken")
    assert moved is not None and moved.read_bytes() == garbage  # kept aside, never deleted
    fresh = open_store("broken", backend="sqlite", embed_model=embed_model)
    assert fresh.count() == 0


def test_another_model_cannot_reuse_a_collection(store, cache, embed_model, backend):
    other = SentenceTransformerEmbedding(embed_model.model, model_name="some-other-model")
    with pytest.raises(StoreCorrupted, match="not comparable"):
        open_store("test", backend=backend, embed_model=other)


def test_no_network_and_no_openai(cache, embed_model, monkeypatch, backend):
    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    s = open_store("offline", backend=backend, embed_model=embed_model)
    s.add(DOCS[:2])
    assert s.query("purring pet", k=1)[0].doc_id == "cat"
    from llama_index.core import Settings

    assert type(Settings.llm).__name__ == "MockLLM"  # Settings.llm = None: no OpenAI fallback
    assert s.index._embed_model is embed_model


# --- the store itself, on hand-made vectors (LlamaIndex filter semantics) --------------------------------------
def _node(i: int, vec, **meta) -> TextNode:
    return TextNode(id_=f"n{i}", text=f"text {i}", metadata=meta, embedding=list(vec))


def test_sqlite_store_filters_and_ranking(tmp_path):
    vs = SQLiteVectorStore(tmp_path / "v.sqlite")
    vs.add(
        [
            _node(0, [1, 0], kind="a", n=1),
            _node(1, [0.9, 0.1], kind="b", n=2),
            _node(2, [0, 1], kind="a", n=3),
            _node(3, [-1, 0], n=4),
        ]
    )

    def q(filters=None, k=10):
        return vs.query(VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=k, filters=filters)).ids

    assert q(k=2) == ["n0", "n1"]
    assert q(MetadataFilters(filters=[MetadataFilter(key="kind", value="a")])) == ["n0", "n2"]
    either = MetadataFilters(
        filters=[MetadataFilter(key="n", value=1), MetadataFilter(key="n", value=4)], condition=FilterCondition.OR
    )
    assert q(either) == ["n0", "n3"]
    none_of = MetadataFilters(filters=[MetadataFilter(key="kind", value="a")], condition=FilterCondition.NOT)
    assert q(none_of) == ["n1", "n3"]
    nested = MetadataFilters(filters=[MetadataFilter(key="n", value=2, operator=FilterOperator.GTE), either])
    assert q(nested) == ["n3"]
    empty = MetadataFilters(filters=[MetadataFilter(key="kind", value=None, operator=FilterOperator.IS_EMPTY)])
    assert q(empty) == ["n3"]
    injection = MetadataFilters(filters=[MetadataFilter(key="kind", value="a' OR '1'='1")])
    assert q(injection) == []  # values are bound parameters, never SQL
    with pytest.raises(ValueError, match="not allowed"):
        q(MetadataFilters(filters=[MetadataFilter(key="kind') OR 1=1 --", value="a")]))
    with pytest.raises(ValueError, match="list-valued"):
        q(MetadataFilters(filters=[MetadataFilter(key="kind", value=["a"], operator=FilterOperator.ANY)]))
    assert [n.node_id for n in vs.get_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="n", value=3)]))] == [
        "n2"
    ]
    vs.delete_nodes(node_ids=["n0"])
    assert vs.count() == 3
    with pytest.raises(ValueError, match="dimensions"):
        vs.add([_node(9, [1, 0, 0])])
    with pytest.raises(ValueError, match="finite"):
        vs.add([_node(9, [np.nan, 0])])


# --- Pinecone: only with a key ----------------------------------------------------------------------------------
NO_KEY = "PINECONE_API_KEY is not set: the Pinecone path is tested only when a key exists"


@pytest.mark.skipif(not os.environ.get("PINECONE_API_KEY"), reason=NO_KEY)
def test_pinecone_crud(embed_model):
    import time

    s = open_store("llmlab-test", backend="pinecone", embed_model=embed_model)
    doc = {"doc_id": f"t-{int(time.time())}", "text": "Cats purr.", "metadata": {"topic": "animals"}}
    s.add([doc])
    time.sleep(10)  # serverless indexes are eventually consistent
    assert doc["doc_id"] in ids(s.query("purring animal", k=5, where={"topic": "animals"}))
    s.update(doc["doc_id"], text="Dogs bark.")
    s.delete(doc["doc_id"])


# --- CLI ------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_vector_store_roundtrip(cache):
    env = {**os.environ, "LLMLAB_CACHE": str(cache)}

    def cli(*args):
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "engine",
                "vector-store",
                *args,
                "--collection",
                "cli",
                "--backend",
                "local",
                "--json",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return r

    assert cli("add", "--doc-id", "n1", "--text", "Cats purr.", "--metadata", '{"topic": "animals"}').returncode == 0
    out = cli("query", "--text", "purring", "--where", '{"topic": "animals"}')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["results"][0]["doc_id"] == "n1"
    dup = cli("add", "--doc-id", "n1", "--text", "again")
    assert dup.returncode == 2 and dup.stderr.startswith("error:") and "already in the store" in dup.stderr
    gone = cli("delete", "--doc-id", "missing")
    assert gone.returncode == 2 and "nothing was deleted" in gone.stderr
