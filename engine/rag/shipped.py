"""Chapter 9's shipped results: what the page shows before a learner runs anything (assets/precomputed/ch09_*.json,
read with `engine.core.load_precomputed`), each made once by `python -m engine rag-precompute --only <section>`.

- `ch09_answer`: the default question ("대통령의 임기는 몇 년인가요?") answered once with and without RAG by the
  `instruct` model, with the page's default settings except the cache (off, so the shipped answer is a real model
  call, not an earlier answer served again): the answer, its citations, the retrieved passages with scores, the
  assembled prompt, its token count, the latencies of that one run and the spans of its trace.
- `ch09_stores`: `compare_stores` on the Constitution's vectors and STORE_N synthetic vectors per kind (the page's
  default; the module docstring of vector_db.py has the 20,000-vector table).
- `ch09_cache`: `threshold_sweep` on assets/rag/cache_pairs.yaml (guard on and off), and the default pair's
  similarity and guard verdict.
- `ch09_rails`: `evaluate_rails` on both halves of assets/rag/rails_labelled.yaml (the page reports the test half).

Why ship them: the answer needs the model server (a first start takes seconds, an answer seconds more on 2 cores),
the store comparison a minute, and the rail evaluation loads the Constitution's search index — none of that may
happen on a page load. Everything is reduced to plain JSON, as the page draws it.
"""

from __future__ import annotations

from dataclasses import asdict

from engine.core.progress import ProgressFn, null_progress

SECTIONS = ("ch09_answer", "ch09_stores", "ch09_cache", "ch09_rails")
# The page's defaults (ui/strings/09_rag.yaml ch09.default_question, pages/09_rag.py): a shipped result shows what
# the default click would give.
QUESTION = "대통령의 임기는 몇 년인가요?"
STORE_N = 5_000  # synthetic vectors per kind in the page's store comparison (the page's default)
STORE_QUERIES = 50
PAIR = ("A가 B보다 크다", "B가 A보다 크다")  # the page's default pair in the cache section (ch09.pair_a, ch09.pair_b)


def passage_row(p) -> dict:
    return {"doc_id": p.doc_id, "title": p.title, "text": p.text, "source": p.source, "score": round(p.score, 4)}


def answer_data(progress: ProgressFn = null_progress) -> dict:
    """One real run of the default question: RAG (cache off) and the same model without passages."""
    from engine.rag.pipeline import RagSettings, answer, answer_without_rag
    from engine.serving.client import resolve_endpoint

    settings = RagSettings(cache=False)
    progress(0.0, "no RAG")
    plain = "".join(answer_without_rag(QUESTION, settings))
    progress(0.4, "RAG")
    res = answer(QUESTION, settings=settings)
    progress(0.9, "trace")
    spans = []
    if res.trace_id:
        from engine.rag.tracing import trace_spans

        spans = [_plain(asdict(s)) for s in trace_spans(res.trace_id)]
    progress(1.0, "done")
    return {
        "question": QUESTION,
        "model": resolve_endpoint(role="instruct").model,
        "settings": asdict(settings),
        "no_rag": plain,
        "rag": res.to_json(),
        "passages": [passage_row(p) for p in res.passages],
        "retrieved": [passage_row(p) for p in res.retrieved],
        "messages": res.messages,
        "spans": spans,
    }


def _plain(value):
    """A span's attributes as plain JSON (MLflow may hand back objects; they are shown as text)."""
    import json

    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def stores_data(progress: ProgressFn = null_progress) -> dict:
    from engine.rag.vector_db import compare_stores

    cmp = compare_stores(n=STORE_N, n_queries=STORE_QUERIES, progress=progress)
    return {"n": STORE_N, "k": cmp.k, "queries": cmp.queries, "rows": [asdict(r) for r in cmp.rows]}


def cache_data(progress: ProgressFn = null_progress) -> dict:
    from engine.rag.cache import DEFAULT_THRESHOLD, CachePair, load_cache_pairs, score_pairs, threshold_sweep

    progress(0.0, "cache pairs")
    pairs = load_cache_pairs()
    rows = [asdict(m) for m in threshold_sweep(pairs)]
    progress(0.8, "default pair")
    (pair,) = score_pairs([CachePair(PAIR[0], PAIR[1], "different", "roles")])
    progress(1.0, "done")
    return {
        "default_threshold": DEFAULT_THRESHOLD,
        "pairs": len(pairs),
        "pair": {"a": PAIR[0], "b": PAIR[1], "similarity": round(pair.similarity, 4), "guard": asdict(pair.guard)},
        "rows": [{k: v for k, v in r.items() if k != "false_hits"} | {"false_hits": r["false_hits"][:5]} for r in rows],
    }


def rails_data(progress: ProgressFn = null_progress) -> dict:
    from engine.rag.rails import SPLITS, evaluate_rails

    out = {}
    for i, split in enumerate(SPLITS):
        progress(i / len(SPLITS), split)
        out[split] = [
            {**{k: v for k, v in asdict(m).items() if k != "errors"}, "errors": [asdict(e) for e in m.errors]}
            for m in evaluate_rails(split)
        ]
    progress(1.0, "done")
    return out


_MAKERS = {"ch09_answer": answer_data, "ch09_stores": stores_data, "ch09_cache": cache_data, "ch09_rails": rails_data}


def make(section: str, progress: ProgressFn = null_progress) -> dict:
    return _MAKERS[section](progress)
