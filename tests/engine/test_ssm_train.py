"""engine.ssm.train: Mamba vs a same-size Transformer on the synthetic tasks (tiny configs, a few steps)."""

from __future__ import annotations

import math

import pytest
import torch

from engine.core.errors import UserError
from engine.core.progress import Cancelled
from engine.ssm import train as train_mod
from engine.ssm.train import TrainConfig, build_model, compare, evaluate, train_one
from engine.ssm.transformer import count_params

TINY = TrainConfig(
    task="selective_copy",
    length=16,
    eval_lengths=(16, 32),
    steps=30,
    batch_size=8,
    lr=1e-2,
    n_data=2,
    d_model=8,
    n_layer=1,
    d_state=4,
    n_head=2,
    eval_sequences=8,
    log_every=1,
    threads=1,
)


def test_same_parameter_count_within_ten_percent():
    cfg = TrainConfig()
    mamba, transformer = (count_params(build_model(a, cfg)) for a in ("mamba", "transformer"))
    assert abs(transformer - mamba) / mamba < 0.10
    assert abs(transformer - mamba) / mamba < 0.02  # in fact within a couple of per cent


@pytest.mark.parametrize("arch", ["mamba", "transformer"])
def test_a_few_steps_lower_the_loss(arch):
    rows = []
    result = train_one(arch, TINY, on_row=rows.append)
    assert result.status == "finished" and result.steps == 30 and len(rows) == 30 == len(result.curve)
    losses = [r["loss"] for r in rows]
    assert sum(losses[-5:]) / 5 < losses[0]
    assert [r["step"] for r in rows] == list(range(1, 31)) and all(r["arch"] == arch for r in rows)
    assert set(result.accuracy_by_length) == {16, 32}
    assert result.accuracy == result.accuracy_by_length[16]
    assert result.accuracy_longer == result.accuracy_by_length[32]
    assert 0.0 <= result.accuracy <= 1.0 and result.params == count_params(build_model(arch, TINY))
    out = result.to_json()
    for key in ("arch", "params", "accuracy", "accuracy_longer", "seconds", "steps", "curve", "accuracy_by_length"):
        assert key in out
    assert set(out["accuracy_by_length"]) == {"16", "32"}


def test_same_seed_same_curve():
    cfg = TrainConfig(**{**TINY.__dict__, "steps": 4})
    a, b = (train_one("mamba", cfg).curve for _ in range(2))
    assert [r["loss"] for r in a] == [r["loss"] for r in b]


def test_stop_raises_cancelled_with_rows():
    rows: list[dict] = []
    with pytest.raises(Cancelled) as info:
        train_one("mamba", TINY, on_row=rows.append, should_stop=lambda: len(rows) >= 3)
    assert len(info.value.partial) == 3 == len(rows)


def test_stop_in_the_second_model_keeps_the_first():
    rows: list[dict] = []
    cfg = TrainConfig(**{**TINY.__dict__, "steps": 4})
    with pytest.raises(Cancelled) as info:
        compare(cfg, on_row=rows.append, should_stop=lambda: len(rows) >= 6)
    partial = info.value.partial
    assert [r["arch"] for r in partial] == ["mamba"] * 4 + ["transformer"] * 2


def test_progress_cancel_is_a_stop():
    def progress(fraction, message):
        if fraction >= 0.1:
            raise Cancelled("stop")

    with pytest.raises(Cancelled) as info:
        train_one("transformer", TINY, progress=progress)
    assert len(info.value.partial) == 3


def test_nan_loss_diverges_and_keeps_rows(monkeypatch):
    real = train_mod.answer_loss
    calls = {"n": 0}

    def loss_then_nan(logits, batch):
        calls["n"] += 1
        loss = real(logits, batch)
        return loss * math.nan if calls["n"] >= 3 else loss

    monkeypatch.setattr(train_mod, "answer_loss", loss_then_nan)
    result = train_one("mamba", TINY)
    assert result.status == "diverged" and "nan" in result.message.lower()
    assert len(result.curve) == 3 and math.isnan(result.curve[-1]["loss"])
    assert result.accuracy is None and result.accuracy_by_length == {}


class _Oracle(torch.nn.Module):
    """Knows the answer: puts all its mass on the right data token at every answer position."""

    def forward(self, ids):  # (B, L) -> (B, L, V)
        from engine.ssm.tasks import BLANK, MARKER

        logits = torch.zeros(*ids.shape, 16)
        for row in range(ids.shape[0]):
            data = [t for t in ids[row].tolist() if t not in (BLANK, MARKER)]
            for i, t in enumerate(data):
                logits[row, ids.shape[1] - len(data) + i, t] = 1.0
        return logits


def test_evaluate_exact_with_an_oracle():
    cfg = TrainConfig(length=16, n_data=2, eval_sequences=40)
    assert evaluate(_Oracle(), cfg, 16) == (1.0, 1.0)
    assert evaluate(_Oracle(), cfg, 48, chunk=7) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"steps": 0}, "input.out_of_range"),
        ({"steps": 10**6}, "input.out_of_range"),
        ({"lr": 0.0}, "ssm.train.bad_lr"),
        ({"lr": math.nan}, "ssm.train.bad_lr"),
        ({"lr": 5.0}, "ssm.train.bad_lr"),
        ({"weight_decay": -1.0}, "ssm.train.bad_number"),
        ({"length": 3}, "ssm.task.bad_length"),
        ({"length": 10**6}, "ssm.task.bad_length"),
        ({"eval_lengths": (16, 0)}, "ssm.task.bad_length"),
        ({"eval_lengths": tuple(range(16, 26))}, "input.too_many"),
        ({"task": "copy"}, "input.unknown_choice"),
        ({"batch_size": 0}, "input.out_of_range"),
    ],
)
def test_bad_settings_have_codes(changes, code):
    with pytest.raises(UserError) as info:
        train_one("mamba", TrainConfig(**{**TINY.__dict__, **changes}))
    assert info.value.code == code


def test_unknown_arch_and_heads():
    with pytest.raises(UserError) as info:
        train_one("rnn", TINY)
    assert info.value.code == "input.unknown_choice"
    with pytest.raises(UserError) as info:
        train_one("transformer", TrainConfig(**{**TINY.__dict__, "n_head": 3}))
    assert info.value.code == "ssm.train.bad_heads"


def test_time_budget_stops_training_and_still_evaluates():
    cfg = TrainConfig(**{**TINY.__dict__, "max_seconds": 1e-9})
    result = train_one("mamba", cfg)
    assert result.time_limited and result.steps == 1 and result.status == "finished"
    assert len(result.curve) == 1 and result.accuracy is not None
    with pytest.raises(UserError) as info:
        train_one("mamba", TrainConfig(**{**TINY.__dict__, "max_seconds": -1.0}))
    assert info.value.code == "ssm.train.bad_number"


def test_task_config_defaults_and_overrides():
    from engine.ssm.train import task_config

    assert (task_config("selective_copy").steps, task_config("selective_copy").batch_size) == (2400, 8)
    assert (task_config("induction").steps, task_config("induction").batch_size) == (600, 16)
    assert task_config("induction", steps=5, seed=None).steps == 5 and task_config("induction", seed=None).seed == 0
    with pytest.raises(UserError) as info:
        task_config("copy")
    assert info.value.code == "input.unknown_choice"


def test_each_architecture_gets_its_own_learning_rate_unless_one_is_given():
    cfg = TrainConfig(**{**TINY.__dict__, "steps": 1, "lr": None, "eval_lengths": (16,)})
    assert train_one("mamba", cfg).lr == 1e-2 and train_one("transformer", cfg).lr == 1e-3
    assert train_one("transformer", TrainConfig(**{**cfg.__dict__, "lr": 0.05})).lr == 0.05
