"""engine.training.classifier: the same tiny BERT trained with Trainer and with a plain loop; pipeline; save/reload."""

from __future__ import annotations

import math

import pytest
import torch

from engine.training.callbacks import CANCELLED, DIVERGED, FINISHED
from engine.training.classifier import ClassifierConfig, classify, compare_loops, roundtrip_check, save_and_reload

SMALL = ClassifierConfig(epochs=1, hidden=32, heads=2, max_length=32)


@pytest.fixture(scope="module")
def one_epoch():
    return compare_loops(SMALL)


def test_trainer_and_plain_loop_give_identical_curves(one_epoch):
    r = one_epoch
    assert r.trainer.status == r.loop.status == FINISHED
    t_rows, l_rows = r.trainer.train_rows(), r.loop.train_rows()
    assert len(t_rows) == len(l_rows) == math.ceil(len(r.prep.dataset["train"]) / SMALL.batch_size)
    # same initial weights, batch order, optimizer, schedule, clipping and dropout random numbers
    assert r.max_loss_gap < 1e-5
    assert r.final_accuracy("trainer") == pytest.approx(r.final_accuracy("loop"), abs=1e-9)
    assert 0.0 <= r.final_accuracy("loop") <= 1.0
    for p_t, p_l in zip(r.trainer_model.parameters(), r.loop_model.parameters(), strict=True):
        assert torch.allclose(p_t.detach().cpu(), p_l.detach().cpu(), atol=1e-5)


def test_pipeline_classifies_new_text_with_chapter_names(one_epoch):
    r = one_epoch
    texts = ["대통령은 국군을 통수한다", "  ", "모든 국민은 교육을 받을 권리를 가진다"]
    preds = classify(r.loop_model, r.prep.tokenizer, texts)
    assert len(preds) == 2 and all(len(p) == 3 for p in preds)
    for top in preds:
        assert {x["label"] for x in top} <= set(r.prep.labels)
        assert top[0]["score"] >= top[1]["score"] >= top[2]["score"]
    with pytest.raises(ValueError, match="no text"):
        classify(r.loop_model, r.prep.tokenizer, ["", " "])


def test_save_and_reload_round_trip(one_epoch, tmp_path):
    r = one_epoch
    model, tok = save_and_reload(r.loop_model, r.prep.tokenizer, tmp_path / "clf")
    assert (tmp_path / "clf" / "model.safetensors").is_file() and (tmp_path / "clf" / "config.json").is_file()
    assert model.config.id2label == r.loop_model.config.id2label
    texts = ["국회는 법률안을 의결한다", "법관은 헌법과 법률에 의하여 심판한다"]
    r.loop_model.eval()
    model.eval()
    with torch.no_grad():
        a = r.loop_model(**r.prep.tokenizer(texts, padding=True, return_tensors="pt")).logits
        b = model(**tok(texts, padding=True, return_tensors="pt")).logits
    assert torch.allclose(a, b, atol=1e-6)
    check = roundtrip_check(r.loop_model, r.prep.tokenizer, texts)
    assert check["same_labels"] and check["max_abs_diff"] < 1e-6 and "model.safetensors" in check["files"]


def test_diverging_learning_rate_stops_both_loops_cleanly():
    r = compare_loops(ClassifierConfig(epochs=1, hidden=32, max_length=32, lr=1e4))
    for log in (r.trainer, r.loop):
        assert log.status == DIVERGED and "learning rate" in log.message
        assert 1 <= len(log.train_rows()) <= 3  # stopped within a few steps, the finished ones kept


def test_cancel_keeps_partial_results():
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] >= 3

    r = compare_loops(SMALL, should_stop=stop)
    assert r.trainer.status == CANCELLED and len(r.trainer.train_rows()) == 3
    assert r.loop.status == CANCELLED and not r.loop.train_rows()


@pytest.mark.parametrize("bad", [{"hidden": 30, "heads": 4}, {"lr": 0.0}, {"epochs": 0}, {"dropout": 1.0}])
def test_invalid_settings_are_refused(bad):
    with pytest.raises(ValueError, match="invalid classifier settings"):
        compare_loops(ClassifierConfig(**bad))
