"""Chapters 10 and 11's shipped results: every demo that needs a run (a training, the Korean search index, an
evaluation) run once with the page's default settings, so no section opens empty
(assets/precomputed/<section>.json, read with `engine.core.load_precomputed`).

`python -m engine retrieval-precompute` makes them all (`--only ch10_word2vec,ch11_search` some); each file records
that command. The numbers are the real engine's (`word2vec`, `build`, `studies`, `views`, `rerank`), reduced to plain
JSON: hits and table rows as the page draws them, the curves' points and the captions' numbers. The sections that
search use the cached index (`build_index` builds it first when it is missing: several minutes on 2 cores).
"""

from __future__ import annotations

from dataclasses import asdict

from engine.core.progress import ProgressFn, null_progress

SECTIONS = ("ch10_word2vec", "ch10_hybrid", "ch11_mnr", "ch11_lm", "ch11_gemma", "ch11_rerank", "ch11_search")
# The pages' defaults (ui/strings/10_embeddings.yaml, 11_embedding_finetuning.yaml; pages/10_embeddings.py, 11_...):
# a shipped result shows what the default click would give.
W2V_WORD = "대통령"  # ch10 w_word
HYBRID_QUERY = "노동자의 파업할 권리는 어디에 나오나요?"  # ch10.default_query
HYBRID = {"k": 5, "fusion": "convex", "rrf_k": 60}
MNR = {"n_pairs": 192, "epochs": 1, "lr": 1e-4}  # ch11 m_pairs, m_epochs, m_lr
GEMMA_LAYER = 6  # ch11 l_layer
RERANK_QUERY = "대통령 임기는 몇 년이고 연임이 가능한가요?"  # ch11.rerank_query
SEARCH_QUERY = "세금은 누가 정하나요?"  # ch11.default_query


def hit_rows(hits) -> list[dict]:
    """Hits as the pages' result table shows them: rank, document, score, text."""
    return [{"rank": h.rank, "doc_id": h.doc_id, "score": round(float(h.score), 4), "text": h.text} for h in hits]


def _index(progress: ProgressFn):
    from engine.retrieval.build import build_index

    return build_index("constitution", progress)


def word2vec_data(progress: ProgressFn = null_progress) -> dict:
    """word2vec on the Constitution with the page's defaults, and the default word's neighbours and map."""
    from engine.core.corpus import load_constitution
    from engine.retrieval.views import word_map
    from engine.retrieval.word2vec import Word2VecConfig, train_word2vec

    cfg = Word2VecConfig()
    w2v = train_word2vec(load_constitution(), cfg, progress)
    wm = word_map(w2v, W2V_WORD, 10)
    return {
        "config": {"dim": cfg.dim, "window": cfg.window, "epochs": cfg.epochs},
        "word": W2V_WORD,
        "vocab": len(w2v.vocab),
        "seconds": round(w2v.seconds, 1),
        "loss": round(float(w2v.losses[-1]), 4),
        "neighbours": [[w, round(float(c), 4)] for w, c in wm.neighbours],
        "words": wm.words,
        "xy": [[round(float(x), 4), round(float(y), 4)] for x, y in wm.xy],
    }


def hybrid_data(progress: ProgressFn = null_progress) -> dict:
    """The default query's hybrid hits and per-document breakdown, and the fusion study on the dev questions."""
    from engine.retrieval.evaluation import DEV_QUESTIONS, load_questions
    from engine.retrieval.studies import fusion_study

    idx = _index(lambda f, m: progress(0.5 * f, m))
    h = HYBRID
    res = idx.search(HYBRID_QUERY, "hybrid", h["k"], fusion=h["fusion"], rrf_k=h["rrf_k"])
    study = fusion_study(
        idx, load_questions(DEV_QUESTIONS), rrf_k=h["rrf_k"], progress=lambda f, m: progress(0.5 + 0.5 * f, m)
    )
    return {
        "query": HYBRID_QUERY,
        **h,
        "alpha": idx.alpha,
        "hits": hit_rows(res.hits),
        "ms": round(res.seconds * 1000, 1),
        "breakdown": idx.breakdown(HYBRID_QUERY, h["k"], rrf_k=h["rrf_k"]),
        "study": study,
    }


def mnr_data(progress: ProgressFn = null_progress) -> dict:
    """MiniLM fine-tuned with MNR with the page's defaults: dev hit rates before and after, the loss curve."""
    from engine.retrieval.views import mnr_experiment

    res = mnr_experiment(MNR["n_pairs"], MNR["epochs"], MNR["lr"], progress)
    return {
        **MNR,
        "before": res.before,
        "after": res.after,
        "losses": res.losses,
        "steps": res.steps,
        "pairs": res.pairs,
        "seconds": round(res.seconds, 1),
        "examples": [list(e) for e in res.examples],
    }


def lm_data(progress: ProgressFn = null_progress) -> dict:
    """The index's Korean encoder: how it was trained (loss per epoch) and its dev hit rates before and after."""
    from engine.retrieval.views import zero_shot_comparison

    idx = _index(lambda f, m: progress(0.5 * f, m))
    before, after = zero_shot_comparison(idx, lambda f, m: progress(0.5 + 0.5 * f, m))
    info = idx.korean.info
    return {"info": asdict(info) if info else None, "before": before, "after": after}


def gemma_data(progress: ProgressFn = null_progress) -> dict:
    """Mean-pooled Gemma-3-270M hidden states at the page's default layer: the similarity matrix."""
    from engine.models import load_causal_lm
    from engine.retrieval.views import lm_similarity

    sim = lm_similarity(load_causal_lm("base-ko", progress), GEMMA_LAYER)
    matrix = [[round(float(v), 3) for v in row] for row in sim.matrix]
    return {"layer": GEMMA_LAYER, "labels": sim.labels, "matrix": matrix}


def rerank_data(progress: ProgressFn = null_progress) -> dict:
    """The book's cross-encoder trained once (not saved to the cache), the index's LM reranker on the default
    query, and the rerankers compared on the dev questions."""
    from engine.retrieval.evaluation import DEV_QUESTIONS, load_questions
    from engine.retrieval.rerank import evaluate_pipelines, train_reranker

    idx = _index(lambda f, m: progress(0.3 * f, m))
    ce = train_reranker(idx, progress=lambda f, m: progress(0.3 + 0.4 * f, m), save=False)
    info = {k: ce.info[k] for k in ("seconds", "pairs", "mix", "mix_table")}
    lm = idx.reranker
    progress(0.7, "LM reranker on the default query")
    lm_part = None
    if lm is not None:
        lm.ensure_encoder()
        lm_part = {
            "model": lm.info.get("model", "Gemma-3-270M"),
            "weights": list(lm.weights),
            "epochs": len(idx.adapter_history),
            "query": RERANK_QUERY,
            "breakdown": idx.rerank_breakdown(RERANK_QUERY, 5),
        }
    progress(0.8, "rerankers on the dev questions")
    rows = evaluate_pipelines(idx, ce, load_questions(DEV_QUESTIONS))
    progress(1.0, "done")
    return {"cross_encoder": info, "lm": lm_part, "eval": rows}


def search_data(progress: ProgressFn = null_progress) -> dict:
    """The default question's top 5 by every pipeline the index has, and dev / held-out test metrics."""
    from engine.retrieval.pipeline import METHODS
    from engine.retrieval.views import dev_and_test_metrics

    idx = _index(lambda f, m: progress(0.3 * f, m))
    methods = tuple(m for m in METHODS if m != "rerank" or idx.reranker is not None)
    results = {}
    for m in methods:
        res = idx.search(SEARCH_QUERY, m, 5)
        results[m] = {"hits": hit_rows(res.hits), "ms": round(res.seconds * 1000, 1), "notes": list(res.notes)}
    rows = dev_and_test_metrics(idx, methods, lambda f, m: progress(0.4 + 0.6 * f, m))
    return {"query": SEARCH_QUERY, "methods": list(methods), "results": results, "metrics": rows}


def make(section: str, progress: ProgressFn = null_progress):
    makers = {
        "ch10_word2vec": word2vec_data,
        "ch10_hybrid": hybrid_data,
        "ch11_mnr": mnr_data,
        "ch11_lm": lm_data,
        "ch11_gemma": gemma_data,
        "ch11_rerank": rerank_data,
        "ch11_search": search_data,
    }
    return makers[section](progress)
