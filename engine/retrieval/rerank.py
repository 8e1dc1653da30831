"""A cross-encoder reranker (sentence-transformers CrossEncoder), fine-tuned live on synthetic pairs.

A bi-encoder encodes query and document separately (fast: documents are encoded once); a cross-encoder reads the
pair together (slower: one forward pass per candidate, so it only rescores the top-k). Here it starts from the
packaged MiniLM's weights with a fresh one-logit head, trained with BinaryCrossEntropyLoss on synthetic
(query, article) positives and hard negatives taken from the hybrid ranking. Its score is mixed with the hybrid
score, λ chosen on the dev questions (λ = 0 keeps the hybrid order, so on dev it cannot lose).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.core.config import get_settings
from engine.core.corpus import Doc
from engine.core.progress import ProgressFn, null_progress
from engine.retrieval.hybrid import minmax
from engine.retrieval.korean_dense import corpus_hash

MAX_LENGTH = 128  # tokens per (query, article) pair; MiniLM's WordPiece spends ~3 tokens per Hangul syllable


@dataclass
class Reranker:
    model: object  # sentence_transformers.CrossEncoder
    mix: float = 1.0  # weight of the cross-encoder score against the first-stage score
    info: dict = field(default_factory=dict)

    def cross_scores(self, query: str, docs: list[Doc]) -> np.ndarray:
        pairs = [(query, d.text) for d in docs]
        return np.asarray(self.model.predict(pairs, batch_size=32, show_progress_bar=False), dtype=np.float64)

    def rerank(self, query: str, docs: list[Doc], first_stage: list[float]) -> np.ndarray:
        ce = self.cross_scores(query, docs)
        return self.mix * minmax(ce) + (1 - self.mix) * minmax(np.asarray(first_stage))


def reranker_dir(docs: list[Doc]) -> Path:
    return get_settings().cache_dir / "retrieval" / f"reranker-{corpus_hash(docs)}"


def load_reranker(docs: list[Doc]) -> Reranker | None:
    path = reranker_dir(docs)
    if not (path / "reranker.json").exists():
        return None
    from sentence_transformers import CrossEncoder

    meta = json.loads((path / "reranker.json").read_text())
    model = CrossEncoder(str(path / "model"), device="cpu", max_length=MAX_LENGTH)
    return Reranker(model, meta["mix"], meta)


def training_pairs(index, n_queries: int, negatives: int, seed: int) -> list[tuple[str, str, float]]:
    """(query, article text, label) from synthetic queries; negatives are the hybrid's wrong top hits."""
    from engine.retrieval.kiwi_vectors import content_morphs
    from engine.retrieval.korean_dense import PairMaker, TrainConfig, doc_text, render_query

    rng = np.random.default_rng(seed)
    texts = [doc_text(d) for d in index.docs]
    maker = PairMaker([content_morphs(t) for t in texts], texts, index.korean.vectors, TrainConfig())
    rows = []
    for doc in rng.choice(len(index.docs), size=n_queries, replace=True):
        query = render_query(maker.sample(rng, int(doc)), rng)
        rows.append((query, texts[doc], 1.0))
        order = np.argsort(-index.hybrid_scores(query), kind="stable")
        wrong = [int(i) for i in order[: negatives + 1] if int(i) != int(doc)][:negatives]
        rows.extend((query, texts[i], 0.0) for i in wrong)
    return rows


def train_reranker(
    index,
    n_queries: int = 96,
    negatives: int = 3,
    epochs: int = 1,
    batch_size: int = 16,
    lr: float = 5e-5,
    seed: int = 0,
    progress: ProgressFn = null_progress,
    save: bool = True,
) -> Reranker:
    """Fine-tune a CrossEncoder from MiniLM on synthetic pairs (≈1–3 min on 2 cores), choose λ on dev, cache it."""
    import torch
    from datasets import Dataset
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from transformers import TrainerCallback

    from engine.models.registry import resolve

    start = time.perf_counter()
    torch.manual_seed(seed)
    progress(0.0, "synthetic pairs with hard negatives")
    rows = training_pairs(index, n_queries, negatives, seed)
    data = Dataset.from_dict(
        {"query": [r[0] for r in rows], "doc": [r[1] for r in rows], "label": [r[2] for r in rows]}
    )
    model = CrossEncoder(str(resolve("embed").path), num_labels=1, max_length=MAX_LENGTH, device="cpu")
    total_steps = max(1, epochs * (len(rows) + batch_size - 1) // batch_size)

    class Report(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            progress(
                0.1 + 0.8 * state.global_step / total_steps, f"cross-encoder step {state.global_step}/{total_steps}"
            )

    out = Path(tempfile.mkdtemp(prefix="llmlab-ce-"))
    try:
        args = CrossEncoderTrainingArguments(
            output_dir=str(out),
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            learning_rate=lr,
            warmup_ratio=0.1,
            logging_steps=10,
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
            use_cpu=True,
            seed=seed,
            dataloader_num_workers=0,
        )
        trainer = CrossEncoderTrainer(
            model=model, args=args, train_dataset=data, loss=BinaryCrossEntropyLoss(model), callbacks=[Report()]
        )
        trainer.train()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    reranker = Reranker(model, 1.0)
    progress(0.92, "choosing λ on the dev questions")
    reranker.mix, table = choose_mix(index, reranker)
    reranker.info = {
        "mix": reranker.mix,
        "mix_table": table,
        "pairs": len(rows),
        "steps": total_steps,
        "losses": losses,
        "seconds": round(time.perf_counter() - start, 1),
        "config": {"n_queries": n_queries, "negatives": negatives, "epochs": epochs, "lr": lr},
    }
    if save:
        _save(index.docs, reranker)
    progress(1.0, f"reranker ready ({reranker.info['seconds']:.0f} s)")
    return reranker


def choose_mix(index, reranker: Reranker, depth: int = 20) -> tuple[float, list[dict]]:
    from engine.retrieval.evaluation import load_questions

    dev_path = index.spec.dev_questions  # the corpus's own dev questions (the Constitution's); none: the default
    if dev_path is None or not dev_path.exists():
        return 0.5, []
    dev = load_questions(dev_path)
    cached = []
    for q in dev:
        scores = index.hybrid_scores(q.question)
        cand = [int(i) for i in np.argsort(-scores, kind="stable")[:depth]]
        ce = reranker.cross_scores(q.question, [index.docs[i] for i in cand])
        cached.append((cand, minmax(ce), minmax(scores[cand]), index.doc_ids.index(q.doc_id)))
    table = []
    for lam in np.linspace(0, 1, 11):
        ranks = []
        for cand, ce, first, gold in cached:
            mixed = lam * ce + (1 - lam) * first
            order = [cand[i] for i in np.argsort(-mixed, kind="stable")]
            ranks.append(order.index(gold) + 1 if gold in order else None)
        n = len(ranks)
        table.append(
            {
                "mix": round(float(lam), 2),
                "hit@1": sum(r == 1 for r in ranks) / n,
                "hit@5": sum(r is not None and r <= 5 for r in ranks) / n,
                "mrr": sum(1 / r for r in ranks if r) / n,
            }
        )
    best = max(table, key=lambda r: (round(r["mrr"], 9), r["hit@1"], -r["mix"]))
    return best["mix"], table


def _save(docs: list[Doc], reranker: Reranker) -> None:
    target = reranker_dir(docs)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    reranker.model.save_pretrained(str(tmp / "model"))
    (tmp / "reranker.json").write_text(json.dumps(reranker.info, ensure_ascii=False))
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)


def reranker_key(docs: list[Doc]) -> str:
    return hashlib.sha256(str(reranker_dir(docs)).encode()).hexdigest()[:8]


def evaluate_pipelines(index, cross_encoder: Reranker | None, questions, depth: int = 20) -> list[dict]:
    """hybrid, hybrid → MiniLM cross-encoder, hybrid → LM late interaction: metrics and time per query.

    The cross-encoder is the book's lesson (trained live); the late-interaction reranker is what the index uses
    for `search --method hybrid`. Either is skipped when it does not exist."""
    from engine.retrieval.evaluation import metrics, rank_of

    def ce_ranked(q: str) -> list[str]:
        scores = index.hybrid_scores(q)
        order = [int(i) for i in np.argsort(-scores, kind="stable")]
        cand, rest = order[:depth], order[depth:]
        mixed = cross_encoder.rerank(q, [index.docs[i] for i in cand], [float(scores[i]) for i in cand])
        return [index.docs[i].doc_id for i in [cand[j] for j in np.argsort(-mixed, kind="stable")] + rest]

    runs = [("hybrid", lambda q: [h.doc_id for h in index.search(q, "hybrid", 10).hits])]
    if cross_encoder is not None:
        runs.append(("hybrid → cross-encoder (MiniLM)", ce_ranked))
    if index.reranker is not None:
        runs.append(
            ("hybrid → late interaction (Gemma)", lambda q: [h.doc_id for h in index.search(q, "rerank", 10).hits])
        )
    rows = []
    for name, ranked in runs:
        if questions:
            ranked(questions[0].question)  # warm-up: model and Kiwi loads are not per-query time
        start = time.perf_counter()
        ranks = [rank_of(ranked(q.question), q.doc_id) for q in questions]
        ms = 1000 * (time.perf_counter() - start) / max(1, len(questions))
        rows.append({"method": name, **{k: round(v, 3) for k, v in metrics(ranks).items()}, "ms": round(ms, 1)})
    return rows
