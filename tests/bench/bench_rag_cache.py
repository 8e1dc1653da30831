"""LLM cache benchmark (engine/rag/cache.py): exact/semantic/miss lookup latency on a realistic cache, and the
false-hit rate on the labelled pairs at the default threshold, with and without the role/negation guard.

The cache is a fresh SQLite file holding the 797 search-chapter questions (dev/test/train) plus the `a` side of
every labelled pair, all in one scope, so a semantic lookup scores ~860 cached questions.

.venv/bin/python -m tests.bench.run_bench rag_cache
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from tests.bench.rows import bench_row


def run() -> list[dict]:
    from engine.rag.cache import (
        DEFAULT_THRESHOLD,
        LLMCache,
        cache_scope,
        default_embedder,
        evaluate_cache,
        load_cache_pairs,
        question_frame,
    )
    from engine.retrieval.evaluation import DEV_QUESTIONS, TEST_QUESTIONS, TRAIN_QUESTIONS, load_questions

    pairs = load_cache_pairs()
    default_embedder()  # load the encoder once: the goals are per lookup, models loaded
    fillers = [q.question for p in (DEV_QUESTIONS, TEST_QUESTIONS, TRAIN_QUESTIONS) for q in load_questions(p)]
    scope = cache_scope("instruct", "bench template {question} {context}", {"retriever": "best", "top_k": 5})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = LLMCache(Path(tmp) / "llm_cache.sqlite")
        start = time.perf_counter()
        for i, q in enumerate(fillers):
            cache.store(q, scope, f"답 {i}", ["제1조"])
        store_ms = (time.perf_counter() - start) / len(fillers) * 1000
        paraphrases = [p for p in pairs if p.label == "paraphrase"]
        for p in paraphrases:
            cache.store(p.a, scope, f"답: {p.a}", ["제70조"])
        entries = cache.stats().entries

        def timed(question: str, kind: str) -> float | None:
            question_frame.cache_clear()  # measure Kiwi's analysis of the query too, not a memoized frame
            v = cache.inspect(question, scope)
            return v.lookup_s * 1000 if v.kind == kind else None

        for p in paraphrases[:3]:  # warm Kiwi and the scope's matrix
            cache.inspect(p.b, scope)
        exact = [t for _ in range(5) for p in paraphrases if (t := timed(p.a, "exact")) is not None]
        semantic = [t for _ in range(5) for p in paraphrases if (t := timed(p.b, "semantic")) is not None]
        misses = [t for _ in range(5) for q in _unseen() if (t := timed(q, "miss")) is not None]
        cache.close()

    def median(xs: list[float]) -> float:
        return statistics.median(xs) if xs else float("nan")

    n = f"{entries} cached questions"
    rows.append(
        bench_row(
            "rag_cache",
            f"exact hit latency median ({n})",
            median(exact),
            "ms",
            "<= 5",
            median(exact) <= 5,
            n=len(exact),
        )
    )
    rows.append(
        bench_row(
            "rag_cache",
            f"semantic hit latency median, incl. query embedding + guard ({n})",
            median(semantic),
            "ms",
            "<= 30",
            median(semantic) <= 30,
            n=len(semantic),
        )
    )
    rows.append(bench_row("rag_cache", f"miss latency median ({n})", median(misses), "ms", n=len(misses)))
    rows.append(bench_row("rag_cache", "store latency mean (embedding + Kiwi frame + commit)", store_ms, "ms"))
    for guard in (True, False):
        m = evaluate_cache(pairs, DEFAULT_THRESHOLD, guard=guard)
        tag = "with guard" if guard else "without guard"
        rows.append(
            bench_row(
                "rag_cache",
                f"false-hit rate on {m.n_different} changed-meaning pairs @ {DEFAULT_THRESHOLD} ({tag})",
                m.false_hit_rate,
                "fraction",
                "<= 0.10" if guard else None,
                m.false_hit_rate <= 0.10 if guard else None,
            )
        )
        rows.append(
            bench_row(
                "rag_cache",
                f"paraphrase hit rate on {m.n_paraphrase} pairs @ {DEFAULT_THRESHOLD} ({tag})",
                m.paraphrase_hit_rate,
                "fraction",
            )
        )
    return rows


def _unseen() -> list[str]:
    """Questions about things the Constitution does not cover: no cached question is near them."""
    return [
        "오늘 서울 날씨는 어떤가요?",
        "파이썬에서 리스트를 정렬하는 방법은?",
        "김치찌개는 어떻게 끓이나요?",
        "축구 경기는 몇 분 동안 하나요?",
        "지구에서 달까지 거리는 얼마인가요?",
        "커피를 하루에 몇 잔 마셔도 되나요?",
    ]
