"""Chapter 3, part 2: one classifier trained two ways — 🤗 `Trainer` and a plain PyTorch loop — then `pipeline`.

Both start from the same initial weights and see the same batches in the same order, with the same optimizer
(AdamW), schedule (linear decay), gradient clipping (norm 1.0) and seed, so their loss curves should coincide;
`compare_loops` measures how closely. The plain loop spells out every default Trainer applies for you.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.training import train_device, training_threads, use_cpu
from engine.training.callbacks import Monitor, RowFn, RunLog, StopFn, quiet_trainer, silence_progress_bars
from engine.training.hf_basics import build_dataset, train_tokenizer


@dataclass
class ClassifierConfig:
    hidden: int = 64  # width of the tiny BERT (bert-base has 768)
    layers: int = 2  # transformer blocks (bert-base has 12)
    heads: int = 2  # attention heads per block
    max_length: int = 64  # tokens per paragraph; longer ones are cut (99% fit)
    epochs: int = 12
    batch_size: int = 16
    lr: float = 2e-3  # a model trained from scratch this small takes a larger rate than fine-tuning (5e-5)
    dropout: float = 0.1
    seed: int = 0
    min_per_class: int = 15  # chapters with fewer paragraphs are left out
    vocab_size: int = 2000

    def validate(self) -> None:
        checks = {
            "hidden": 8 <= self.hidden <= 512 and self.hidden % self.heads == 0,
            "layers": 1 <= self.layers <= 8,
            "heads": 1 <= self.heads <= 16,
            "max_length": 8 <= self.max_length <= 512,
            "epochs": 1 <= self.epochs <= 100,
            "batch_size": 1 <= self.batch_size <= 256,
            "lr": 0 < self.lr <= 1e4 and math.isfinite(self.lr),
            "dropout": 0.0 <= self.dropout < 1.0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise InputError(
                f"invalid classifier settings: {', '.join(f'{k}={getattr(self, k)}' for k in bad)}"
                " (hidden must be a multiple of heads)"
            )


@dataclass
class Prepared:
    """The tokenized dataset, its tokenizer and labels: shared by both training loops."""

    dataset: object  # datasets.DatasetDict with input_ids/attention_mask/label (train, test)
    raw: object  # the same, untokenized (text, label, article)
    tokenizer: object
    labels: list[str]
    collator: object


def prepare(cfg: ClassifierConfig) -> Prepared:
    from transformers import DataCollatorWithPadding

    cfg.validate()
    silence_progress_bars()
    raw = build_dataset(min_per_class=cfg.min_per_class, seed=cfg.seed)
    tokenizer = train_tokenizer(list(raw["train"]["text"]), cfg.vocab_size)  # vocabulary from training text only

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=cfg.max_length)

    dataset = raw.map(tokenize, batched=True, remove_columns=["text", "article"])
    labels = raw["train"].features["label"].names
    return Prepared(dataset, raw, tokenizer, labels, DataCollatorWithPadding(tokenizer))


def new_model(cfg: ClassifierConfig, prep: Prepared):
    """A tiny BERT for sequence classification, randomly initialised with `cfg.seed`."""
    from transformers import BertConfig, BertForSequenceClassification, set_seed

    set_seed(cfg.seed)
    config = BertConfig(
        vocab_size=len(prep.tokenizer),
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.hidden * 2,
        max_position_embeddings=cfg.max_length,
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
        num_labels=len(prep.labels),
        id2label=dict(enumerate(prep.labels)),
        label2id={name: i for i, name in enumerate(prep.labels)},
        pad_token_id=prep.tokenizer.pad_token_id,
    )
    return BertForSequenceClassification(config)


@torch.no_grad()
def evaluate(model, dataset, collator, batch_size: int = 64) -> dict:
    """Accuracy and mean loss on a tokenized split."""
    model.eval()
    device = next(model.parameters()).device
    correct, total, loss_sum = 0, 0, 0.0
    for batch in torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collator):
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(**batch)
        loss_sum += float(out.loss) * len(batch["labels"])
        correct += int((out.logits.argmax(-1) == batch["labels"]).sum())
        total += len(batch["labels"])
    return {"accuracy": correct / max(1, total), "eval_loss": loss_sum / max(1, total)}


def train_with_trainer(prep: Prepared, cfg: ClassifierConfig, monitor: Monitor, model=None):
    """🤗 Trainer: the arguments below are the whole training loop."""
    import numpy as np
    from transformers import Trainer, TrainingArguments

    model = model if model is not None else new_model(cfg, prep)

    def accuracy(pred):
        return {"accuracy": float((np.argmax(pred.predictions, -1) == pred.label_ids).mean())}

    with tempfile.TemporaryDirectory(prefix="llmlab-trainer-") as out:
        args = TrainingArguments(
            output_dir=out,
            num_train_epochs=cfg.epochs,
            per_device_train_batch_size=cfg.batch_size,
            per_device_eval_batch_size=64,
            learning_rate=cfg.lr,
            optim="adamw_torch",
            weight_decay=0.0,
            lr_scheduler_type="linear",
            warmup_steps=0,
            max_grad_norm=1.0,
            seed=cfg.seed,
            eval_strategy="epoch",
            logging_steps=1,
            logging_nan_inf_filter=False,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            dataloader_num_workers=0,
            use_cpu=use_cpu(),
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=prep.dataset["train"],
            eval_dataset=prep.dataset["test"],
            data_collator=prep.collator,
            compute_metrics=accuracy,
            callbacks=[monitor.trainer_callback()],
        )
        quiet_trainer(trainer)
        trainer.train()
    return trainer.model


def train_with_loop(prep: Prepared, cfg: ClassifierConfig, monitor: Monitor, model=None):
    """The same training as `train_with_trainer`, written out: every line is something Trainer does for you."""
    from transformers import set_seed

    model = model if model is not None else new_model(cfg, prep)
    device = train_device()
    model.to(device)
    train = prep.dataset["train"]
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    # Trainer's defaults: AdamW (betas 0.9/0.999, eps 1e-8, no weight decay), linear decay to 0, clip norm 1.0
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, (total - s) / total))
    set_seed(cfg.seed)  # Trainer seeds everything once before training (dropout draws from this)
    step = 0
    for epoch in range(cfg.epochs):
        # Trainer (through accelerate) reshuffles every epoch with seed + epoch
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed + epoch)).tolist()
        loader = torch.utils.data.DataLoader(train, batch_size=cfg.batch_size, sampler=order, collate_fn=prep.collator)
        for i, batch in enumerate(loader):
            t0 = time.perf_counter()
            model.train()
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = model(**batch).loss  # cross-entropy, computed by the model because we passed labels
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            lr = schedule.get_last_lr()[0]
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            row = {
                "step": step,
                "epoch": epoch + (i + 1) / len(loader),
                "loss": loss.item(),
                "grad_norm": float(grad_norm),
                "learning_rate": lr,
                "seconds": time.perf_counter() - t0,
            }
            if not monitor.record(row):
                return model
        metrics = evaluate(model, prep.dataset["test"], prep.collator)
        monitor.record({"step": step, "epoch": float(epoch + 1), **metrics}, counts_as_step=False)
    return model


@dataclass
class LoopComparison:
    trainer: RunLog
    loop: RunLog
    trainer_model: object
    loop_model: object
    prep: Prepared
    cfg: ClassifierConfig
    max_loss_gap: float  # largest |loss_trainer - loss_loop| over the steps both finished
    seconds: dict[str, float] = field(default_factory=dict)

    def final_accuracy(self, which: str) -> float | None:
        return getattr(self, which).last("accuracy")


def compare_loops(
    cfg: ClassifierConfig | None = None,
    progress: ProgressFn = null_progress,
    should_stop: StopFn | None = None,
    on_row: RowFn | None = None,
) -> LoopComparison:
    """Train the same tiny BERT with Trainer, then with the plain loop, from identical initial weights."""
    cfg = cfg or ClassifierConfig()
    prep = prepare(cfg)
    init = new_model(cfg, prep)
    total = math.ceil(len(prep.dataset["train"]) / cfg.batch_size) * cfg.epochs

    def half(offset: float) -> ProgressFn:
        return lambda f, msg: progress(offset + f / 2, msg)

    seconds = {}
    mon_t = Monitor(total, half(0.0), should_stop, on_row, label="Trainer")
    mon_l = Monitor(total, half(0.5), should_stop, on_row, label="PyTorch loop")
    with training_threads():
        start = time.perf_counter()
        m_trainer = train_with_trainer(prep, cfg, mon_t, model=copy.deepcopy(init))
        seconds["Trainer"] = time.perf_counter() - start
        log_t = mon_t.finish()
        if log_t.status == "cancelled":
            mon_l.stop("cancelled", "not started: the run was cancelled")
            m_loop = init
        else:
            start = time.perf_counter()
            m_loop = train_with_loop(prep, cfg, mon_l, model=copy.deepcopy(init))
            seconds["PyTorch loop"] = time.perf_counter() - start
    log_l = mon_l.finish()
    gaps = [
        abs(a["loss"] - b["loss"])
        for a, b in zip(log_t.train_rows(), log_l.train_rows(), strict=False)
        if math.isfinite(a["loss"]) and math.isfinite(b["loss"])
    ]
    return LoopComparison(log_t, log_l, m_trainer, m_loop, prep, cfg, max(gaps, default=math.nan), seconds)


def classify(model, tokenizer, texts: list[str], top_k: int = 3) -> list[list[dict]]:
    """`pipeline("text-classification")` on new text: label and score for the top classes of each text."""
    from transformers import pipeline

    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise InputError("training.no_text")
    clf = pipeline(
        "text-classification",
        model=model,
        tokenizer=tokenizer,
        device=next(model.parameters()).device,
        top_k=top_k,
        truncation=True,
        max_length=model.config.max_position_embeddings,
    )
    out = clf(texts)
    return [[{"label": r["label"], "score": float(r["score"])} for r in rows] for rows in out]


def save_and_reload(model, tokenizer, directory: str | Path):
    """save_pretrained -> from_pretrained; returns the reloaded (model, tokenizer)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    directory = Path(directory)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return AutoModelForSequenceClassification.from_pretrained(directory), AutoTokenizer.from_pretrained(directory)


def roundtrip_check(model, tokenizer, texts: list[str]) -> dict:
    """Save to a temporary directory, reload, and compare the predictions on `texts` (they must be identical)."""
    with tempfile.TemporaryDirectory(prefix="llmlab-save-") as d:
        reloaded, reloaded_tok = save_and_reload(model, tokenizer, d)
        files = sorted(p.name for p in Path(d).iterdir())
        size = sum(p.stat().st_size for p in Path(d).iterdir())
    device = next(model.parameters()).device
    reloaded.to(device).eval()
    model.eval()
    with torch.no_grad():
        a = model(**{k: v.to(device) for k, v in tokenizer(texts, padding=True, return_tensors="pt").items()}).logits
        b = reloaded(**{k: v.to(device) for k, v in reloaded_tok(texts, padding=True, return_tensors="pt").items()})
    diff = float((a - b.logits).abs().max())
    return {
        "files": files,
        "bytes": size,
        "max_abs_diff": diff,
        "same_labels": bool((a.argmax(-1) == b.logits.argmax(-1)).all()),
    }
