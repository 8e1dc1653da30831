"""A tiny sentence-transformers MNR fine-tune step runs on CPU and reports progress."""

from __future__ import annotations

from engine.core.corpus import load_constitution
from engine.models.loading import load_sentence_embedder
from engine.retrieval.embedding_training import finetune_mnr
from engine.retrieval.evaluation import Question


def test_tiny_mnr_finetune_step():
    docs = load_constitution()[:4]
    pairs = [
        ("대통령 임기", 0),
        ("국민 주권", 0),
        ("국민 요건", 1),
        ("영토", 2),
        ("통일", 3),
        ("평화 통일", 3),
        ("한반도", 2),
        ("재외국민", 1),
    ]
    questions = [Question("대한민국의 영토는?", docs[2].doc_id)]
    seen = []
    model = load_sentence_embedder("embed")
    res = finetune_mnr(
        model, docs, pairs, questions, epochs=1, batch_size=4, max_seq_length=32, progress=lambda f, m: seen.append(f)
    )
    assert res.steps == 2 and res.pairs == 8
    assert set(res.before) == set(res.after) == {"hit@1", "hit@5", "hit@10", "mrr"}
    assert seen and seen[-1] == 1.0
