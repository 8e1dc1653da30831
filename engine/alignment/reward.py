"""Reward models: learn a score from preference pairs, then use it to pick the best of n answers.

The reward model reads (prompt, answer) and outputs one number; training (TRL's RewardTrainer) pushes the
chosen answer's score above the rejected one's: loss = −log σ(r_chosen − r_rejected) (Bradley–Terry).
Here the backbone is the packaged `embed` encoder (all-MiniLM-L6-v2, 22M parameters) with a fresh score head:
small enough to train in seconds on a CPU. (Production reward models start from the SFT model itself.)

Best-of-n (rejection sampling) needs no training of the policy at all: sample n answers, keep the highest score.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from engine.core.assets import asset
from engine.core.errors import UserError
from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.training import training_threads, use_cpu
from engine.training.callbacks import Monitor, RowFn, RunLog, StopFn, quiet_trainer, silence_progress_bars

ASSET = asset("alignment", "preferences.yaml")
FIELDS = ("prompt", "chosen", "rejected")
MAX_PAIRS = 500
MAX_CHARS = 2000


class PreferenceError(UserError):
    """Preference data that cannot be used; the message says what to fix."""

    default_code = "preference.invalid"


FIELDS_TEXT = "{prompt, chosen, rejected}"  # shown in messages as written


def validate_preferences(rows, min_pairs: int = 2) -> list[dict]:
    """Check preference pairs and return them cleaned ({prompt, chosen, rejected} plus any extra fields)."""
    if not isinstance(rows, list):
        raise PreferenceError("preference.not_a_list", fields=FIELDS_TEXT)
    if len(rows) < min_pairs:
        raise PreferenceError("preference.too_few", limit=min_pairs, value=len(rows))
    if len(rows) > MAX_PAIRS:
        raise PreferenceError("preference.too_many", limit=MAX_PAIRS, value=len(rows))
    out = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise PreferenceError("preference.not_an_object", pair=i)
        clean = dict(row)
        for key in FIELDS:
            value = row.get(key)
            if not isinstance(value, str) or not value.strip():
                raise PreferenceError("preference.missing_field", pair=i, key=key)
            if len(value) > MAX_CHARS:
                raise PreferenceError("preference.field_too_long", pair=i, key=key, limit=MAX_CHARS)
            clean[key] = value.strip()
        if clean["chosen"] == clean["rejected"]:
            raise PreferenceError("preference.same_text", pair=i)
        out.append(clean)
    return out


def parse_preferences(text: str, min_pairs: int = 2) -> list[dict]:
    """Pairs from text a learner pasted: a YAML/JSON list, or JSON lines (one object per line). Never executed."""
    if not text or not text.strip():
        raise PreferenceError("preference.empty", fields=FIELDS_TEXT)
    try:
        rows = yaml.safe_load(text)
    except yaml.YAMLError:
        rows = None
    if not isinstance(rows, list):
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise PreferenceError("preference.bad_line", line=n, reason=exc.msg) from exc
    return validate_preferences(rows, min_pairs)


def load_preferences(path: Path | None = None) -> list[dict]:
    """The shipped pairs (assets/alignment/preferences.yaml, written for this app)."""
    return validate_preferences(yaml.safe_load((path or ASSET).read_text(encoding="utf-8")))


def preferences_text(rows: list[dict], first_lang: str | None = None) -> str:
    """Pairs as JSON lines (what the page's editor shows), those in `first_lang` ("ko", "en") first."""
    rows = sorted(rows, key=lambda r: r.get("lang") != first_lang) if first_lang else rows
    return "\n".join(json.dumps({k: r[k] for k in FIELDS}, ensure_ascii=False) for r in rows)


@dataclass(frozen=True)
class RMSettings:
    epochs: int = 3
    batch: int = 8  # pairs per step
    lr: float = 3e-4
    max_length: int = 96  # tokens of prompt + answer (MiniLM splits Hangul into jamo: Korean needs more)
    frozen_layers: int = 3  # lower encoder layers kept frozen (MiniLM has 6)
    test_fraction: float = 0.2
    seed: int = 0

    def validate(self) -> None:
        if not 1 <= self.epochs <= 50:
            raise InputError("preference.bad_epochs", value=self.epochs)
        if not 1 <= self.batch <= 128:
            raise InputError("preference.bad_batch", value=self.batch)
        if not (0 < self.lr <= 1e3 and math.isfinite(self.lr)):
            raise InputError("preference.bad_lr", value=self.lr)
        if not 0 <= self.test_fraction <= 0.5:
            raise InputError("preference.bad_test_fraction", value=self.test_fraction)


def load_backbone(role: str = "embed"):
    """The encoder with a fresh 1-output head (AutoModelForSequenceClassification, num_labels=1)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from engine.models.registry import resolve

    resolved = resolve(role)
    source = resolved.spec.hub_id if resolved.source == "online" else str(resolved.path)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights are newly initialised" is exactly the point here
    try:
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    finally:
        hf_logging.set_verbosity(verbosity)
    return model, AutoTokenizer.from_pretrained(source)


def _encode(tokenizer, prompt: str, answer: str, max_length: int) -> list[int]:
    return tokenizer(prompt, answer, truncation=True, max_length=max_length)["input_ids"]


@torch.no_grad()
def score_answers(model, tokenizer, prompt: str, answers: list[str], max_length: int = 96) -> list[float]:
    """The reward model's score for each answer to `prompt`."""
    if not answers:
        return []
    model.eval()
    enc = tokenizer(
        [prompt] * len(answers),
        answers,
        truncation=True,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
        return_token_type_ids=False,
    )
    enc = {k: v.to(model.device) for k, v in enc.items()}
    return model(**enc).logits.squeeze(-1).float().tolist()


@dataclass
class RMResult:
    model: object
    tokenizer: object
    log: RunLog
    train_accuracy: float  # share of pairs whose chosen answer scores higher
    test_accuracy: float | None  # the same on pairs held out from training (None if none held out)
    test_pairs: list[dict]


def pair_accuracy(model, tokenizer, pairs: list[dict], max_length: int = 96) -> float:
    if not pairs:
        return math.nan
    hits = 0
    for p in pairs:
        chosen, rejected = score_answers(model, tokenizer, p["prompt"], [p["chosen"], p["rejected"]], max_length)
        hits += chosen > rejected
    return hits / len(pairs)


def train_reward_model(
    pairs: list[dict] | None = None,
    settings: RMSettings = RMSettings(),
    progress: ProgressFn = null_progress,
    should_stop: StopFn | None = None,
    on_row: RowFn | None = None,
    role: str = "embed",
    backbone: tuple | None = None,
) -> RMResult:
    """TRL RewardTrainer on preference pairs; accuracy on held-out pairs tells whether it generalises.

    `backbone` = (a num_labels=1 sequence-classification model, its tokenizer) replaces the packaged encoder.
    """
    import random

    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    settings.validate()
    silence_progress_bars()
    pairs = validate_preferences(pairs if pairs is not None else load_preferences())
    # The same pairs give the same split and training order however the text lists them (the page shows the
    # learner's language first): sort by content, then shuffle with the seed.
    shuffled = sorted(pairs, key=lambda p: (p["prompt"], p["chosen"], p["rejected"]))
    random.Random(settings.seed).shuffle(shuffled)
    n_test = round(len(shuffled) * settings.test_fraction)
    test, train = shuffled[:n_test], shuffled[n_test:]
    model, tokenizer = backbone if backbone is not None else load_backbone(role)
    # Train the top layers and the new head only: the embeddings (12M of the 22M weights) and the lower half of
    # the encoder stay frozen, so a CPU step costs about half as much and 24 pairs cannot wreck the encoder.
    frozen = [model.base_model.embeddings, *model.base_model.encoder.layer[: settings.frozen_layers]]
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
    data = Dataset.from_list(
        [
            {
                "chosen_ids": _encode(tokenizer, p["prompt"], p["chosen"], settings.max_length),
                "rejected_ids": _encode(tokenizer, p["prompt"], p["rejected"], settings.max_length),
            }
            for p in train
        ]
    )
    total = math.ceil(len(train) / settings.batch) * settings.epochs
    monitor = Monitor(total, progress, should_stop, on_row, label="reward model")
    with training_threads(), tempfile.TemporaryDirectory(prefix="llmlab-rm-") as out:
        args = RewardConfig(
            output_dir=out,
            num_train_epochs=settings.epochs,
            per_device_train_batch_size=settings.batch,
            learning_rate=settings.lr,
            lr_scheduler_type="linear",
            logging_steps=1,
            logging_nan_inf_filter=False,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            bf16=False,
            fp16=False,
            gradient_checkpointing=False,
            seed=settings.seed,
            use_cpu=use_cpu(),
            dataloader_num_workers=0,
            max_length=None,
        )
        trainer = RewardTrainer(
            model=model,
            args=args,
            train_dataset=data,
            processing_class=tokenizer,
            callbacks=[monitor.trainer_callback()],
        )
        quiet_trainer(trainer)
        trainer.train()
        model = trainer.model
        train_acc = pair_accuracy(model, tokenizer, train, settings.max_length)
        test_acc = pair_accuracy(model, tokenizer, test, settings.max_length) if test else None
    return RMResult(model, tokenizer, monitor.finish(), train_acc, test_acc, test)


@torch.no_grad()
def sample_answers(
    lm_model, lm_tokenizer, prompt: str, n: int, max_new_tokens: int = 40, temperature: float = 0.9, seed: int = 0
) -> list[str]:
    """n sampled answers from a chat model to one user prompt (one batched generate call)."""
    if not 1 <= n <= 16:
        raise InputError("preference.bad_n", value=n)
    if not 1 <= max_new_tokens <= 256:
        raise InputError("preference.bad_max_new_tokens", value=max_new_tokens)
    ids = lm_tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    ids = {k: v.repeat(n, 1).to(lm_model.device) for k, v in ids.items()}
    torch.manual_seed(seed)
    out = lm_model.generate(
        **ids,
        do_sample=True,
        temperature=max(temperature, 1e-3),
        top_p=0.95,
        max_new_tokens=max_new_tokens,
        pad_token_id=lm_tokenizer.pad_token_id or lm_tokenizer.eos_token_id,
    )
    from engine.alignment.sft import whole_characters

    start = ids["input_ids"].shape[1]
    return [whole_characters(lm_tokenizer.decode(row[start:], skip_special_tokens=True).strip()) for row in out]


def best_of_n(
    lm_model,
    lm_tokenizer,
    rm_model,
    rm_tokenizer,
    prompt: str,
    n: int = 4,
    max_new_tokens: int = 40,
    temperature: float = 0.9,
    seed: int = 0,
) -> list[dict]:
    """Rejection sampling: n answers, each scored by the reward model, best first."""
    from engine.core.textinput import clean_text

    prompt = clean_text(prompt, max_chars=1000).text
    with training_threads():
        answers = sample_answers(lm_model, lm_tokenizer, prompt, n, max_new_tokens, temperature, seed)
        scores = score_answers(rm_model, rm_tokenizer, prompt, answers)
    order = sorted(range(n), key=lambda i: -scores[i])
    return [{"rank": r + 1, "reward": scores[i], "answer": answers[i], "best": r == 0} for r, i in enumerate(order)]
