"""The built search index over one corpus: its documents, retrievers and tuned weights, and one score per document
from each retriever. Searching with it runs the named pipelines of pipeline.py; build.py builds it and
persistence.py saves and loads it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.core.corpus import CorpusSpec, Doc
from engine.retrieval import pipeline as pipelines
from engine.retrieval.bm25 import BM25Index
from engine.retrieval.dense import DenseIndex
from engine.retrieval.evaluation import Question
from engine.retrieval.hybrid import convex, rrf
from engine.retrieval.korean_dense import KoreanEncoder
from engine.retrieval.late_interaction import LateInteractionReranker
from engine.retrieval.tokenizers import kiwi_content, whitespace_tokens
from engine.retrieval.types import SearchResult

DEFAULT_ALPHA = 0.5


@dataclass
class SearchIndex:
    spec: CorpusSpec
    docs: list[Doc]
    bm25: BM25Index  # Kiwi content morphemes
    bm25_whitespace: BM25Index
    korean: KoreanEncoder
    dense: DenseIndex
    alpha: float  # weight of BM25 in the convex hybrid, chosen on the dev questions
    alpha_table: list[dict] = field(default_factory=list)
    build_seconds: float = 0.0
    reranker: LateInteractionReranker | None = None  # the `rerank` stage; None if not built (or no LM)
    rerank_table: list[dict] = field(default_factory=list)  # dev metrics per (bm25, dense, lm) weight
    expansions: list[list[str]] = field(default_factory=list)  # training questions appended to each document
    notes: list[str] = field(default_factory=list)  # what the build skipped, and why
    adapter_history: list[dict] = field(default_factory=list)  # loss per epoch of the late-interaction adapter

    @property
    def corpus(self) -> str:
        """The corpus's id ("constitution", ...)."""
        return self.spec.id

    @property
    def language(self) -> str:
        return self.spec.language

    @property
    def doc_ids(self) -> list[str]:
        return [d.doc_id for d in self.docs]

    # -- scores, one array per retriever (corpus order) --------------------------------------------------------
    def bm25_scores(self, query: str, tokenizer: str = "kiwi") -> np.ndarray:
        if tokenizer == "whitespace":
            return self.bm25_whitespace.scores(whitespace_tokens(query))
        return self.bm25.scores(kiwi_content(query))

    def dense_scores(self, query: str) -> np.ndarray:
        return self.dense.scores(query)

    def hybrid_scores(
        self, query: str, fusion: str = "convex", rrf_k: float = 60.0, alpha: float | None = None
    ) -> np.ndarray:
        sparse, dense = self.bm25_scores(query), self.dense_scores(query)
        if fusion == "rrf":
            return rrf([sparse, dense], rrf_k)
        return convex(sparse, dense, self.alpha if alpha is None else alpha)

    def score_matrix(self, questions: list[Question], retriever: str, **kw) -> np.ndarray:
        fn = {
            "bm25": self.bm25_scores,
            "bm25-whitespace": lambda q: self.bm25_scores(q, "whitespace"),
            "dense": self.dense_scores,
            "hybrid": self.hybrid_scores,
            "hybrid-rrf": lambda q: self.hybrid_scores(q, "rrf", kw.get("rrf_k", 60.0)),
        }[retriever]
        return np.array([fn(q.question) for q in questions])

    # -- the named pipelines (pipeline.py) ---------------------------------------------------------------------
    def search(
        self,
        query: str,
        method: str = pipelines.FUSION_PIPELINE,
        k: int = 10,
        fusion: str = "convex",
        rrf_k: float = 60.0,
        rerank_depth: int = 30,
    ) -> SearchResult:
        return pipelines.search(self, query, method, k, fusion, rrf_k, rerank_depth)

    def pipeline(self, query: str, depth: int | None = None) -> dict:
        """The `rerank` pipeline's stages for one (checked) query (pipelines.rerank_stages)."""
        return pipelines.rerank_stages(self, query, depth)

    def breakdown(self, query: str, k: int = 10, rrf_k: float = 60.0, alpha: float | None = None) -> list[dict]:
        return pipelines.breakdown(self, query, k, rrf_k, alpha)

    def rerank_breakdown(self, query: str, k: int = 10) -> list[dict]:
        return pipelines.rerank_breakdown(self, query, k)

    def evaluate(
        self, questions: list[Question], methods: tuple[str, ...] = ("bm25", "dense", "hybrid"), rerank_depth: int = 30
    ) -> dict[str, dict[str, float]]:
        return pipelines.evaluate(self, questions, methods, rerank_depth)
