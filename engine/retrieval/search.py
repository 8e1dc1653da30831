"""One search index over a corpus: BM25 (Kiwi or whitespace), dense (Korean encoder or MiniLM), hybrid, rerank.

`build_index` trains what is missing (the Korean encoder, ≈1–2 min on 2 cores, with progress), chooses the
hybrid weight α on the dev questions, and writes everything under LLMLAB_CACHE; `load_index` reads it back in about
a second, so indexes persist across restarts and a query answers in milliseconds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.config import get_settings
from engine.corpus import Doc, load_corpus
from engine.progress import ProgressFn, null_progress
from engine.retrieval.bm25 import BM25Index
from engine.retrieval.dense import DenseIndex
from engine.retrieval.evaluation import DEV_QUESTIONS, Question, load_questions, metrics, rank_of
from engine.retrieval.hybrid import choose_alpha, convex, ranks_from_scores, rrf
from engine.retrieval.korean_dense import KoreanEncoder, TrainConfig, corpus_hash, load_or_train
from engine.retrieval.tokenizers import kiwi_content, whitespace_tokens
from engine.textinput import InputError, clean_text

METHODS = ("bm25", "dense", "hybrid", "rerank")
MAX_QUERY_CHARS = 500  # a question, not a document: longer input is refused with a message
INDEX_VERSION = 3
DEFAULT_ALPHA = 0.5


@dataclass
class SearchHit:
    doc_id: str
    title: str
    score: float
    rank: int
    text: str = ""


@dataclass
class SearchResult:
    query: str
    method: str
    hits: list[SearchHit]
    seconds: float
    notes: list[str] = field(default_factory=list)


@dataclass
class SearchIndex:
    corpus: str
    docs: list[Doc]
    bm25: BM25Index  # Kiwi content morphemes
    bm25_whitespace: BM25Index
    korean: KoreanEncoder
    dense: DenseIndex
    alpha: float  # weight of BM25 in the convex hybrid, chosen on the dev questions
    alpha_table: list[dict] = field(default_factory=list)
    build_seconds: float = 0.0
    reranker: object | None = None  # engine.retrieval.rerank.Reranker, attached when trained

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

    # -- search ------------------------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        method: str = "hybrid",
        k: int = 10,
        fusion: str = "convex",
        rrf_k: float = 60.0,
        rerank_depth: int = 20,
    ) -> SearchResult:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if not 1 <= k <= 1000:
            raise ValueError("k must be between 1 and 1000")
        start = time.perf_counter()
        query, notes = check_query(query)
        if method == "bm25":
            scores = self.bm25_scores(query)
        elif method == "dense":
            scores = self.dense_scores(query)
        else:
            scores = self.hybrid_scores(query, fusion, rrf_k)
        if method == "bm25" and not np.any(scores > 0):
            notes.append("no document shares a word with the query (this index is Korean): no BM25 results")
            return SearchResult(query, method, [], time.perf_counter() - start, notes)
        order = np.argsort(-scores, kind="stable")
        if method == "rerank":
            if self.reranker is None:
                raise ValueError(
                    "the reranker is not trained yet: run `python -m engine build-index --reranker` "
                    "or press the button on the chapter 11 page"
                )
            depth = min(max(k, rerank_depth), len(order))
            cand = [int(i) for i in order[:depth]]
            rescored = self.reranker.rerank(query, [self.docs[i] for i in cand], [float(scores[i]) for i in cand])
            order = np.array([cand[i] for i in np.argsort(-rescored, kind="stable")])
            scores = scores.copy()
            scores[cand] = rescored
        hits = [
            SearchHit(self.docs[i].doc_id, self.docs[i].title, float(scores[i]), r + 1, self.docs[i].text)
            for r, i in enumerate(order[:k])
        ]
        return SearchResult(query, method, hits, time.perf_counter() - start, notes)

    def breakdown(self, query: str, k: int = 10, rrf_k: float = 60.0, alpha: float | None = None) -> list[dict]:
        """Per document: each retriever's rank and score, the RRF and convex fused scores and their ranks."""
        query, _ = check_query(query)
        sparse, dense = self.bm25_scores(query), self.dense_scores(query)
        a = self.alpha if alpha is None else alpha
        fused_rrf, fused_cvx = rrf([sparse, dense], rrf_k), convex(sparse, dense, a)
        ranks = {
            name: ranks_from_scores(s)
            for name, s in (("bm25", sparse), ("dense", dense), ("rrf", fused_rrf), ("convex", fused_cvx))
        }
        show = sorted(
            {int(i) for name in ranks for i in np.nonzero(ranks[name] <= k)[0]},
            key=lambda i: (ranks["convex"][i], ranks["rrf"][i]),
        )
        return [
            {
                "doc_id": self.docs[i].doc_id,
                "title": self.docs[i].title,
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

    # -- evaluation --------------------------------------------------------------------------------------------
    def score_matrix(self, questions: list[Question], retriever: str, **kw) -> np.ndarray:
        fn = {
            "bm25": self.bm25_scores,
            "bm25-whitespace": lambda q: self.bm25_scores(q, "whitespace"),
            "dense": self.dense_scores,
            "hybrid": self.hybrid_scores,
            "hybrid-rrf": lambda q: self.hybrid_scores(q, "rrf", kw.get("rrf_k", 60.0)),
        }[retriever]
        return np.array([fn(q.question) for q in questions])

    def evaluate(
        self, questions: list[Question], methods: tuple[str, ...] = ("bm25", "dense", "hybrid"), rerank_depth: int = 20
    ) -> dict[str, dict[str, float]]:
        out = {}
        for method in methods:
            if method == "rerank" and self.reranker is None:
                continue
            ranks = []
            for q in questions:
                hits = self.search(q.question, method, k=max(10, rerank_depth), rerank_depth=rerank_depth).hits
                ranks.append(rank_of([h.doc_id for h in hits], q.doc_id))
            out[method] = {k: round(v, 4) for k, v in metrics(ranks).items()}
        return out


def check_query(query: str | None) -> tuple[str, list[str]]:
    """Bounds for a search query, with messages a learner can act on."""
    cleaned = clean_text(query, max_chars=10**9)
    text = cleaned.text.strip()
    if len(text) > MAX_QUERY_CHARS:
        raise InputError(
            f"the query is {len(text):,} characters long; search takes a question of at most "
            f"{MAX_QUERY_CHARS} characters, not a document"
        )
    if not any(ch.isalnum() for ch in text):
        raise InputError("the query has no letters or digits (only symbols or emoji): type a question in Korean")
    notes = []
    hangul = sum("가" <= ch <= "힣" for ch in text)
    letters = sum(ch.isalpha() for ch in text)
    if hangul == 0 and letters:
        notes.append("the query has no Hangul: this corpus is Korean, so results may be unrelated")
    return text, notes


# -- building and loading ---------------------------------------------------------------------------------------
def _index_path(docs: list[Doc]) -> Path:
    return get_settings().cache_dir / "retrieval" / f"index-v{INDEX_VERSION}-{corpus_hash(docs)}.json"


def index_built(corpus: str = "constitution") -> bool:
    docs = load_corpus(corpus)
    return _index_path(docs).exists() and load_or_train(docs, train=False) is not None


def build_index(
    corpus: str = "constitution",
    progress: ProgressFn = null_progress,
    config: TrainConfig | None = None,
    force: bool = False,
) -> SearchIndex:
    """Everything a search needs, built once and cached (the Korean encoder is the only slow part)."""
    docs = load_corpus(corpus)
    path = _index_path(docs)
    if path.exists() and not force:
        loaded = load_index(corpus, progress)
        if loaded is not None:
            return loaded
    start = time.perf_counter()
    progress(0.0, "Kiwi morphemes for BM25")
    tokens = [kiwi_content(d.text) for d in docs]
    ws_tokens = [whitespace_tokens(d.text) for d in docs]
    encoder = load_or_train(docs, config, lambda f, m: progress(0.05 + 0.85 * f, m))
    progress(0.9, "encoding documents")
    dense = DenseIndex("korean-morph", encoder.encode, np.asarray(encoder.encode([d.text for d in docs])))
    index = SearchIndex(
        corpus, docs, BM25Index.build(tokens), BM25Index.build(ws_tokens), encoder, dense, DEFAULT_ALPHA
    )
    if corpus == "constitution" and DEV_QUESTIONS.exists():
        progress(0.95, "choosing the hybrid weight α on the dev questions")
        dev = load_questions(DEV_QUESTIONS)
        gold = [index.doc_ids.index(q.doc_id) for q in dev]
        index.alpha, index.alpha_table = choose_alpha(
            list(index.score_matrix(dev, "bm25")), list(index.score_matrix(dev, "dense")), gold
        )
    index.build_seconds = round(time.perf_counter() - start, 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{time.time_ns()}.tmp")
    tmp.write_text(
        json.dumps(
            {
                "corpus": corpus,
                "tokens": tokens,
                "ws_tokens": ws_tokens,
                "alpha": index.alpha,
                "alpha_table": index.alpha_table,
                "build_seconds": index.build_seconds,
                "doc_matrix": np.round(dense.matrix, 6).tolist(),
            },
            ensure_ascii=False,
        )
    )
    tmp.replace(path)
    progress(1.0, f"index ready ({index.build_seconds:.0f} s)")
    return index


def load_index(corpus: str = "constitution", progress: ProgressFn = null_progress) -> SearchIndex | None:
    """The persisted index, or None if it was never built (or was built for another version of the corpus)."""
    docs = load_corpus(corpus)
    path = _index_path(docs)
    if not path.exists():
        return None
    encoder = load_or_train(docs, train=False)
    if encoder is None:
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    progress(0.5, "loading the index")
    dense = DenseIndex("korean-morph", encoder.encode, np.array(saved["doc_matrix"], dtype=np.float64))
    index = SearchIndex(
        corpus,
        docs,
        BM25Index.build(saved["tokens"]),
        BM25Index.build(saved["ws_tokens"]),
        encoder,
        dense,
        float(saved["alpha"]),
        saved.get("alpha_table", []),
        float(saved.get("build_seconds", 0.0)),
    )
    from engine.retrieval.rerank import load_reranker

    index.reranker = load_reranker(docs)
    progress(1.0, "index loaded")
    return index


def get_index(corpus: str = "constitution", progress: ProgressFn = null_progress) -> SearchIndex:
    return load_index(corpus, progress) or build_index(corpus, progress)


def fusion_study(
    index: SearchIndex,
    questions: list[Question],
    tune: list[Question] | None = None,
    rrf_k: float = 60.0,
    progress: ProgressFn = null_progress,
) -> list[dict]:
    """Fusion can hurt: BM25-Kiwi fused with the English MiniLM by RRF vs by convex fusion (α chosen on `tune`,
    the dev questions by default), next to the same fusions with the Korean encoder. One row per method."""
    from engine.retrieval.dense import build_dense, minilm_encoder
    from engine.retrieval.evaluation import evaluate_scores

    tune = tune or load_questions(DEV_QUESTIONS)
    minilm = build_dense(
        "minilm", minilm_encoder(progress), index.docs, "all-MiniLM-L6-v2", lambda f, m: progress(0.1 + 0.6 * f, m)
    )
    progress(0.75, "scoring the questions")

    def mats(qs):
        return (
            index.score_matrix(qs, "bm25"),
            np.array([minilm.scores(q.question) for q in qs]),
            index.score_matrix(qs, "dense"),
        )

    b, m, k = mats(questions)
    tb, tm, tk = mats(tune) if tune is not questions else (b, m, k)
    gold = [index.doc_ids.index(q.doc_id) for q in tune]
    a_m, _ = choose_alpha(list(tb), list(tm), gold)
    a_k, _ = choose_alpha(list(tb), list(tk), gold)
    ids = index.doc_ids
    rows = []
    for name, s in (
        ("BM25 (Kiwi)", b),
        ("MiniLM (English)", m),
        (f"RRF(BM25, MiniLM) k={rrf_k:g}", np.array([rrf([x, y], rrf_k) for x, y in zip(b, m, strict=True)])),
        (f"convex(BM25, MiniLM) α={a_m:g}", np.array([convex(x, y, a_m) for x, y in zip(b, m, strict=True)])),
        ("Korean morpheme encoder", k),
        (f"RRF(BM25, Korean) k={rrf_k:g}", np.array([rrf([x, y], rrf_k) for x, y in zip(b, k, strict=True)])),
        (f"convex(BM25, Korean) α={a_k:g}", np.array([convex(x, y, a_k) for x, y in zip(b, k, strict=True)])),
    ):
        rows.append({"method": name, **{key: round(v, 3) for key, v in evaluate_scores(s, ids, questions).items()}})
    progress(1.0, "done")
    return rows
