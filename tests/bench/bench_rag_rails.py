"""Chapter 9 validation rails: precision and recall per rail on assets/rag/rails_labelled.yaml (both halves; the
`test` half is the held-out one), the off-topic rail's false flags on the real search questions, and the time of
one input check and one grounded check.

    .venv/bin/python -m tests.bench.run_bench rag_rails
"""

from __future__ import annotations

import time

from tests.bench.rows import bench_row

BENCH = "rag_rails"


def run() -> list[dict]:
    from engine.core.assets import asset
    from engine.rag.documents import constitution_passages
    from engine.rag.rails import OFF_TOPIC_THRESHOLD, check_input, check_output, evaluate_rails, question_topic_scores
    from engine.retrieval.evaluation import load_questions

    rows = []
    for split in ("test", "tune"):
        for m in evaluate_rails(split):
            for metric in ("precision", "recall"):
                rows.append(
                    bench_row(
                        BENCH,
                        f"{m.rail} {metric} ({split}, {m.n_pos}+{m.n_neg})",
                        getattr(m, metric),
                        "fraction",
                        errors=len(m.errors),
                    )
                )
    for name in ("constitution_dev_questions.yaml", "constitution_test_questions.yaml"):
        questions = load_questions(asset(name))
        flagged = sum(question_topic_scores(q.question)[0] < OFF_TOPIC_THRESHOLD for q in questions)
        rows.append(
            bench_row(BENCH, f"off_topic flags on {name} (n={len(questions)})", flagged / len(questions), "fraction")
        )
    question = "제 번호는 010-1234-5678인데, 대통령의 임기는 몇 년인가요?"
    start = time.perf_counter()
    for _ in range(20):
        check_input(question, question_topic_scores(question))
    rows.append(bench_row(BENCH, "check_input incl. topic scores", (time.perf_counter() - start) / 20 * 1000, "ms"))
    p70 = [p for p in constitution_passages() if p.doc_id == "제70조"]
    start = time.perf_counter()
    for _ in range(20):
        check_output("대통령의 임기는 5년이며, 중임할 수 없습니다. [제70조]", p70)
    rows.append(bench_row(BENCH, "check_output (grounded, 1 passage)", (time.perf_counter() - start) / 20 * 1000, "ms"))
    return rows
