"""LoRA supervised fine-tuning (SFT) of a chat model on question/answer pairs, then merging the adapters.

Each pair becomes one chat in the model's own chat template: [system, user: question, assistant: answer]. The loss
is computed on the assistant's tokens only (labels = -100 elsewhere): the model should learn to *answer*, not to
predict the questions learners type. The adapters are peft LoRA on every Linear layer of the decoder (attention and
MLP: with a few dozen steps, MLP adapters carry most of the new facts), rank 16, alpha 32.

Batches are built from pairs sorted by length (then shuffled as batches) so little compute goes to padding —
on 2 CPU cores a step of 8 chats costs seconds, and padding is pure waste.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.capstone.qa_csv import QAPair
from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.training.lora import LoraSpec, add_lora

SYSTEM_PROMPT = "FAQ 챗봇입니다. 한 문장으로 답하세요."  # short: every token of it is computed in every training row
ALL_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
MAX_TOKENS = 160  # one FAQ chat (system + question + answer) fits easily; longer rows are cut from the left


@dataclass(frozen=True)
class SftConfig:
    epochs: int = 3
    batch_size: int = 8
    lr: float = 1e-3  # LoRA tolerates (and on few steps needs) a much larger rate than full fine-tuning
    rank: int = 16
    alpha: int = 32
    seed: int = 0
    max_steps: int = 200  # a hard cap, whatever the CSV's size: the capstone must finish in minutes

    def __post_init__(self) -> None:
        if not 1 <= self.epochs <= 20:
            raise InputError("input.out_of_range", name="epochs", low=1, high=20, value=self.epochs)
        if not 1 <= self.batch_size <= 64:
            raise InputError("input.out_of_range", name="batch_size", low=1, high=64, value=self.batch_size)
        if not 0 < self.lr <= 0.1:
            raise InputError("input.out_of_range", name="lr", low=0, high=0.1, value=self.lr)
        if not 1 <= self.max_steps <= 2000:
            raise InputError("input.out_of_range", name="max_steps", low=1, high=2000, value=self.max_steps)


@dataclass
class SftResult:
    losses: list[float] = field(default_factory=list)  # one per optimizer step
    steps: int = 0
    planned_steps: int = 0
    seconds: float = 0.0
    trainable: int = 0
    total: int = 0
    cancelled: bool = False


def messages(question: str, answer: str | None = None) -> list[dict]:
    chat = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]
    if answer is not None:
        chat.append({"role": "assistant", "content": answer})
    return chat


def encode_pair(tokenizer, pair: QAPair) -> tuple[list[int], list[int]]:
    """(input_ids, labels): labels are -100 on the prompt, the token ids on the answer (and its end token)."""
    prompt = tokenizer.apply_chat_template(messages(pair.question), add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(messages(pair.question, pair.answer), tokenize=False)
    if not full.startswith(prompt):  # a template that rewrites earlier turns: fall back to prompt + answer
        full = prompt + pair.answer + (tokenizer.eos_token or "")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full.rstrip("\n"), add_special_tokens=False)["input_ids"]
    labels = [-100] * len(prompt_ids) + full_ids[len(prompt_ids) :]
    return full_ids[-MAX_TOKENS:], labels[-MAX_TOKENS:]


def batches(tokenizer, pairs: list[QAPair], cfg: SftConfig) -> list[dict]:
    import torch

    encoded = sorted((encode_pair(tokenizer, p) for p in pairs), key=lambda e: len(e[0]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = []
    for i in range(0, len(encoded), cfg.batch_size):
        chunk = encoded[i : i + cfg.batch_size]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)  # (B, T), right padding
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (x, y) in enumerate(chunk):
            ids[row, : len(x)] = torch.tensor(x)
            labels[row, : len(y)] = torch.tensor(y)
            mask[row, : len(x)] = 1
        out.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return out


def answer_loss(causal_lm, batch: dict):
    """The same number as `model(**batch).loss`, computing the vocabulary projection only where a label exists.

    The LM head of a 152k-token vocabulary is a (C x 152k) matrix product per position; the prompt positions carry
    no loss, so projecting them is wasted work (a third of a training step here). Position t predicts token t+1."""
    import torch.nn.functional as F

    hidden = causal_lm.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    targets = batch["labels"][:, 1:]  # (B, T-1)
    keep = targets != -100
    logits = causal_lm.lm_head(hidden[:, :-1][keep])  # (N, V): only the N answer positions
    return F.cross_entropy(logits.float(), targets[keep])


def train_lora(
    base_dir: Path,
    pairs: list[QAPair],
    cfg: SftConfig = SftConfig(),
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] = lambda: False,
    on_step: Callable[[SftResult], None] | None = None,
):
    """-> (peft model, tokenizer, SftResult). A cancel keeps the steps finished so far (the model is still usable)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model.config.use_cache = False
    model = add_lora(model, LoraSpec(r=cfg.rank, alpha=cfg.alpha, targets=ALL_LINEARS))
    result = SftResult()
    for p in model.parameters():
        result.total += p.numel()
        result.trainable += p.numel() if p.requires_grad else 0
    data = batches(tokenizer, pairs, cfg)
    rng = random.Random(cfg.seed)
    plan = []
    for _ in range(cfg.epochs):
        order = list(range(len(data)))
        rng.shuffle(order)
        plan.extend(order)
    plan = plan[: cfg.max_steps]
    result.planned_steps = len(plan)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    # linear decay to 10 %: the last steps consolidate instead of jumping around the minimum
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 - 0.9 * s / max(1, len(plan)))
    model.train()
    start = time.perf_counter()
    try:
        for step, b in enumerate(plan, start=1):
            if should_stop():
                result.cancelled = True
                break
            loss = answer_loss(model.get_base_model(), data[b])
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            result.losses.append(round(float(loss.detach()), 4))
            result.steps = step
            result.seconds = round(time.perf_counter() - start, 2)
            if on_step:
                on_step(result)
            progress(step / len(plan), f"LoRA step {step}/{len(plan)}: loss {result.losses[-1]:.3f}")
    except Cancelled:
        result.cancelled = True
    model.eval()
    return model, tokenizer, result


def merge_and_save(peft_model, tokenizer, out_dir: Path, dtype: str = "float16") -> Path:
    """W + (alpha/r)·B·A folded into every adapted weight (peft merge_and_unload), saved as safetensors.

    float16 halves the disk (the GGUF converter writes f16 next anyway); the tied-embedding flag is kept."""
    import torch

    merged = peft_model.merge_and_unload()
    merged = merged.to(getattr(torch, dtype))
    merged.config.use_cache = True
    if out_dir.exists():
        shutil.rmtree(out_dir)
    merged.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def fp32_bytes(model) -> int:
    """What the model weighs in float32: 4 bytes per distinct parameter (tied weights counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel() * 4
    return total
