"""BM25 (Okapi) from scratch, equal to `rank_bm25.BM25Okapi` on the same tokens — first readable, then fast.

    score(q, d) = Σ_{t ∈ q} idf(t) · tf(t,d)·(k1+1) / (tf(t,d) + k1·(1 − b + b·|d|/avgdl))
    idf(t)      = ln(N − n(t) + 0.5) − ln(n(t) + 0.5),  floored at ε·mean(idf) where it would be negative

`bm25_scores` is the textbook loop. `BM25Index` precomputes each term's weight in each document it occurs in, so a
query adds a handful of short arrays — the same float operations in the same order as rank_bm25, hence bitwise
identical scores (the tests compare with ==), about 50× faster.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from engine.core.textinput import InputError


@dataclass
class BM25Stats:
    """Corpus statistics: everything BM25 needs besides the query."""

    doc_freqs: list[dict[str, int]]  # per document: term -> count
    doc_len: np.ndarray  # (N,) tokens per document
    avgdl: float
    idf: dict[str, float]
    k1: float = 1.5
    b: float = 0.75
    epsilon: float = 0.25
    average_idf: float = 0.0


def compute_idf(doc_freqs: list[dict[str, int]], epsilon: float) -> tuple[dict[str, float], float]:
    """idf per term, with rank_bm25's floor: terms in more than half the documents get ε·(mean idf)."""
    n_docs = len(doc_freqs)
    containing = Counter()  # term -> number of documents that contain it
    for freqs in doc_freqs:
        containing.update(freqs.keys())
    idf, negative = {}, []
    idf_sum = 0.0
    for term, n in containing.items():
        value = math.log(n_docs - n + 0.5) - math.log(n + 0.5)
        idf[term] = value
        idf_sum += value
        if value < 0:
            negative.append(term)
    average = idf_sum / len(idf) if idf else 0.0
    for term in negative:
        idf[term] = epsilon * average
    return idf, average


def fit_bm25(corpus_tokens: list[list[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25) -> BM25Stats:
    if not corpus_tokens:
        raise InputError("retrieval.no_documents")
    doc_freqs = []
    for tokens in corpus_tokens:
        freqs: dict[str, int] = {}
        for term in tokens:  # insertion order as rank_bm25 builds it (the idf mean is summed in this order)
            freqs[term] = freqs.get(term, 0) + 1
        doc_freqs.append(freqs)
    doc_len = np.array([len(t) for t in corpus_tokens])
    avgdl = sum(len(t) for t in corpus_tokens) / len(corpus_tokens)
    if avgdl == 0:
        raise InputError("retrieval.all_documents_empty")
    idf, average = compute_idf(doc_freqs, epsilon)
    return BM25Stats(doc_freqs, doc_len, avgdl, idf, k1, b, epsilon, average)


def bm25_scores(stats: BM25Stats, query_tokens: list[str]) -> np.ndarray:
    """The textbook loop: for each query term, its weight in every document. (N,) scores in corpus order."""
    score = np.zeros(len(stats.doc_freqs))
    for term in query_tokens:
        tf = np.array([freqs.get(term) or 0 for freqs in stats.doc_freqs])
        length_norm = stats.k1 * (1 - stats.b + stats.b * stats.doc_len / stats.avgdl)
        score += (stats.idf.get(term) or 0) * (tf * (stats.k1 + 1) / (tf + length_norm))
    return score


@dataclass
class BM25Index:
    """Precomputed term -> (documents, weights): a query only touches the documents that contain its terms."""

    stats: BM25Stats
    postings: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def build(cls, corpus_tokens: list[list[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
        stats = fit_bm25(corpus_tokens, k1, b, epsilon)
        length_norm = stats.k1 * (1 - stats.b + stats.b * stats.doc_len / stats.avgdl)  # (N,)
        docs_of: dict[str, list[int]] = {}
        for i, freqs in enumerate(stats.doc_freqs):
            for term in freqs:
                docs_of.setdefault(term, []).append(i)
        postings = {}
        for term, docs in docs_of.items():
            idx = np.array(docs)
            tf = np.array([stats.doc_freqs[i][term] for i in docs])
            # the same expression as bm25_scores, evaluated only where tf > 0 (elsewhere it is exactly 0)
            postings[term] = (idx, stats.idf[term] * (tf * (stats.k1 + 1) / (tf + length_norm[idx])))
        return cls(stats, postings)

    @property
    def n_docs(self) -> int:
        return len(self.stats.doc_freqs)

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        score = np.zeros(self.n_docs)
        for term in query_tokens:
            hit = self.postings.get(term)
            if hit is not None:
                score[hit[0]] += hit[1]
        return score

    def matched_terms(self, query_tokens: list[str], doc_index: int) -> dict[str, float]:
        """Each query term's contribution to one document's score (for the per-document breakdown)."""
        out: dict[str, float] = {}
        for term in query_tokens:
            hit = self.postings.get(term)
            if hit is None:
                continue
            where = np.nonzero(hit[0] == doc_index)[0]
            if where.size:
                out[term] = out.get(term, 0.0) + float(hit[1][where[0]])
        return out
