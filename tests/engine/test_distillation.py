"""engine.compression.distillation: the KD loss; a soft-label student beats its hard-label twin on unseen essays."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.compression.distillation import (
    TinyStudent,
    contexts,
    corpus,
    distill,
    distillation_docs,
    distillation_loss,
    teacher_targets,
    train_students,
)
from engine.core.textinput import InputError


def test_contexts_pad_the_start():
    ctx = contexts(torch.tensor([5, 6, 7, 8]), 3, pad=0)
    assert ctx.tolist() == [[0, 0, 5], [0, 5, 6], [5, 6, 7]]


def test_distillation_loss_is_scaled_kl():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(4, 10, generator=g), torch.randn(4, 10, generator=g)
    p = F.softmax(t / 2, -1)
    manual = (p * (p.log() - F.log_softmax(s / 2, -1))).sum(-1).mean() * 4
    assert distillation_loss(s, t, 2.0) == pytest.approx(float(manual), rel=1e-5)
    assert float(distillation_loss(t, t, 3.0)) == pytest.approx(0.0, abs=1e-6)


def test_corpus_has_provenance_and_split():
    c = corpus()
    assert "SmolLM2" in c["generated_by"]["model"] and c["generated_by"]["how"]
    train, test = distillation_docs()
    assert len(train) == 6 and len(test) == 2


def test_student_embeddings_are_frozen():
    emb = torch.randn(20, 8)
    s = TinyStudent(emb, context=3, hidden=4)
    assert not s.embed.weight.requires_grad
    assert s.trainable_parameters() == 3 * 8 * 4 + 4 + 4 * 20 + 20
    assert s(torch.tensor([[0, 1, 20]])).shape == (1, 20)  # index 20 is the padding row


@pytest.fixture(scope="module")
def small_data(chat_lm):
    train, test = distillation_docs()
    return teacher_targets(chat_lm, [d[:700] for d in train[1:4]], [test[1][:700]])


def test_soft_student_is_less_surprised_on_unseen_text(small_data):
    r = train_students(small_data, epochs=60)
    soft, hard = r.final["soft"], r.final["hard"]
    assert soft.epoch == hard.epoch == 60
    assert soft.test_nll < hard.test_nll  # the hard-label student grows confidently wrong
    assert 0 <= soft.test_accuracy <= 1 and 0 <= hard.test_agreement <= 1
    assert 0 < r.teacher_accuracy <= 1 and 0 < r.coverage <= 1
    assert r.student_params < r.teacher_params / 100 if r.teacher_params else True


def test_cancel_keeps_history(small_data):
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 5

    r = train_students(small_data, epochs=100, should_stop=stop)
    assert r.cancelled and r.final["soft"].epoch == 5


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"epochs": 10**6}, {"temperature": 0.0}, {"alpha": 2.0}])
def test_bad_settings(small_data, kwargs):
    with pytest.raises(InputError):
        train_students(small_data, **kwargs)


def test_too_short_documents(chat_lm):
    with pytest.raises(InputError):
        teacher_targets(chat_lm, ["hi"], ["there"])


@pytest.mark.slow
def test_default_run_soft_beats_hard(chat_lm):
    r = distill(chat_lm)
    soft, hard = r.final["soft"], r.final["hard"]
    assert soft.test_nll < hard.test_nll
    assert soft.test_agreement > hard.test_agreement
    assert soft.test_accuracy > hard.test_accuracy
    assert r.teacher_accuracy > soft.test_accuracy
