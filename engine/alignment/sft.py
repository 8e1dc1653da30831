"""Supervised fine-tuning (SFT): teach a model to answer instructions by imitating written answers.

Two things to see before training anything:
- the **chat template** turns (instruction, answer) into one token sequence with role markers;
- the **loss mask**: only the answer's tokens are trained on (the prompt is given, not something to learn).
`chat_template_view` shows both token by token, computed the way TRL's SFTTrainer does (a test checks they agree).
`train_sft` runs TRL's SFTTrainer with a LoRA adapter on the `chat` model (or any causal LM you pass).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from engine.core.assets import asset
from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.training import training_threads, use_cpu
from engine.training.callbacks import Monitor, RowFn, RunLog, StopFn, quiet_trainer, silence_progress_bars

ASSET = asset("alignment", "instructions.yaml")


def load_instructions(path: Path | None = None) -> list[dict]:
    """The shipped instruction pairs: {lang, instruction, response} (see the asset's header for the source)."""
    rows = yaml.safe_load((path or ASSET).read_text(encoding="utf-8")) or []
    for i, r in enumerate(rows):
        if not str(r.get("instruction", "")).strip() or not str(r.get("response", "")).strip():
            raise InputError("alignment.bad_instruction_pair", pair=i + 1)
    return rows


def as_conversations(rows: list[dict]):
    """A 🤗 dataset in TRL's conversational prompt-completion format (loss on the completion only)."""
    from datasets import Dataset

    return Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": r["instruction"]}],
                "completion": [{"role": "assistant", "content": r["response"]}],
            }
            for r in rows
        ]
    )


def _ids(tokenizer, messages: list[dict], **kwargs) -> list[int]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)
    return list(out["input_ids"])


@dataclass
class TemplateToken:
    position: int
    token_id: int
    piece: str  # the token as text (special tokens and newlines made visible)
    trained: bool  # True: this token is a target of the loss (part of the answer)


def chat_template_view(tokenizer, instruction: str, response: str) -> tuple[str, list[TemplateToken]]:
    """The templated text and every token with its loss-mask bit, as TRL's SFTTrainer builds them.

    The prompt is rendered with `add_generation_prompt=True` (ending in the assistant header); the answer's
    tokens are those after the longest common prefix with the rendering of prompt + answer.
    """
    if not instruction.strip() or not response.strip():
        raise InputError("alignment.empty_instruction")
    prompt = [{"role": "user", "content": instruction}]
    full = [*prompt, {"role": "assistant", "content": response}]
    prompt_ids = _ids(tokenizer, prompt, add_generation_prompt=True)
    full_ids = _ids(tokenizer, full)
    shared = 0
    while shared < min(len(prompt_ids), len(full_ids)) and prompt_ids[shared] == full_ids[shared]:
        shared += 1
    text = tokenizer.apply_chat_template(full, tokenize=False)
    tokens = [
        TemplateToken(i, t, tokenizer.decode([t]).replace("\n", "⏎"), i >= shared) for i, t in enumerate(full_ids)
    ]
    return text, tokens


@dataclass(frozen=True)
class SFTSettings:
    steps: int = 6  # optimizer steps (a LoRA step on the 135M chat model takes seconds on a CPU)
    batch: int = 2
    lr: float = 1e-3  # LoRA adapters take a larger rate than full fine-tuning
    lora_r: int = 8  # adapter rank: trainable parameters grow linearly with it
    lora_alpha: int = 16
    max_length: int = 96  # tokens per example (template + answer)
    seed: int = 0

    def validate(self) -> None:
        if not 1 <= self.steps <= 1000:
            raise InputError("alignment.bad_steps", low=1, high=1000, value=self.steps)
        if not 1 <= self.batch <= 64:
            raise InputError("alignment.bad_batch", low=1, high=64, value=self.batch)
        if not (0 < self.lr <= 1e3 and math.isfinite(self.lr)):
            raise InputError("preference.bad_lr", value=self.lr)
        if not 1 <= self.lora_r <= 256:
            raise InputError("alignment.bad_lora_rank", value=self.lora_r)


@dataclass
class SFTResult:
    log: RunLog
    model: object  # the PEFT-wrapped model after training
    tokenizer: object
    trainable_params: int
    total_params: int
    before: dict[str, str] = field(default_factory=dict)  # instruction -> answer before training
    after: dict[str, str] = field(default_factory=dict)


@torch.no_grad()
def answer(model, tokenizer, instruction: str, max_new_tokens: int = 24) -> str:
    """Greedy answer to one instruction through the chat template."""
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": instruction}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    ids = {k: v.to(model.device) for k, v in ids.items()}
    model.eval()
    out = model.generate(
        **ids,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
    )
    return whole_characters(tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip())


def whole_characters(text: str) -> str:
    """A generated answer cut by max_new_tokens can end inside a character (a Hangul syllable is 2-3 byte tokens
    for SmolLM2), which decodes as `�`: drop the unfinished bytes and mark the cut with "…"."""
    return text.rstrip("\ufffd") + "…" if text.endswith("\ufffd") else text


def lora_config(r: int, alpha: int, task_type: str = "CAUSAL_LM"):
    from peft import LoraConfig

    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=0.0,
        task_type=task_type,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
    )


def train_sft(
    model,
    tokenizer,
    rows: list[dict] | None = None,
    settings: SFTSettings = SFTSettings(),
    probe: tuple[str, ...] = (),
    progress: ProgressFn = null_progress,
    should_stop: StopFn | None = None,
    on_row: RowFn | None = None,
) -> SFTResult:
    """TRL SFTTrainer + LoRA on `model` (which it wraps in place: pass a fresh copy, not a shared one).

    `probe` instructions are answered greedily before and after training, to see what changed.
    """
    from trl import SFTConfig, SFTTrainer

    settings.validate()
    silence_progress_bars()
    rows = rows if rows is not None else load_instructions()
    if not rows:
        raise InputError("alignment.no_instructions")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    monitor = Monitor(settings.steps, progress, should_stop, on_row, label="SFT")
    with training_threads():
        before = {p: answer(model, tokenizer, p) for p in probe}
        with tempfile.TemporaryDirectory(prefix="llmlab-sft-") as out:
            args = SFTConfig(
                output_dir=out,
                max_steps=settings.steps,
                per_device_train_batch_size=settings.batch,
                learning_rate=settings.lr,
                lr_scheduler_type="constant",
                warmup_steps=0,
                logging_steps=1,
                logging_nan_inf_filter=False,
                save_strategy="no",
                report_to="none",
                disable_tqdm=True,
                bf16=False,
                fp16=False,
                gradient_checkpointing=False,
                max_length=settings.max_length,
                seed=settings.seed,
                use_cpu=use_cpu(),
                dataloader_num_workers=0,
            )
            callback = monitor.trainer_callback({"mean_token_accuracy": "token_accuracy"})
            trainer = SFTTrainer(
                model=model,
                args=args,
                train_dataset=as_conversations(rows),
                processing_class=tokenizer,
                callbacks=[callback],
                peft_config=lora_config(settings.lora_r, settings.lora_alpha),
            )
            quiet_trainer(trainer)
            trainer.train()
        trained = trainer.model
        after = {p: answer(trained, tokenizer, p) for p in probe}
    trainable = sum(p.numel() for p in trained.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trained.parameters())
    return SFTResult(monitor.finish(), trained, tokenizer, trainable, total, before, after)


def train_sft_chat(
    settings: SFTSettings = SFTSettings(),
    rows: list[dict] | None = None,
    probe: tuple[str, ...] = ("대한민국의 수도는 어디인가요?", "What is the capital of France?"),
    progress: ProgressFn = null_progress,
    should_stop: StopFn | None = None,
    on_row: RowFn | None = None,
    role: str = "chat",
) -> SFTResult:
    """`train_sft` on a freshly loaded copy of the packaged chat model (the shared, cached one stays untouched)."""
    from engine.models.loading import load_causal_lm

    lm = load_causal_lm(role, progress)
    lm.model.config.use_cache = False
    return train_sft(lm.model, lm.tokenizer, rows, settings, probe, progress, should_stop, on_row)
