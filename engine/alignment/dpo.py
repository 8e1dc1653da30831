"""DPO: learn from preference pairs directly, no reward model and no sampling during training.

loss = −log σ(β·[(log π(chosen) − log π_ref(chosen)) − (log π(rejected) − log π_ref(rejected))])

β·(log π − log π_ref) acts as an implicit reward; β sets how far the policy may move from the reference to
widen the chosen/rejected gap (small β: far, large β: stay close). `dpo_loss` is tested equal to TRL's
DPOTrainer on the same batch (tests/engine/test_alignment_dpo.py). `train_dpo_chat` runs TRL's DPOTrainer
with LoRA on the `chat` model.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.alignment.toy import ToySetup, clone_policy, evaluate_policy, pairs_as_tensors, response_logps
from engine.core.textinput import InputError
from engine.training.callbacks import check_finite


def dpo_loss(
    policy_chosen_logps: torch.Tensor,  # (B,) log π(chosen | prompt), summed over the answer's tokens
    policy_rejected_logps: torch.Tensor,  # (B,)
    ref_chosen_logps: torch.Tensor,  # (B,) the same under the frozen reference
    ref_rejected_logps: torch.Tensor,  # (B,)
    beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DPO (sigmoid) loss and the implicit rewards β·log(π/π_ref) of the chosen and rejected answers."""
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return loss, chosen_rewards.detach(), rejected_rewards.detach()


def sequence_logps(model, input_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """Sum of log π over the completion tokens of right-padded sequences (the layout TRL's collator makes)."""
    logits = model(input_ids=input_ids, use_cache=False).logits[:, :-1].float()  # position t predicts token t+1
    logps = torch.log_softmax(logits, -1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return (logps * completion_mask[:, 1:]).sum(-1)


@dataclass(frozen=True)
class DPOConfig:
    lr: float = 1e-3
    beta: float = 0.3
    batch: int = 64  # preference pairs per step
    eval_batch: int = 64  # answers sampled after each step to measure reward and KL (DPO itself never samples)
    max_grad_norm: float = 1.0
    seed: int = 0

    def validate(self) -> None:
        if not (0 < self.lr <= 1e3 and math.isfinite(self.lr)):
            raise InputError("preference.bad_lr", value=self.lr)
        if not 0 < self.beta <= 100:
            raise InputError("alignment.bad_beta", value=self.beta)
        if not 1 <= self.batch <= 1024:
            raise InputError("alignment.bad_batch", low=1, high=1024, value=self.batch)


class DPORun:
    """DPO on the toy policy, one `step()` at a time, on the same reference and preference pairs as PPO."""

    method = "dpo"

    def __init__(self, setup: ToySetup, cfg: DPOConfig = DPOConfig()):
        cfg.validate()
        if not setup.pairs:
            raise InputError("alignment.no_pairs")
        self.setup, self.cfg = setup, cfg
        self.policy = clone_policy(setup)
        self.optimizer = torch.optim.AdamW(self.policy.parameters(), lr=cfg.lr, weight_decay=0.0)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.data = pairs_as_tensors(setup.pairs, setup.cfg.max_new)
        with torch.no_grad():  # the reference never changes: compute its log-probs once
            self.ref_chosen = self._logps(setup.reference, "chosen")
            self.ref_rejected = self._logps(setup.reference, "rejected")
        self.steps = 0

    def _logps(self, model, which: str, idx: torch.Tensor | None = None) -> torch.Tensor:
        d = self.data
        sel = slice(None) if idx is None else idx
        logps = response_logps(model, d["prompts"][sel], d[which][sel])
        return (logps * d[f"{which}_mask"][sel]).sum(-1)

    def step(self, evaluate: bool = True) -> dict:
        """Measure the current policy on freshly sampled answers (unless `evaluate=False`), then one DPO update.

        Measuring first makes a row describe the policy the step started from, as PPO's rows do (PPO measures
        the answers it samples for its update), so step 1 of both is the reference policy.
        """
        cfg = self.cfg
        ev = {}
        if evaluate:
            self.policy.eval()
            t1 = time.perf_counter()
            ev = evaluate_policy(self.policy, self.setup, cfg.eval_batch, self.generator)
            ev["eval_seconds"] = time.perf_counter() - t1
        t0 = time.perf_counter()
        idx = torch.randint(len(self.setup.pairs), (cfg.batch,), generator=self.generator)
        self.policy.train()
        loss, chosen_r, rejected_r = dpo_loss(
            self._logps(self.policy, "chosen", idx),
            self._logps(self.policy, "rejected", idx),
            self.ref_chosen[idx],
            self.ref_rejected[idx],
            cfg.beta,
        )
        check_finite("the DPO loss", loss)
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.steps += 1
        row = {
            "method": self.method,
            "step": self.steps,
            "loss": loss.item(),
            "seconds": time.perf_counter() - t0,  # DPO's own cost; sampling for the plots is not part of it
            "margin": float((chosen_r - rejected_r).mean()),
            "pair_accuracy": float((chosen_r > rejected_r).float().mean()),
        }
        if evaluate:
            row.update({k: ev[k] for k in ("reward_mean", "judge_mean", "kl", "length", "eval_seconds")})
            row["examples"] = ev["examples"][:3]
        return row


@dataclass(frozen=True)
class ChatDPOSettings:
    steps: int = 6  # a step on the 135M chat model takes several seconds on a CPU: this run is for the patient
    batch: int = 2  # preference pairs per step
    beta: float = 0.1
    lr: float = 5e-4
    lora_r: int = 8
    lora_alpha: int = 16
    max_length: int = 128
    seed: int = 0

    def validate(self) -> None:
        if not 1 <= self.steps <= 1000:
            raise InputError("alignment.bad_steps", low=1, high=1000, value=self.steps)
        if not 1 <= self.batch <= 32:
            raise InputError("alignment.bad_batch", low=1, high=32, value=self.batch)
        if not 0 < self.beta <= 100:
            raise InputError("alignment.bad_beta", value=self.beta)
        if not (0 < self.lr <= 1e3 and math.isfinite(self.lr)):
            raise InputError("preference.bad_lr", value=self.lr)


# TRL's log names -> ours
TRL_DPO_METRICS = {
    "rewards/chosen": "reward_chosen",
    "rewards/rejected": "reward_rejected",
    "rewards/margins": "margin",
    "rewards/accuracies": "pair_accuracy",
    "logps/chosen": "logp_chosen",
    "logps/rejected": "logp_rejected",
}


def train_dpo_chat(
    model,
    tokenizer,
    pairs: list[dict],
    settings: ChatDPOSettings = ChatDPOSettings(),
    progress=None,
    should_stop=None,
    on_row=None,
):
    """TRL DPOTrainer with a LoRA adapter on a chat model (the reference is the model with the adapter off).

    `model` is wrapped in place: pass a fresh copy. Rows carry TRL's metrics: loss, the implicit rewards
    β·log(π/π_ref) of chosen and rejected answers, their margin and how often chosen > rejected.
    Returns (RunLog, trained model).
    """
    import tempfile

    from datasets import Dataset
    from trl import DPOConfig as TRLDPOConfig
    from trl import DPOTrainer

    from engine.alignment.reward import validate_preferences
    from engine.alignment.sft import lora_config
    from engine.core.progress import null_progress
    from engine.training import training_threads, use_cpu
    from engine.training.callbacks import Monitor, quiet_trainer, silence_progress_bars

    settings.validate()
    silence_progress_bars()
    pairs = validate_preferences(pairs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    data = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": p["prompt"]}],
                "chosen": [{"role": "assistant", "content": p["chosen"]}],
                "rejected": [{"role": "assistant", "content": p["rejected"]}],
            }
            for p in pairs
        ]
    )
    monitor = Monitor(settings.steps, progress or null_progress, should_stop, on_row, label="DPO (chat, LoRA)")
    with training_threads(), tempfile.TemporaryDirectory(prefix="llmlab-dpo-") as out:
        args = TRLDPOConfig(
            output_dir=out,
            max_steps=settings.steps,
            per_device_train_batch_size=settings.batch,
            learning_rate=settings.lr,
            lr_scheduler_type="constant",
            beta=settings.beta,
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
        trainer = DPOTrainer(
            model=model,
            args=args,
            train_dataset=data,
            processing_class=tokenizer,
            peft_config=lora_config(settings.lora_r, settings.lora_alpha),
            callbacks=[monitor.trainer_callback(TRL_DPO_METRICS)],
        )
        quiet_trainer(trainer)
        trainer.train()
    return monitor.finish(), trainer.model


def train_dpo_chat_fresh(
    pairs: list[dict],
    settings: ChatDPOSettings = ChatDPOSettings(),
    progress=None,
    should_stop=None,
    on_row=None,
    role: str = "chat",
):
    """`train_dpo_chat` on a freshly loaded copy of the packaged chat model."""
    from engine.models.loading import load_causal_lm

    lm = load_causal_lm(role)
    return train_dpo_chat(lm.model, lm.tokenizer, pairs, settings, progress, should_stop, on_row)
