"""The named search pipelines (the engine's names are the only ones), and what each computes for a query.

- `bm25`: BM25 over Kiwi content morphemes;  `dense`: the Korean morpheme encoder (korean_dense.py);
- `hybrid`: fusion of the two — convex α·bm25 + (1 − α)·dense (α chosen on the dev questions) or RRF;
- `rerank`: the convex hybrid's top `depth` candidates rescored by late interaction over Gemma-3-270M token states
  (through an adapter fine-tuned on the training questions), fused with the BM25 and dense scores
  (late_interaction.py; weights chosen on the dev questions). This is `BEST_PIPELINE`.

The command line accepts these names; `search --method hybrid` is, as documented since chapter 11, an alias of the
best pipeline (`cli_pipeline`), and `--no-rerank` gives the engine's `hybrid`. Pages use the engine names.

Every function here takes the index (index.py's `SearchIndex`, or anything with the `Retrievers` shape).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from engine.core.textinput import InputError
from engine.retrieval.evaluation import metrics, rank_of
from engine.retrieval.hybrid import convex, ranks_from_scores, rrf
from engine.retrieval.query import check_query
from engine.retrieval.types import Hit, SearchResult

if TYPE_CHECKING:
    from engine.core.corpus import Doc
    from engine.retrieval.evaluation import Question
    from engine.retrieval.late_interaction import LateInteractionReranker


@dataclass(frozen=True)
class Pipeline:
    name: str  # what `SearchIndex.search(query, method=...)` and the CLI accept
    stages: str  # what it runs, in words (the CLI's --help shows it)


PIPELINES: dict[str, Pipeline] = {
    p.name: p
    for p in (
        Pipeline("bm25", "BM25 over Kiwi content morphemes"),
        Pipeline("dense", "the Korean morpheme encoder (cosine)"),
        Pipeline("hybrid", "fusion of bm25 and dense: convex with the tuned α, or RRF"),
        Pipeline("rerank", "convex hybrid, then its top 30 reranked by late interaction over Gemma-3-270M"),
    )
}
METHODS = tuple(PIPELINES)  # ("bm25", "dense", "hybrid", "rerank")
BEST_PIPELINE = "rerank"  # the best on the held-out questions; what `python -m engine search` runs by default
FUSION_PIPELINE = "hybrid"  # plain fusion, no reranking
CLI_ALIASES = {"hybrid": BEST_PIPELINE}  # `search --method hybrid` (without --no-rerank) runs the best pipeline


class Retrievers(Protocol):
    """What the pipelines need from an index: its documents, per-retriever scores and the rerank stage."""

    docs: list[Doc]
    alpha: float
    reranker: LateInteractionReranker | None

    @property
    def language(self) -> str: ...

    def bm25_scores(self, query: str, tokenizer: str = "kiwi") -> np.ndarray: ...

    def dense_scores(self, query: str) -> np.ndarray: ...

    def hybrid_scores(
        self, query: str, fusion: str = "convex", rrf_k: float = 60.0, alpha: float | None = None
    ) -> np.ndarray: ...


def cli_pipeline(method: str, rerank: bool = True, fusion: str = "convex", reranker_built: bool = True) -> str:
    """The engine pipeline a command-line `--method` runs: an alias resolved (`hybrid` -> `rerank` when the index
    has its reranker, unless `--no-rerank` or RRF fusion is asked for), any other name as is."""
    target = CLI_ALIASES.get(method)
    if target is not None and rerank and fusion == "convex" and reranker_built:
        return target
    return method


def rerank_stages(index: Retrievers, query: str, depth: int | None = None) -> dict:
    """The `rerank` pipeline for one (checked) query: hybrid candidates, their LM scores and the fused order."""
    if index.reranker is None:
        raise InputError("retrieval.reranker_not_built")
    sparse, dense = index.bm25_scores(query), index.dense_scores(query)
    hybrid = convex(sparse, dense, index.alpha)
    depth = min(depth or index.reranker.depth, len(index.docs))
    cand = np.argsort(-hybrid, kind="stable")[:depth]
    lm = index.reranker.lm_scores(query, cand)
    kind = index.reranker.type_scores(query, cand)
    final = index.reranker.fuse(sparse[cand], dense[cand], lm, kind)
    order = np.argsort(-final, kind="stable")
    return {
        "candidates": cand,
        "bm25": sparse[cand],
        "dense": dense[cand],
        "hybrid": hybrid[cand],
        "lm": lm,
        "type": kind,
        "final": final,
        "order": order,
        "rest": np.argsort(-hybrid, kind="stable")[depth:],
    }


def search(
    index: Retrievers,
    query: str,
    method: str = FUSION_PIPELINE,
    k: int = 10,
    fusion: str = "convex",
    rrf_k: float = 60.0,
    rerank_depth: int = 30,
) -> SearchResult:
    """The top `k` documents for `query` by the pipeline named `method` (an engine name, see PIPELINES)."""
    if method not in PIPELINES:
        raise InputError("input.unknown_choice", name="method", value=method, choices=", ".join(METHODS))
    if not 1 <= k <= 1000:
        raise InputError("input.out_of_range", name="k", low=1, high=1000, value=k)
    start = time.perf_counter()
    query, notes = check_query(query, index.language)
    if method == "rerank":
        p = rerank_stages(index, query, max(k, rerank_depth))
        cand, final = p["candidates"], p["final"]
        order = np.concatenate([cand[p["order"]], p["rest"]])
        scores = np.full(len(index.docs), float(final.min()) - 1.0)  # below every reranked candidate
        scores[cand] = final
    elif method == "bm25":
        scores = index.bm25_scores(query)
    elif method == "dense":
        scores = index.dense_scores(query)
    else:
        scores = index.hybrid_scores(query, fusion, rrf_k)
    if method == "bm25" and not np.any(scores > 0):
        notes.append("no document shares a word with the query (this index is Korean): no BM25 results")
        return SearchResult(query, method, [], time.perf_counter() - start, notes)
    if method != "rerank":
        order = np.argsort(-scores, kind="stable")
    docs = index.docs
    hits = [
        Hit(docs[i].doc_id, float(scores[i]), rank=r + 1, title=docs[i].title, text=docs[i].text)
        for r, i in enumerate(order[:k])
    ]
    return SearchResult(query, method, hits, time.perf_counter() - start, notes)


def breakdown(
    index: Retrievers, query: str, k: int = 10, rrf_k: float = 60.0, alpha: float | None = None
) -> list[dict]:
    """Per document: each retriever's rank and score, the RRF and convex fused scores and their ranks."""
    query, _ = check_query(query, index.language)
    sparse, dense = index.bm25_scores(query), index.dense_scores(query)
    a = index.alpha if alpha is None else alpha
    fused_rrf, fused_cvx = rrf([sparse, dense], rrf_k), convex(sparse, dense, a)
    ranks = {
        name: ranks_from_scores(s)
        for name, s in (("bm25", sparse), ("dense", dense), ("rrf", fused_rrf), ("convex", fused_cvx))
    }
    show = sorted(
        {int(i) for name in ranks for i in np.nonzero(ranks[name] <= k)[0]},
        key=lambda i: (ranks["convex"][i], ranks["rrf"][i]),
    )
    docs = index.docs
    return [
        {
            "doc_id": docs[i].doc_id,
            "title": docs[i].title,
            "bm25_rank": int(ranks["bm25"][i]),
            "bm25_score": round(float(sparse[i]), 4),
            "dense_rank": int(ranks["dense"][i]),
            "dense_score": round(float(dense[i]), 4),
            "rrf_rank": int(ranks["rrf"][i]),
            "rrf_score": round(float(fused_rrf[i]), 5),
            "convex_rank": int(ranks["convex"][i]),
            "convex_score": round(float(fused_cvx[i]), 4),
        }
        for i in show
    ]


def rerank_breakdown(index: Retrievers, query: str, k: int = 10) -> list[dict]:
    """Per candidate: its hybrid rank, each signal's score and the final rank after reranking."""
    query, _ = check_query(query, index.language)
    p = rerank_stages(index, query)
    hybrid_rank = {int(c): r + 1 for r, c in enumerate(p["candidates"])}
    rows = []
    for r, j in enumerate(p["order"][:k]):
        i = int(p["candidates"][j])
        rows.append(
            {
                "rank": r + 1,
                "doc_id": index.docs[i].doc_id,
                "hybrid_rank": hybrid_rank[i],
                "bm25": round(float(p["bm25"][j]), 3),
                "dense": round(float(p["dense"][j]), 4),
                "lm_maxsim": round(float(p["lm"][j]), 4),
                "answer_type": int(p["type"][j]),
                "final": round(float(p["final"][j]), 4),
                "text": index.docs[i].text[:70],
            }
        )
    return rows


def evaluate(
    index: Retrievers,
    questions: list[Question],
    methods: tuple[str, ...] = ("bm25", "dense", "hybrid"),
    rerank_depth: int = 30,
) -> dict[str, dict[str, float]]:
    """hit@1 / hit@5 / MRR per pipeline on `questions` (`rerank` is skipped when the index has no reranker)."""
    out = {}
    for method in methods:
        if method == "rerank" and index.reranker is None:
            continue
        ranks = []
        for q in questions:
            hits = search(index, q.question, method, k=max(10, rerank_depth), rerank_depth=rerank_depth).hits
            ranks.append(rank_of([h.doc_id for h in hits], q.doc_id))
        out[method] = {k: round(v, 4) for k, v in metrics(ranks).items()}
    return out
