"""LlamaIndex retrievers for the RAG chapter: the project's best Korean search, and plain dense search in Chroma.

- `KoreanBestRetriever` plugs engine.retrieval's pipeline (BM25 over Kiwi morphemes + the Korean encoder, fused,
  then reranked by late interaction over Gemma-3-270M: `BEST_PIPELINE`) into LlamaIndex as a `BaseRetriever`.
- `make_retriever("chroma", ...)` is the book's shape: embed the question, nearest passages in the vector DB.

Measured on the Constitution's 40 test questions (`python -m engine.rag.retrievers`, 2 shared cores):
best hit@1 .80 / hit@3 .90 (0.91 s a question on a loaded machine, after a ≈10 s first load of the reranker),
chroma hit@1 .625 / hit@3 .80 (2 ms a question). The gap is what chapters 10–11 built: BM25, document expansion,
fusion, reranking. For an upload, "best" means BM25 + the upload's own Korean encoder, fused: 108 kobill passages
index in 9.9 s from nothing; with the LM reranker (article states + fusion weights) 213 s, so it is off by default.

Scores (what a `SimilarityPostprocessor(similarity_cutoff=c)` compares) are the same quantity for both kinds:
the cosine similarity of the question and the passage under the Korean encoder, clipped to [0, 1]. Why not the
pipeline's own fused score: it is min-max normalised over each query's candidates, so the first hit always scores
1.0 and the numbers are not comparable across queries — a cutoff would keep the top passage of an off-topic
question as confidently as that of a good one. The cosine is absolute: on the test questions the cited article has
a median cosine of .56 (5th percentile .25), while off-topic questions (점심 메뉴, 날씨, 파이썬) peak at .21–.32.
The *order* stays the pipeline's (it is the better ranking); to keep scores sorted along that order, each score is
the running minimum of the cosines so far. So `score ≥ c` keeps exactly the prefix of the ranking down to the first
passage whose similarity falls below c, and c means the same for every question and both retrievers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle

from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.rag.documents import CONSTITUTION, Passage

RETRIEVERS = ("best", "chroma")
MAX_TOP_K = 20
_CACHE: OrderedDict[tuple, Any] = OrderedDict()  # a few built indexes per process (pages and the CLI reuse them)
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()


def to_score(cosines) -> list[float]:
    """Cosines in rank order -> scores in [0, 1], non-increasing (running minimum of the clipped cosines)."""
    clipped = np.clip(np.asarray(cosines, dtype=np.float64), 0.0, 1.0)
    return np.minimum.accumulate(clipped).tolist() if len(clipped) else []


def passage_node(p: Passage, score: float) -> NodeWithScore:
    from engine.rag.vector_db import passage_nodes

    return NodeWithScore(node=passage_nodes([p])[0], score=float(score))


class KoreanBestRetriever(BaseRetriever):
    """engine.retrieval's pipeline on a SearchIndex as a LlamaIndex retriever (top_k passages, scores in [0, 1])."""

    def __init__(
        self,
        index: Any,
        passages: list[Passage] | None = None,
        method: str | None = None,
        top_k: int = 5,
        **kwargs: Any,
    ):
        from engine.retrieval.pipeline import BEST_PIPELINE, METHODS

        super().__init__(**kwargs)
        self.index = index
        # without its reranker (an upload indexed fast) the best an index offers is the fused hybrid
        self.method = method or (BEST_PIPELINE if index.reranker is not None else "hybrid")
        if self.method not in METHODS:
            raise InputError("input.unknown_choice", name="method", value=self.method, choices=", ".join(METHODS))
        self.top_k = _check_top_k(top_k)
        source = CONSTITUTION if index.corpus == CONSTITUTION else index.corpus
        self.passages = (
            {p.doc_id: p for p in passages}
            if passages
            else {d.doc_id: Passage(d.doc_id, d.title, d.text, source) for d in index.docs}
        )

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        result = self.index.search(query_bundle.query_str, method=self.method, k=self.top_k)
        self.last_notes = result.notes
        if not result.hits:
            return []
        cosine = self.index.dense_scores(result.query)  # one per document, corpus order
        where = {d: i for i, d in enumerate(self.index.doc_ids)}
        scores = to_score([cosine[where[h.doc_id]] for h in result.hits])
        return [passage_node(self._passage(h), s) for h, s in zip(result.hits, scores, strict=True)]

    def _passage(self, hit) -> Passage:
        return self.passages.get(hit.doc_id) or Passage(hit.doc_id, hit.title or hit.doc_id, hit.text, "")


class ChromaRetriever(BaseRetriever):
    """A VectorStoreIndex retriever over Chroma, its cosine scores clipped to [0, 1] (the same scale as above)."""

    def __init__(self, index: Any, top_k: int = 5, **kwargs: Any):
        super().__init__(**kwargs)
        self.index = index
        self.top_k = _check_top_k(top_k)
        self._inner = index.as_retriever(similarity_top_k=self.top_k)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        from engine.retrieval.query import check_query

        text, _ = check_query(query_bundle.query_str, "ko")  # the same input checks as the best retriever
        hits = self._inner.retrieve(text)
        scores = to_score([h.score or 0.0 for h in hits])
        return [NodeWithScore(node=h.node, score=s) for h, s in zip(hits, scores, strict=True)]


def _check_top_k(top_k: int) -> int:
    if not 1 <= int(top_k) <= MAX_TOP_K:
        raise InputError("input.out_of_range", name="top_k", low=1, high=MAX_TOP_K, value=top_k)
    return int(top_k)


def _cached(key: tuple, build):
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    value = build()
    with _CACHE_LOCK:
        _CACHE[key] = value
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return value


def search_index(corpus_id: str, passages, reranker: bool | None = None, progress: ProgressFn = null_progress):
    """The SearchIndex for these passages: the Constitution's (with its LM reranker), or one built for an upload
    (`documents_corpus`; reranker off by default — see make_retriever)."""
    from engine.core.corpus import CONSTITUTION as CONSTITUTION_SPEC
    from engine.core.corpus import documents_corpus
    from engine.rag.vector_db import corpus_docs
    from engine.retrieval.build import build_index
    from engine.retrieval.korean_dense import corpus_hash

    passages = list(passages)
    if not passages:
        raise InputError("rag.doc.no_passages")
    docs = corpus_docs(corpus_id, passages)
    is_constitution = all(p.source == CONSTITUTION for p in passages) and docs[0].meta.get("part") is not None
    rerank = is_constitution if reranker is None else reranker
    spec = CONSTITUTION_SPEC if is_constitution else documents_corpus(corpus_id, [(p.doc_id, p.text) for p in passages])
    key = ("index", corpus_hash(docs), rerank)
    return _cached(key, lambda: build_index(spec, progress, reranker=rerank))


def make_retriever(
    kind: str,
    corpus_id: str,
    passages,
    top_k: int = 5,
    progress: ProgressFn = null_progress,
    reranker: bool | None = None,
) -> BaseRetriever:
    """A LlamaIndex retriever of `kind` in RETRIEVERS over `passages`.

    "best": the Constitution gets the full pipeline with the LM reranker; an upload gets BM25 + its own Korean
    encoder, fused (`reranker=True` adds the reranker: its article states and adapter take minutes on 2 cores, so
    it is off for uploads by default). "chroma": the passages embedded by the same Korean encoder in Chroma."""
    passages = list(passages)
    if kind not in RETRIEVERS:
        raise InputError("input.unknown_choice", name="retriever", value=kind, choices=", ".join(RETRIEVERS))
    if kind == "best":
        index = search_index(corpus_id, passages, reranker, progress)
        return KoreanBestRetriever(index, passages, top_k=top_k)
    from engine.rag.vector_db import chroma_index, passages_hash

    key = ("chroma", corpus_id, passages_hash(passages, ""))
    index = _cached(key, lambda: chroma_index(corpus_id, passages, progress=progress))
    return ChromaRetriever(index, top_k=top_k)


def hit_rates(kind: str, questions=None, top_k: int = 3) -> dict[str, float]:
    """hit@1 and hit@top_k of a retriever on the Constitution's test questions (engine.retrieval.TEST_QUESTIONS)."""
    import time

    from engine.rag.documents import constitution_passages
    from engine.retrieval.evaluation import TEST_QUESTIONS, load_questions

    questions = questions or load_questions(TEST_QUESTIONS)
    retriever = make_retriever(kind, CONSTITUTION, constitution_passages(), top_k=top_k)
    retriever.retrieve(questions[0].question)  # warm-up: lazy model loads are not per-question cost
    hits1 = hitsk = 0
    start = time.perf_counter()
    for q in questions:
        ids = [n.node.metadata["doc_id"] for n in retriever.retrieve(q.question)]
        hits1 += bool(ids) and ids[0] == q.doc_id
        hitsk += q.doc_id in ids
    n = len(questions)
    return {
        "hit@1": round(hits1 / n, 4),
        f"hit@{top_k}": round(hitsk / n, 4),
        "seconds_per_question": round((time.perf_counter() - start) / n, 4),
        "questions": n,
    }


if __name__ == "__main__":  # python -m engine.rag.retrievers: the numbers quoted in the docstring
    for name in RETRIEVERS:
        print(name, hit_rates(name))
