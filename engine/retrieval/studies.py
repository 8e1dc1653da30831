"""Comparisons the chapter pages show over a built index (each returns one row per method)."""

from __future__ import annotations

import numpy as np

from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.retrieval.evaluation import Question, evaluate_scores, load_questions
from engine.retrieval.hybrid import choose_alpha, convex, rrf
from engine.retrieval.index import SearchIndex


def fusion_study(
    index: SearchIndex,
    questions: list[Question],
    tune: list[Question] | None = None,
    rrf_k: float = 60.0,
    progress: ProgressFn = null_progress,
) -> list[dict]:
    """Fusion can hurt: BM25-Kiwi fused with the English MiniLM by RRF vs by convex fusion (α chosen on `tune`,
    the corpus's dev questions by default), next to the same fusions with the Korean encoder. One row per method."""
    from engine.retrieval.dense import build_dense, minilm_encoder

    if not tune:
        if index.spec.dev_questions is None:
            raise InputError(f"the corpus {index.corpus!r} has no dev questions: pass `tune` to choose α on")
        tune = load_questions(index.spec.dev_questions)
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
