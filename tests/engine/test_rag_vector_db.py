"""engine.rag.vector_db: the Korean embedding, the persistent Chroma index (reopened, rebuilt on change) and the
store comparison, on real components: the cached Korean encoder, a real Chroma database under tmp_path, hnswlib."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.rag.documents import Passage, constitution_passages
from engine.rag.vector_db import (
    STORES,
    KoreanEmbedding,
    chroma_index,
    compare_stores,
    exact_top_k,
    korean_embedding,
)


@pytest.fixture(scope="module")
def passages():
    return constitution_passages()


@pytest.fixture(scope="module")
def embed(passages):
    return korean_embedding("constitution", passages)  # the encoder build_index trained (cached)


def test_korean_embedding(embed):
    assert isinstance(embed, KoreanEmbedding) and embed.model_name.startswith("korean-morph-")
    v = np.array(embed.get_text_embedding_batch(["대통령의 임기는 5년으로 한다.", "국회는 법률을 만든다."]))
    assert v.shape == (2, embed.dimension) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    q = np.array(embed.get_query_embedding("대통령 임기"))
    assert q @ v[0] > q @ v[1]
    assert not np.any(embed.get_query_embedding("😀😀😀"))  # no Korean content: the zero vector, not a guess


def _ids(index, question, k=3):
    return [n.node.metadata["doc_id"] for n in index.as_retriever(similarity_top_k=k).retrieve(question)]


def test_chroma_index_persists_and_rebuilds_only_on_change(tmp_path, passages, embed):
    from engine.vectorstore.chroma_store import chroma_client, reset_clients

    path = tmp_path / "chroma"
    subset = passages[60:80]  # 제61조 … 제80조
    first = chroma_index("헌법 일부", subset, embed, path=path)
    assert first.rag_info.rebuilt and first.rag_info.passages == 20
    found = _ids(first, "대통령의 임기는 몇 년인가")
    assert "제70조" in found

    reset_clients(path)  # a new PersistentClient, as after a restart
    again = chroma_index("헌법 일부", subset, embed, path=path)
    assert not again.rag_info.rebuilt and again.rag_info.collection == first.rag_info.collection
    assert _ids(again, "대통령의 임기는 몇 년인가") == found
    node = again.as_retriever(similarity_top_k=1).retrieve("대통령의 임기는 몇 년인가")[0]
    assert node.node.metadata == {
        "doc_id": node.node.node_id,
        "title": node.node.metadata["title"],
        "source": "constitution",
    }
    assert -1.0 <= node.score <= 1.0  # the cosine, not LlamaIndex's exp(-distance)

    changed = [*subset[:-1], dataclasses.replace(subset[-1], text="대통령은 훈장을 수여하지 아니한다.")]
    rebuilt = chroma_index("헌법 일부", changed, embed, path=path)
    assert rebuilt.rag_info.rebuilt and rebuilt.rag_info.collection != first.rag_info.collection
    names = [c.name for c in chroma_client(path).list_collections()]
    assert names == [rebuilt.rag_info.collection]  # the old version of this corpus was dropped
    other = chroma_index("other", [Passage("a#1", "a ¶1", "국회의원의 임기는 4년이다.", "a.txt")], embed, path=path)
    assert other.rag_info.rebuilt and len(chroma_client(path).list_collections()) == 2


def test_chroma_index_refuses_nothing(tmp_path, embed):
    from engine.core.textinput import InputError

    with pytest.raises(InputError) as e:
        chroma_index("empty", [], embed, path=tmp_path)
    assert e.value.code == "rag.doc.no_passages"


def test_exact_top_k():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((50, 8)).astype(np.float32)
    q = rng.standard_normal((3, 8)).astype(np.float32)
    assert (exact_top_k(data, q, 5) == np.argsort(-(q @ data.T), axis=1)[:, :5]).all()


def test_recall_against_brute_force_on_fixed_vectors():
    c = compare_stores(datasets=("clustered",), n=2_000, dim=32, n_queries=20, stores=("exact", "chroma", "sqlite"))
    assert c.row("exact", "clustered").recall_at_k == 1.0
    assert c.row("sqlite", "clustered").recall_at_k == 1.0  # brute force: exact by construction
    assert c.row("chroma", "clustered").recall_at_k >= 0.9  # HNSW at n=2,000 with ef=100
    assert all(r.n == 2_000 and r.dim == 32 and r.query_ms > 0 for r in c.rows if r.store != "exact")


def test_compare_stores_tiny_config_returns_every_store():
    c = compare_stores(datasets=("constitution", "synthetic"), n=300, dim=16, n_queries=5)
    assert {(r.store, r.dataset) for r in c.rows} == {(s, d) for s in STORES for d in ("constitution", "synthetic")}
    const = c.row("chroma", "constitution")
    assert const.n == 136 and const.recall_at_k == 1.0 and c.queries == {"constitution": 5, "synthetic": 5}
    for r in c.rows:
        assert 0.0 <= r.recall_at_k <= 1.0 and r.insert_s >= 0 and r.k == 10
