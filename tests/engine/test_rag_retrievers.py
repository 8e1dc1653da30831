"""engine.rag.retrievers: the best Korean pipeline and Chroma as LlamaIndex retrievers, on the real Constitution
index (built and cached by build_index) and a real Chroma database."""

from __future__ import annotations

import pytest
from llama_index.core.postprocessor import SimilarityPostprocessor

from engine.core.textinput import InputError
from engine.rag.documents import constitution_passages, parse_upload
from engine.rag.retrievers import RETRIEVERS, KoreanBestRetriever, make_retriever, to_score

# unambiguous test questions both retrievers answer at rank 1 (engine.retrieval.TEST_QUESTIONS)
QUESTIONS = [("국회 회의를 비공개로 할 수 있나요?", "제50조"), ("헌법재판관이 정당에 가입할 수 있나요?", "제112조")]
OFF_TOPIC = "김치찌개 레시피 알려줘"
CUTOFF = 0.4  # on-topic answers score ≈ .55 (median), off-topic questions peak at ≈ .3 (retrievers.py)


@pytest.fixture(scope="module")
def passages():
    return constitution_passages()


@pytest.fixture(scope="module")
def chroma_cache(tmp_path_factory):
    """Chroma under a temporary cache; the encoder and the search index stay in the shared model cache."""
    import engine.rag.vector_db as vector_db

    path = tmp_path_factory.mktemp("rag") / "chroma"
    mp = pytest.MonkeyPatch()
    mp.setattr(vector_db, "rag_chroma_dir", lambda: path)
    yield path
    mp.undo()


@pytest.fixture(scope="module", params=RETRIEVERS)
def retriever(request, passages, chroma_cache):
    return make_retriever(request.param, "constitution", passages, top_k=3)


def test_to_score():
    assert to_score([0.7, 0.8, -0.2, 0.1]) == [0.7, 0.7, 0.0, 0.0]
    assert to_score([1.3]) == [1.0] and to_score([]) == []


@pytest.mark.parametrize(("question", "article"), QUESTIONS)
def test_expected_article_first(retriever, question, article):
    nodes = retriever.retrieve(question)
    assert len(nodes) == 3 and nodes[0].node.metadata["doc_id"] == article
    scores = [n.score for n in nodes]
    assert all(0.0 <= s <= 1.0 for s in scores) and scores == sorted(scores, reverse=True)
    meta = nodes[0].node.metadata
    assert meta["source"] == "constitution" and meta["title"].startswith(article) and nodes[0].node.node_id == article
    assert nodes[0].node.get_content() == next(p.text for p in constitution_passages() if p.doc_id == article)


def test_a_cutoff_means_the_same_across_queries(retriever):
    cutoff = SimilarityPostprocessor(similarity_cutoff=CUTOFF)
    kept = cutoff.postprocess_nodes(retriever.retrieve(QUESTIONS[0][0]))
    assert kept and kept[0].node.metadata["doc_id"] == QUESTIONS[0][1]
    assert cutoff.postprocess_nodes(retriever.retrieve(OFF_TOPIC)) == []


def test_best_is_the_reranking_pipeline(retriever):
    if isinstance(retriever, KoreanBestRetriever):
        assert retriever.method == "rerank"


def test_bad_arguments(passages):
    with pytest.raises(InputError):
        make_retriever("faiss", "constitution", passages, top_k=3)
    with pytest.raises(InputError):
        make_retriever("best", "constitution", passages, top_k=0)
    with pytest.raises(InputError) as e:
        make_retriever("best", "constitution", [], top_k=3)
    assert e.value.code == "rag.doc.no_passages"


def test_upload_retriever_trains_its_own_encoder():
    """An uploaded document set: its own Korean encoder (trained here in ≈3 s for 4 passages), BM25, fused; no
    reranker (retrievers.py: 108 passages index in ≈10 s without it, ≈210 s with it)."""
    text = "\n\n".join(
        [
            "회사의 연차 휴가는 입사 첫해에 11일이 주어지고, 이후 매년 1일씩 늘어난다.",
            "출장비는 출장 후 7일 안에 영수증과 함께 청구해야 한다.",
            "재택근무는 팀장의 승인을 받아 주 2회까지 할 수 있다.",
            "보안 교육은 모든 직원이 매년 상반기에 이수해야 한다.",
        ]
    )
    upload = parse_upload("사내규정.txt", text.encode())
    assert len(upload) == 1  # short paragraphs are packed into one passage
    long_upload = parse_upload("사내규정.txt", "\n\n".join(p * 6 for p in text.split("\n\n")).encode())
    best = make_retriever("best", "사내규정", long_upload, top_k=2)
    assert best.method == "hybrid"
    top = best.retrieve("출장비 청구 기한")[0]
    assert "출장비" in top.node.get_content() and top.node.metadata["source"] == "사내규정.txt"
