"""engine.alignment.dpo: the DPO loss equals TRL's DPOTrainer on the same batch; DPO on the toy raises the reward."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from engine.alignment import toy
from engine.alignment.dpo import DPOConfig, DPORun, dpo_loss, sequence_logps
from engine.alignment.reward import PreferenceError, load_preferences
from engine.training.callbacks import first_last_fifth

ROWS = [
    {"prompt": "<s> 날씨?", "chosen": " 맑아요 최고!", "rejected": " 축구"},
    {"prompt": "<s> 음식?", "chosen": " 김치", "rejected": " 음… 정말 정말"},
    {"prompt": "<s> 운동?", "chosen": " 야구 정말", "rejected": " 재즈 최고! 최고! 최고!"},
    {"prompt": "<s> 음악?", "chosen": " 재즈", "rejected": " 글쎄요"},
]


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_loss_equals_trl_dpo_trainer(beta, tmp_path):
    """TRL tokenizes, collates and computes its loss; we compute ours from the very batch it collated."""
    from datasets import Dataset
    from trl import DPOConfig as TRLConfig
    from trl import DPOTrainer

    cfg = toy.ToyConfig()
    ref = toy.new_policy(cfg).eval()
    policy = copy.deepcopy(ref)
    with torch.no_grad():  # a policy that differs from its reference, so the loss is not log 2
        for p in policy.parameters():
            p.add_(0.3 * torch.randn_like(p))
    args = TRLConfig(
        output_dir=str(tmp_path),
        beta=beta,
        per_device_train_batch_size=len(ROWS),
        report_to="none",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        max_length=None,
    )
    trainer = DPOTrainer(
        model=policy,
        ref_model=ref,
        args=args,
        train_dataset=Dataset.from_list(ROWS),
        processing_class=toy.make_tokenizer(),
    )
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.eval()
    theirs = trainer.compute_loss(trainer.model, batch)
    n = len(ROWS)
    ours_policy = sequence_logps(policy, batch["input_ids"], batch["completion_mask"])
    with torch.no_grad():
        ours_ref = sequence_logps(ref, batch["input_ids"], batch["completion_mask"])
    ours, chosen_r, _rejected_r = dpo_loss(ours_policy[:n], ours_policy[n:], ours_ref[:n], ours_ref[n:], beta)
    assert abs(float(ours) - math.log(2)) > 1e-3
    assert torch.allclose(ours, theirs, atol=1e-5), (float(ours), float(theirs))
    assert torch.allclose(chosen_r.mean(), torch.tensor(trainer._metrics["eval"]["rewards/chosen"][-1]), atol=1e-5)


def test_dpo_loss_basics():
    zeros = torch.zeros(3)
    loss, c, r = dpo_loss(zeros, zeros, zeros, zeros, beta=0.1)
    assert float(loss) == pytest.approx(math.log(2)) and c.abs().sum() == 0 and r.abs().sum() == 0
    up = torch.full((3,), 5.0)
    assert float(dpo_loss(up, zeros, zeros, zeros, 1.0)[0]) < float(dpo_loss(up, zeros, zeros, zeros, 0.1)[0])


def test_dpo_toy_run_raises_reward():
    setup = toy.toy_setup()
    run = DPORun(setup, DPOConfig(seed=0))
    rows = [run.step() for _ in range(30)]
    first, last = first_last_fifth([r["reward_mean"] for r in rows])
    assert last > first + 0.1, (first, last)
    assert {"method", "step", "reward_mean", "kl", "loss", "seconds"} <= set(rows[-1])
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)  # policy == reference at the first step
    assert rows[-1]["loss"] < math.log(2)


def test_dpo_needs_pairs():
    setup = toy.toy_setup()
    empty = toy.ToySetup(setup.cfg, setup.reference, setup.tokenizer, [], setup.sft_log)
    with pytest.raises(ValueError, match="no preference pairs"):
        DPORun(empty)


@pytest.mark.parametrize("bad", [{"lr": -1}, {"beta": 0}, {"batch": 0}])
def test_invalid_dpo_settings(bad):
    with pytest.raises(ValueError):
        DPOConfig(**bad).validate()


def test_chat_dpo_refuses_malformed_pairs():
    from engine.alignment.dpo import ChatDPOSettings, train_dpo_chat

    with pytest.raises(PreferenceError, match="missing or empty"):
        train_dpo_chat(
            None,
            None,
            [{"prompt": "a", "chosen": "b"}, {"prompt": "c", "chosen": "d", "rejected": "e"}],
            ChatDPOSettings(steps=1),
        )


@pytest.mark.slow
def test_chat_dpo_with_lora_runs_on_the_real_chat_model():
    from engine.alignment.dpo import ChatDPOSettings, train_dpo_chat_fresh

    log, model = train_dpo_chat_fresh(load_preferences()[:4], ChatDPOSettings(steps=2, batch=2, max_length=96))
    rows = log.train_rows()
    assert log.status == "finished" and len(rows) == 2
    assert all(math.isfinite(r["loss"]) for r in rows) and {"margin", "reward_chosen"} <= set(rows[-1])
    assert any("lora" in n for n, p in model.named_parameters() if p.requires_grad)
