"""One search index over a corpus: BM25 (Kiwi or whitespace), dense (Korean encoder or MiniLM), hybrid, rerank.

The pipeline, stage by stage (each is a `method`):

- `bm25`: BM25 over Kiwi content morphemes;  `dense`: the Korean morpheme encoder (korean_dense.py);
- `hybrid`: convex fusion α·bm25 + (1 − α)·dense, α chosen on the dev questions;
- `rerank`: the hybrid's top `depth` candidates rescored by late interaction over Gemma-3-270M token states
  (through an adapter fine-tuned on the training questions), fused with the BM25 and dense scores
  (late_interaction.py; weights chosen on the dev questions). This is the best pipeline;
  `python -m engine search --method hybrid` runs it unless `--no-rerank` is given.

For the Constitution, each article's *search text* (what BM25 and the dense encoder index) is the article plus the
hand-written training questions that it answers (assets/constitution_train_questions.yaml): document expansion in
the style of doc2query, with questions written by hand instead of generated. The evaluation questions are never
used for it (the training file is checked to stay apart from both, see tests/engine/test_search.py).

`build_index` trains what is missing (the Korean encoder, ≈30 s–2 min on 2 cores; the article states of the LM
reranker, ≈1–2 min, and its adapter trained on the training questions, ≈2–3 min on one core), chooses α and the
rerank weights on the dev questions, and writes everything under LLMLAB_CACHE; `load_index` reads it back in
about a second, so indexes persist across restarts.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.core.config import get_settings
from engine.core.corpus import Doc, load_corpus
from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError, clean_text
from engine.retrieval.bm25 import BM25Index
from engine.retrieval.dense import DenseIndex
from engine.retrieval.evaluation import (
    DEV_QUESTIONS,
    TRAIN_QUESTIONS,
    Question,
    load_questions,
    metrics,
    rank_of,
)
from engine.retrieval.hybrid import choose_alpha, convex, ranks_from_scores, rrf
from engine.retrieval.korean_dense import KoreanEncoder, TrainConfig, corpus_hash, encoder_path, load_or_train
from engine.retrieval.late_interaction import LateInteractionReranker
from engine.retrieval.tokenizers import kiwi_content, whitespace_tokens

METHODS = ("bm25", "dense", "hybrid", "rerank")
MAX_QUERY_CHARS = 500  # a question, not a document: longer input is refused with a message
INDEX_VERSION = 5  # 5: the LM reranker carries a trained adapter
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
    reranker: LateInteractionReranker | None = None  # the `rerank` stage; None if not built (or no LM)
    rerank_table: list[dict] = field(default_factory=list)  # dev metrics per (bm25, dense, lm) weight
    expansions: list[list[str]] = field(default_factory=list)  # training questions appended to each document
    notes: list[str] = field(default_factory=list)  # what the build skipped, and why
    adapter_history: list[dict] = field(default_factory=list)  # loss per epoch of the late-interaction adapter

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

    def pipeline(self, query: str, depth: int | None = None) -> dict:
        """The full pipeline for one (checked) query: hybrid candidates, their LM scores and the fused order."""
        if self.reranker is None:
            raise ValueError(
                "the LM reranker is not built: run `python -m engine build-index` (it needs the packaged "
                "Gemma-3-270M) or press the button on the chapter 11 page"
            )
        sparse, dense = self.bm25_scores(query), self.dense_scores(query)
        hybrid = convex(sparse, dense, self.alpha)
        depth = min(depth or self.reranker.depth, len(self.docs))
        cand = np.argsort(-hybrid, kind="stable")[:depth]
        lm = self.reranker.lm_scores(query, cand)
        kind = self.reranker.type_scores(query, cand)
        final = self.reranker.fuse(sparse[cand], dense[cand], lm, kind)
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

    # -- search ------------------------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        method: str = "hybrid",
        k: int = 10,
        fusion: str = "convex",
        rrf_k: float = 60.0,
        rerank_depth: int = 30,
    ) -> SearchResult:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if not 1 <= k <= 1000:
            raise ValueError("k must be between 1 and 1000")
        start = time.perf_counter()
        query, notes = check_query(query)
        if method == "rerank":
            p = self.pipeline(query, max(k, rerank_depth))
            cand, final = p["candidates"], p["final"]
            order = np.concatenate([cand[p["order"]], p["rest"]])
            scores = np.full(len(self.docs), float(final.min()) - 1.0)  # below every reranked candidate
            scores[cand] = final
        elif method == "bm25":
            scores = self.bm25_scores(query)
        elif method == "dense":
            scores = self.dense_scores(query)
        else:
            scores = self.hybrid_scores(query, fusion, rrf_k)
        if method == "bm25" and not np.any(scores > 0):
            notes.append("no document shares a word with the query (this index is Korean): no BM25 results")
            return SearchResult(query, method, [], time.perf_counter() - start, notes)
        if method != "rerank":
            order = np.argsort(-scores, kind="stable")
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

    def rerank_breakdown(self, query: str, k: int = 10) -> list[dict]:
        """Per candidate: its hybrid rank, each signal's score and the final rank after reranking."""
        query, _ = check_query(query)
        p = self.pipeline(query)
        hybrid_rank = {int(c): r + 1 for r, c in enumerate(p["candidates"])}
        rows = []
        for r, j in enumerate(p["order"][:k]):
            i = int(p["candidates"][j])
            rows.append(
                {
                    "rank": r + 1,
                    "doc_id": self.docs[i].doc_id,
                    "hybrid_rank": hybrid_rank[i],
                    "bm25": round(float(p["bm25"][j]), 3),
                    "dense": round(float(p["dense"][j]), 4),
                    "lm_maxsim": round(float(p["lm"][j]), 4),
                    "answer_type": int(p["type"][j]),
                    "final": round(float(p["final"][j]), 4),
                    "text": self.docs[i].text[:70],
                }
            )
        return rows

    def evaluate(
        self, questions: list[Question], methods: tuple[str, ...] = ("bm25", "dense", "hybrid"), rerank_depth: int = 30
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
@lru_cache(maxsize=2)
def _train_questions(mtime_ns: int) -> tuple[Question, ...]:
    """The training questions, parsed once per version of the file (pages ask for them on every rerun)."""
    return tuple(load_questions(TRAIN_QUESTIONS))


def expansions(corpus: str, docs: list[Doc]) -> list[list[str]]:
    """Training questions per document (document expansion); only the Constitution has them."""
    out: list[list[str]] = [[] for _ in docs]
    if corpus != "constitution" or not TRAIN_QUESTIONS.exists():
        return out
    where = {d.doc_id: i for i, d in enumerate(docs)}
    for q in _train_questions(TRAIN_QUESTIONS.stat().st_mtime_ns):
        if q.doc_id in where:
            out[where[q.doc_id]].append(q.question)
    return out


def search_text(doc: Doc, extra: list[str]) -> str:
    """What BM25 and the dense encoder index for a document: its text, then the questions it answers."""
    return " ".join([doc.text, *extra])


def _index_path(docs: list[Doc], extra: list[list[str]]) -> Path:
    h = hashlib.sha256(json.dumps(extra, ensure_ascii=False).encode()).hexdigest()[:8]
    return get_settings().cache_dir / "retrieval" / f"index-v{INDEX_VERSION}-{corpus_hash(docs)}-{h}.json"


def index_built(corpus: str = "constitution") -> bool:
    """Both cache files exist (pages ask on every rerun, so nothing is loaded here; load_index validates)."""
    docs = load_corpus(corpus)
    return _index_path(docs, expansions(corpus, docs)).exists() and encoder_path(docs).exists()


def build_index(
    corpus: str = "constitution",
    progress: ProgressFn = null_progress,
    config: TrainConfig | None = None,
    force: bool = False,
    reranker: bool = True,
) -> SearchIndex:
    """Everything a search needs, built once and cached: BM25, the Korean encoder (trained if missing), α, and —
    unless `reranker` is False — the LM reranker's article states and its fusion weights."""
    docs = load_corpus(corpus)
    extra = expansions(corpus, docs)
    path = _index_path(docs, extra)
    if path.exists() and not force:
        loaded = load_index(corpus, progress)
        if loaded is not None and (loaded.reranker is not None or not reranker):
            return loaded
    start = time.perf_counter()
    progress(0.0, "Kiwi morphemes for BM25")
    texts = [search_text(d, e) for d, e in zip(docs, extra, strict=True)]
    tokens = [kiwi_content(t) for t in texts]
    ws_tokens = [whitespace_tokens(t) for t in texts]
    encoder = load_or_train(docs, config, lambda f, m: progress(0.03 + 0.3 * f, m))
    progress(0.34, "encoding documents")
    dense = DenseIndex("korean-morph", encoder.encode, np.asarray(encoder.encode(texts)))
    index = SearchIndex(
        corpus, docs, BM25Index.build(tokens), BM25Index.build(ws_tokens), encoder, dense, DEFAULT_ALPHA
    )
    index.expansions = extra
    dev = load_questions(DEV_QUESTIONS) if corpus == "constitution" and DEV_QUESTIONS.exists() else []
    if dev:
        progress(0.36, "choosing the hybrid weight α on the dev questions")
        gold = [index.doc_ids.index(q.doc_id) for q in dev]
        index.alpha, index.alpha_table = choose_alpha(
            list(index.score_matrix(dev, "bm25")), list(index.score_matrix(dev, "dense")), gold
        )
    if reranker:
        _attach_reranker(index, dev, lambda f, m: progress(0.38 + 0.6 * f, m))
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
                "rerank_weights": list(index.reranker.weights) if index.reranker else None,
                "rerank_table": index.rerank_table,
                "rerank_adapter": (
                    [m.tolist() for m in index.reranker.adapter] if index.reranker and index.reranker.adapter else None
                ),
                "adapter_history": index.adapter_history,
                "notes": index.notes,
                "build_seconds": index.build_seconds,
                "doc_matrix": np.round(dense.matrix, 6).tolist(),
            },
            ensure_ascii=False,
        )
    )
    tmp.replace(path)
    progress(1.0, f"index ready ({index.build_seconds:.0f} s)")
    return index


def _attach_reranker(index: SearchIndex, dev: list[Question], progress: ProgressFn) -> None:
    """Article states of the LM (cached per corpus), then the fusion weights chosen on `dev` (if any)."""
    from engine.models.registry import ModelUnavailable
    from engine.retrieval.late_interaction import DEFAULT_WEIGHTS, build_states, choose_weights, train_adapter

    try:
        reranker = build_states(index.docs, lambda f, m: progress(0.5 * f, m))
    except (ModelUnavailable, ValueError, OSError) as exc:
        index.notes.append(f"LM reranker skipped: {exc}")
        return
    reranker.weights = DEFAULT_WEIGHTS
    index.reranker = reranker
    train = [(q, i) for i, extra in enumerate(index.expansions) for q in extra]
    if train:
        adapter, index.adapter_history = train_adapter(
            reranker, train, progress=lambda f, m: progress(0.5 + 0.35 * f, m)
        )
        reranker.set_adapter(adapter)
    if not dev:
        return
    rows = []
    for i, q in enumerate(dev):
        if i % 10 == 0:
            progress(0.85 + 0.15 * i / len(dev), f"rerank weights on the dev questions {i}/{len(dev)}")
        p = index.pipeline(q.question)
        rows.append((p["candidates"], p["bm25"], p["dense"], p["lm"], p["type"], index.doc_ids.index(q.doc_id)))
    reranker.weights, index.rerank_table = choose_weights(rows)


def load_index(corpus: str = "constitution", progress: ProgressFn = null_progress) -> SearchIndex | None:
    """The persisted index, or None if it was never built (or was built for another version of the corpus)."""
    from engine.retrieval.late_interaction import load_states

    docs = load_corpus(corpus)
    extra = expansions(corpus, docs)
    path = _index_path(docs, extra)
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
    index.expansions = extra
    index.rerank_table = saved.get("rerank_table", [])
    index.notes = saved.get("notes", [])
    if saved.get("rerank_weights"):
        index.reranker = load_states(docs)
        if index.reranker is not None:
            index.reranker.weights = tuple(saved["rerank_weights"])
            if saved.get("rerank_adapter"):
                index.reranker.set_adapter(tuple(np.array(m, dtype=np.float32) for m in saved["rerank_adapter"]))
    index.adapter_history = saved.get("adapter_history", [])
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
