"""Chapter 11: contrastive fine-tuning of an embedding model with sentence-transformers, live on CPU.

MultipleNegativesRankingLoss (MNR): for a batch of (query_i, doc_i) pairs, score every query against every doc
in the batch and apply cross-entropy with the true doc as the label — the other docs are free negatives:
    loss = −(1/B) Σ_i log( exp(s·cos(q_i, d_i)) / Σ_j exp(s·cos(q_i, d_j)) ),  s = 20

The pairs are synthetic (keyword queries sampled from an article, some words swapped for Kiwi neighbours, in
generic question frames): no evaluation question is used for training. Before/after hit rates are measured on the
dev questions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from engine.core.corpus import Doc
from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.retrieval.evaluation import Question, metrics, rank_of


@dataclass
class FinetuneResult:
    before: dict[str, float]
    after: dict[str, float]
    losses: list[dict] = field(default_factory=list)
    steps: int = 0
    pairs: int = 0
    seconds: float = 0.0
    examples: list[tuple[str, str]] = field(default_factory=list)


def hit_rates(encode, docs: list[Doc], questions: list[Question]) -> dict[str, float]:
    d = encode([x.text for x in docs])
    q = encode([x.question for x in questions])
    ids = [x.doc_id for x in docs]
    ranks = [
        rank_of([ids[i] for i in np.argsort(-(d @ row), kind="stable")], x.doc_id)
        for row, x in zip(q, questions, strict=True)
    ]
    return {k: round(v, 4) for k, v in metrics(ranks).items()}


def finetune_mnr(
    model,
    docs: list[Doc],
    pairs: list[tuple[str, int]],
    questions: list[Question],
    epochs: int = 1,
    batch_size: int = 16,
    lr: float = 1e-4,
    max_seq_length: int = 128,
    seed: int = 0,
    progress: ProgressFn = null_progress,
    should_stop=None,
) -> FinetuneResult:
    """Fine-tune `model` (a SentenceTransformer, modified in place) with MNR on (query, article) pairs."""
    import shutil
    import tempfile

    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    if not pairs:
        raise InputError("retrieval.no_training_pairs")
    start = time.perf_counter()
    torch.manual_seed(seed)
    model.max_seq_length = max_seq_length

    def encode(texts):
        return model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)

    progress(0.0, "hit rate before training")
    before = hit_rates(encode, docs, questions)
    data = Dataset.from_dict({"anchor": [q for q, _ in pairs], "positive": [docs[d].text for _, d in pairs]})
    total = max(1, epochs * (len(pairs) // batch_size))
    losses: list[dict] = []

    class Report(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            progress(0.1 + 0.8 * state.global_step / total, f"MNR step {state.global_step}/{total}")
            if should_stop is not None and should_stop():
                raise Cancelled("training stopped")

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append({"step": state.global_step, "loss": round(float(logs["loss"]), 4)})

    out = tempfile.mkdtemp(prefix="llmlab-mnr-")
    try:
        args = SentenceTransformerTrainingArguments(
            output_dir=out,
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            learning_rate=lr,
            warmup_ratio=0.1,
            logging_steps=2,
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
            use_cpu=True,
            seed=seed,
            dataloader_drop_last=True,
            batch_sampler="no_duplicates",
        )
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(model), callbacks=[Report()]
        )
        trainer.train()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    progress(0.95, "hit rate after training")
    after = hit_rates(encode, docs, questions)
    progress(1.0, "done")
    return FinetuneResult(
        before,
        after,
        losses,
        total,
        len(pairs),
        time.perf_counter() - start,
        [(q, docs[d].doc_id) for q, d in pairs[:8]],
    )


def lm_mean_pooled(lm, texts: list[str], layer: int = -1, batch_size: int = 8) -> np.ndarray:
    """Turn a causal LM into an embedding model, untrained: mean of the hidden states of `layer` (padding masked)."""
    import torch

    tok, model = lm.tokenizer, lm.model
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tok(texts[i : i + batch_size], return_tensors="pt", padding=True, truncation=True, max_length=128)
        with torch.no_grad():
            states = model(**enc, output_hidden_states=True).hidden_states[layer]  # (B, T, D)
        m = enc["attention_mask"][..., None].float()
        v = (states * m).sum(1) / m.sum(1)
        out.append(torch.nn.functional.normalize(v, dim=-1).numpy())
    return np.concatenate(out)
