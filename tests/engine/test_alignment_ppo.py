"""engine.alignment.ppo: the clipped surrogate equals TRL's GRPO loss (TRL's own code, run on the same inputs);
PPO on the toy raises the reward."""

from __future__ import annotations

import types
from collections import defaultdict

import pytest
import torch

from engine.alignment.ppo import PPOConfig, PPORun, clipped_surrogate
from engine.alignment.toy import toy_setup
from engine.training.callbacks import first_last_fifth


class _Accelerator:  # single process: gather/reduce are the identity
    num_processes = 1

    def gather(self, x):
        return x

    gather_for_metrics = gather

    def reduce(self, x, reduction="sum"):
        return x


def trl_grpo_loss(per_token_logps, old_logps, advantages, mask, eps=0.2, beta=0.0, ref_logps=None):
    """Call TRL's GRPOTrainer._compute_loss itself, with a stand-in `self` that supplies the log-probs.

    Only the model forward is replaced (its output is `per_token_logps`); everything from the importance ratio to
    the clipped objective, the KL term and the per-sequence averaging is TRL's code.
    """
    from trl import GRPOTrainer

    stub = types.SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (per_token_logps, torch.zeros_like(per_token_logps), None),
        top_entropy_quantile=1.0,
        aux_loss_enabled=False,
        off_policy_mask_threshold=None,
        importance_sampling_level="token",
        beta=beta,
        loss_type="grpo",
        epsilon_low=eps,
        epsilon_high=eps,
        args=types.SimpleNamespace(use_bias_correction_kl=False, delta=None),
        use_vllm=False,
        vllm_importance_sampling_correction=False,
        model=types.SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1,
        _entropy_bonus_enabled=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        accelerator=_Accelerator(),
    )
    B, T = per_token_logps.shape
    inputs = {
        "prompt_ids": torch.zeros(B, 1, dtype=torch.long),
        "prompt_mask": torch.ones(B, 1, dtype=torch.long),
        "completion_ids": torch.zeros(B, T, dtype=torch.long),
        "completion_mask": mask,
        "advantages": advantages,
        "old_per_token_logps": old_logps,
    }
    if ref_logps is not None:
        inputs["ref_per_token_logps"] = ref_logps
    return GRPOTrainer._compute_loss(stub, None, inputs)


def _inputs(seed: int, B: int = 6, T: int = 7):
    g = torch.Generator().manual_seed(seed)
    logps = (-torch.rand(B, T, generator=g) * 3).requires_grad_()
    old = logps.detach() + 0.4 * torch.randn(B, T, generator=g)  # ratios well outside [0.8, 1.2] for some tokens
    ref = logps.detach() + 0.3 * torch.randn(B, T, generator=g)
    adv = torch.randn(B, generator=g)
    mask = torch.ones(B, T)
    for i in range(B):  # ragged answers: padding after each answer's end
        mask[i, int(torch.randint(1, T + 1, (1,), generator=g)) :] = 0
    return logps, old, ref, adv, mask


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("eps", [0.1, 0.2, 0.3])
def test_clipped_surrogate_equals_trl_grpo_loss(seed, eps):
    logps, old, _, adv, mask = _inputs(seed)
    ours = clipped_surrogate(logps, old, adv, mask, clip_eps=eps)
    (g_ours,) = torch.autograd.grad(ours, logps)
    theirs = trl_grpo_loss(logps, old, adv, mask, eps=eps)
    (g_theirs,) = torch.autograd.grad(theirs, logps)
    assert torch.allclose(ours, theirs, atol=1e-6), (float(ours), float(theirs))
    assert torch.allclose(g_ours, g_theirs, atol=1e-6)
    ratio = torch.exp(logps - old)
    assert bool(((ratio - 1).abs() > eps)[mask.bool()].any())  # the clipping really was exercised


@pytest.mark.parametrize("beta", [0.04, 0.3])
def test_kl_in_the_loss_equals_trl_grpo_with_beta(beta):
    logps, old, ref, adv, mask = _inputs(5)
    ours = clipped_surrogate(logps, old, adv, mask, 0.2, kl_coef=beta, ref_per_token_logps=ref)
    theirs = trl_grpo_loss(logps, old, adv, mask, 0.2, beta=beta, ref_logps=ref)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert torch.allclose(*(torch.autograd.grad(x, logps)[0] for x in (ours, theirs)), atol=1e-6)


def test_per_token_advantages_and_first_epoch_gradient():
    logps, _, _, adv, mask = _inputs(3)
    per_token = adv[:, None].expand_as(logps).contiguous()
    old = logps.detach()
    a = clipped_surrogate(logps, old, adv, mask)
    b = clipped_surrogate(logps, old, per_token, mask)
    assert torch.allclose(a, b)
    # at ratio 1 the clipped loss is the policy gradient: −mean_seq(mean_tok(A·log π)) up to a constant
    (g,) = torch.autograd.grad(a, logps)
    expected = -(adv[:, None] * mask) / mask.sum(-1, keepdim=True) / len(adv)
    assert torch.allclose(g, expected, atol=1e-6)
    with pytest.raises(ValueError, match="ref_per_token_logps"):
        clipped_surrogate(logps, old, adv, mask, kl_coef=0.1)


def test_ppo_toy_run_raises_reward():
    setup = toy_setup()
    run = PPORun(setup, PPOConfig(seed=0))
    rows = [run.step() for _ in range(20)]
    first, last = first_last_fifth([r["reward_mean"] for r in rows])
    assert last > first + 0.2, (first, last)
    assert {"method", "step", "reward_mean", "kl", "loss", "seconds"} <= set(rows[-1])
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # step 1 samples from the reference itself
    assert all(r["kl"] >= -1e-6 and r["seconds"] > 0 for r in rows)


@pytest.mark.parametrize("bad", [{"lr": 0}, {"batch": 1}, {"clip_eps": 1.5}, {"kl_coef": -1}, {"epochs": 0}])
def test_invalid_ppo_settings(bad):
    with pytest.raises(ValueError):
        PPOConfig(**bad).validate()
