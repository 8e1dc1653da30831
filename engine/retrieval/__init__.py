"""Retrieval over small Korean corpora (chapters 10–12): BM25, dense, hybrid fusion, reranking and evaluation.

Every retriever answers `search(query, k) -> list[Hit]` and `scores(query) -> np.ndarray` (one score per doc, in
corpus order), so fusion and evaluation treat them alike.
"""

from engine.retrieval.types import Hit

__all__ = ["Hit"]
