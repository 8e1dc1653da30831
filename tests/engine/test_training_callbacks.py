"""engine.training.callbacks: one place for progress, metric rows, cancellation and divergence (NaN) checks."""

from __future__ import annotations

import math
import tempfile

import pytest
import torch

from engine.core.progress import Cancelled
from engine.training.callbacks import (
    CANCELLED,
    DIVERGED,
    FINISHED,
    Diverged,
    Monitor,
    check_finite,
    first_last_fifth,
    quiet_trainer,
)


def test_rows_progress_and_finish():
    seen, progress = [], []
    mon = Monitor(4, lambda f, m: progress.append((f, m)), on_row=seen.append, label="run")
    for step in range(1, 5):
        assert mon.record({"step": step, "loss": 1.0 / step})
    log = mon.finish()
    assert log.status == FINISHED and len(log.rows) == 4 and seen == log.rows
    assert all(r["run"] == "run" and r["kind"] == "train" for r in log.rows)
    assert progress[-1][0] == 1.0 and progress[0][0] == pytest.approx(0.25)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_loss_stops_the_run_and_keeps_rows(bad):
    mon = Monitor(10)
    assert mon.record({"step": 1, "loss": 0.7})
    assert not mon.record({"step": 2, "loss": bad})
    log = mon.finish()
    assert log.status == DIVERGED and "learning rate" in log.message and "step 2" in log.message
    assert [r["step"] for r in log.rows] == [1, 2]  # the finished step and the one that diverged


def test_exploding_loss_counts_as_divergence():
    mon = Monitor(10)
    assert mon.record({"step": 1, "loss": 2.0})
    assert mon.record({"step": 2, "loss": 15.0})  # 7.5× the start: still allowed
    assert not mon.record({"step": 3, "loss": 55.0})
    assert mon.finish().status == DIVERGED
    assert Monitor(10, explode=None).record({"step": 1, "loss": 1e9})


def test_kl_jump_counts_as_divergence():
    mon = Monitor(10, max_jump={"kl": 8.0})
    for step, kl in enumerate([0.0, 2.0, 7.0, 12.0], 1):
        assert mon.record({"step": step, "loss": 0.1, "kl": kl})
    assert not mon.record({"step": 5, "loss": 0.1, "kl": 25.0})
    assert "kl jumped" in mon.finish().message


def test_should_stop_cancels_and_keeps_partial_results():
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] >= 3

    mon = Monitor(10, should_stop=stop)
    steps = 0
    for step in range(1, 11):
        steps += 1
        if not mon.record({"step": step, "loss": 1.0}):
            break
    log = mon.finish()
    assert steps == 3 and log.status == CANCELLED and len(log.rows) == 3 and "3 of 10" in log.message


def test_progress_raising_cancelled_cancels():
    def progress(fraction, message):
        if fraction >= 0.5:
            raise Cancelled

    mon = Monitor(4, progress)
    assert mon.record({"step": 1, "loss": 1.0})
    assert not mon.record({"step": 2, "loss": 1.0})
    assert mon.finish().status == CANCELLED


def test_eval_rows_do_not_count_as_steps():
    mon = Monitor(2)
    mon.record({"step": 1, "loss": 1.0})
    mon.record({"step": 1, "accuracy": 0.5}, counts_as_step=False)
    log = mon.finish()
    assert len(log.train_rows()) == 1 and log.eval_rows()[0]["accuracy"] == 0.5 and log.last("accuracy") == 0.5


def test_fail_records_a_clean_stop():
    mon = Monitor(5)
    mon.record({"step": 1, "loss": 1.0})
    mon.fail(Diverged("the policy's logits is NaN or infinite"))
    log = mon.finish()
    assert log.status == DIVERGED and "logits" in log.message and len(log.rows) == 1


def test_check_finite():
    check_finite("x", 1.0)
    check_finite("t", torch.ones(3))
    with pytest.raises(Diverged, match="loss"):
        check_finite("loss", float("nan"))
    with pytest.raises(Diverged, match="logits"):
        check_finite("logits", torch.tensor([1.0, float("inf")]))


def test_first_last_fifth():
    assert first_last_fifth([1, 1, 2, 3, 4, 5, 6, 7, 9, 9]) == (1.0, 9.0)
    assert first_last_fifth([3.0]) == (3.0, 3.0)
    assert all(math.isnan(x) for x in first_last_fifth([]))


class _NaNModel(torch.nn.Module):
    """A model whose loss is NaN from the start: Trainer must report it, not hide it."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x=None, labels=None):
        return {"loss": (self.w * x.float()).sum() * float("nan")}


def test_trainer_callback_stops_trainer_on_nan():
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    data = Dataset.from_dict({"x": [[1.0]] * 32, "labels": [0] * 32})
    mon = Monitor(8)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            max_steps=8,
            per_device_train_batch_size=4,
            logging_steps=1,
            logging_nan_inf_filter=False,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            use_cpu=True,
        )
        trainer = Trainer(model=_NaNModel(), args=args, train_dataset=data, callbacks=[mon.trainer_callback()])
        quiet_trainer(trainer)
        trainer.train()
    log = mon.finish()
    assert log.status == DIVERGED and "nan" in log.message.lower()
    assert len(log.train_rows()) == 1 and trainer.state.global_step == 1  # stopped right after the first step
