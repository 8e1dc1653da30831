"""PPO for language models, written out (TRL 1.16 removed its PPO trainer).

One PPO step: sample answers from the current policy → score them with the reward → subtract β·KL to the
reference from the reward (the penalty that keeps the policy near what SFT taught) → advantage = reward − value
→ a few epochs of the *clipped surrogate* on those samples.

The clipped surrogate is the very objective TRL's GRPOTrainer minimises (GRPO = PPO with the value function
replaced by the mean reward of a group of answers to the same prompt); tests/engine/test_alignment_ppo.py runs
TRL's own loss code on the same log-probs and advantages and checks both agree.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from engine.alignment.toy import (
    ToySetup,
    clone_policy,
    kl_per_sequence,
    prompt_ids,
    response_logps,
    sample,
    score,
)
from engine.core.textinput import InputError
from engine.training.callbacks import check_finite


def clipped_surrogate(
    per_token_logps: torch.Tensor,  # (B, T) log π_θ(token), with gradient
    old_per_token_logps: torch.Tensor,  # (B, T) log π_old(token) when the answers were sampled
    advantages: torch.Tensor,  # (B,) one advantage per answer (or (B, T) per token)
    mask: torch.Tensor,  # (B, T) 1 for answer tokens, 0 for padding
    clip_eps: float = 0.2,
    kl_coef: float = 0.0,  # GRPO-style KL *in the loss*; classic PPO puts the KL in the reward instead (kl_coef=0)
    ref_per_token_logps: torch.Tensor | None = None,
) -> torch.Tensor:
    """PPO's clipped objective, as a loss to minimise: −min(r·A, clip(r, 1−ε, 1+ε)·A), averaged per answer.

    r = π_θ/π_old is how much more (or less) likely the token has become since sampling. Clipping removes the
    incentive to move r outside [1−ε, 1+ε] in the direction the advantage favours: small, safe steps.
    """
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)  # (B, 1): the same advantage for every token of an answer
    ratio = torch.exp(per_token_logps - old_per_token_logps)  # (B, T)
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)
    per_token = -torch.min(ratio * advantages, clipped * advantages)
    if kl_coef != 0.0:
        if ref_per_token_logps is None:
            raise ValueError("kl_coef needs ref_per_token_logps")
        delta = ref_per_token_logps - per_token_logps  # k3 estimator of KL(π_θ || π_ref), always ≥ 0
        per_token = per_token + kl_coef * (torch.exp(delta) - delta - 1)
    return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()


@dataclass(frozen=True)
class PPOConfig:
    lr: float = 1e-3
    batch: int = 64  # answers sampled per step
    epochs: int = 2  # optimisation passes over each batch (why the ratio and its clipping matter)
    clip_eps: float = 0.2
    kl_coef: float = 0.3  # β: reward −= β·KL(π‖π_ref). 0 turns the penalty off (→ reward hacking)
    value_lr: float = 0.2  # the critic: a running estimate of each question's expected reward
    max_grad_norm: float = 1.0
    seed: int = 0

    def validate(self) -> None:
        if not (0 < self.lr <= 1e3 and math.isfinite(self.lr)):
            raise InputError("preference.bad_lr", value=self.lr)
        if not 2 <= self.batch <= 1024:
            raise InputError("alignment.bad_batch", low=2, high=1024, value=self.batch)
        if not 1 <= self.epochs <= 16:
            raise InputError("alignment.bad_epochs", value=self.epochs)
        if not 0 < self.clip_eps < 1:
            raise InputError("alignment.bad_clip", value=self.clip_eps)
        if not 0 <= self.kl_coef <= 100:
            raise InputError("alignment.bad_kl", value=self.kl_coef)


class PPORun:
    """PPO on the toy policy, one `step()` at a time (so a page can interleave it with DPO and draw live)."""

    method = "ppo"

    def __init__(self, setup: ToySetup, cfg: PPOConfig = PPOConfig()):
        cfg.validate()
        self.setup, self.cfg = setup, cfg
        self.policy = clone_policy(setup)
        self.optimizer = torch.optim.AdamW(self.policy.parameters(), lr=cfg.lr, weight_decay=0.0)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.values: dict[str, float] = {}  # the toy's critic: expected (penalised) reward per question
        self.steps = 0

    def step(self) -> dict:
        t0 = time.perf_counter()
        setup, cfg = self.setup, self.cfg
        questions = setup.questions(cfg.batch, self.generator)
        prompts = prompt_ids(questions)
        self.policy.eval()
        responses, mask = sample(self.policy, prompts, setup.cfg.max_new, self.generator)
        with torch.no_grad():
            old_logps, logits = response_logps(self.policy, prompts, responses, with_logits=True)
            ref_logps, ref_logits = response_logps(setup.reference, prompts, responses, with_logits=True)
        proxy, judge, texts = score(questions, responses)
        reward = torch.tensor(proxy)
        sampled_kl = ((old_logps - ref_logps) * mask).sum(-1)  # log π/π_ref of what was sampled (B,)
        penalised = reward - cfg.kl_coef * sampled_kl
        # critic: advantage = penalised reward − the running value of this question
        for q in set(questions):
            self.values.setdefault(q, float(penalised[[i for i, x in enumerate(questions) if x == q]].mean()))
        values = torch.tensor([self.values[q] for q in questions])
        advantages = penalised - values
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-6)  # whitened, as PPO codes do
        for q in set(questions):
            idx = [i for i, x in enumerate(questions) if x == q]
            self.values[q] += cfg.value_lr * (float(penalised[idx].mean()) - self.values[q])

        self.policy.train()
        losses, clipped = [], []
        for _ in range(cfg.epochs):
            logps = response_logps(self.policy, prompts, responses)
            loss = clipped_surrogate(logps, old_logps, advantages, mask, cfg.clip_eps)
            check_finite("the PPO loss", loss)
            self.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            losses.append(loss.item())
            with torch.no_grad():
                ratio = torch.exp(logps - old_logps)
                clipped.append(float((((ratio - 1).abs() > cfg.clip_eps).float() * mask).sum() / mask.sum()))
        self.steps += 1
        return {
            "method": self.method,
            "step": self.steps,
            "reward_mean": float(reward.mean()),
            "judge_mean": sum(judge) / len(judge),
            "kl": float(kl_per_sequence(logits, ref_logits, mask).mean()),
            "loss": sum(losses) / len(losses),
            "clip_fraction": clipped[-1],
            "length": float(mask.sum(-1).mean()),
            "seconds": time.perf_counter() - t0,
            "examples": [f"{q} → {t}" for q, t in zip(questions[:3], texts[:3], strict=True)],
        }
