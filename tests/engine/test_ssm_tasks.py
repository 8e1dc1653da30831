"""engine.ssm.tasks: the synthetic tasks' shapes, answer positions, determinism, loss and accuracy."""

from __future__ import annotations

import pytest
import torch

from engine.core.errors import UserError
from engine.ssm.tasks import (
    BLANK,
    FIRST_DATA,
    IGNORE,
    MARKER,
    TaskBatch,
    TaskSpec,
    answer_accuracy,
    answer_loss,
    induction_batch,
    make_batch,
    selective_copy_batch,
)


def test_selective_copy_layout():
    spec = TaskSpec(name="selective_copy", vocab_size=16, n_data=4)
    b = selective_copy_batch(8, 20, spec, torch.Generator().manual_seed(3))
    assert b.inputs.shape == b.targets.shape == (8, 20)
    assert (b.inputs[:, 16:] == MARKER).all()  # the last K positions are the markers
    assert (b.targets[:, :16] == IGNORE).all()  # answers only at the markers
    assert b.answer_mask.sum(dim=1).tolist() == [4] * 8
    for row in range(8):
        context = b.inputs[row, :16]
        data = context[context != BLANK]
        assert len(data) == 4 and (data >= FIRST_DATA).all() and (data < 16).all()
        assert b.targets[row, 16:].tolist() == data.tolist()  # the data tokens, in reading order
        assert b.answers[row].tolist() == data.tolist()
    assert not (b.inputs[:, :16] == MARKER).any()


def test_induction_layout():
    spec = TaskSpec(name="induction", vocab_size=16)
    b = induction_batch(16, 12, spec, torch.Generator().manual_seed(5))
    assert b.inputs.shape == (16, 12)
    assert (b.inputs[:, -1] == MARKER).all()
    assert b.answer_mask.sum().item() == 16 and b.answer_mask[:, -1].all()
    for row in range(16):
        where = (b.inputs[row, :-1] == MARKER).nonzero().flatten().tolist()
        assert len(where) == 1 and where[0] <= 9  # exactly one earlier marker, with its value after it
        assert b.targets[row, -1].item() == b.inputs[row, where[0] + 1].item() >= FIRST_DATA


@pytest.mark.parametrize("task", ["selective_copy", "induction"])
def test_seeded_and_different_seeds(task):
    spec = TaskSpec(name=task)
    a, b, c = (make_batch(spec, 4, 32, seed=s) for s in (7, 7, 8))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)


def test_exact_seeded_values():
    b = make_batch(TaskSpec(n_data=2), 1, 8, seed=0)
    assert b.inputs.shape == (1, 8) and b.inputs[0, -2:].tolist() == [MARKER, MARKER]
    again = make_batch(TaskSpec(n_data=2), 1, 8, seed=0)
    assert b.inputs.tolist() == again.inputs.tolist()


def _hand_batch() -> TaskBatch:
    inputs = torch.tensor([[2, 0, 3, 1, 1], [0, 4, 5, 1, 1]])
    targets = torch.tensor([[IGNORE, IGNORE, IGNORE, 2, 3], [IGNORE, IGNORE, IGNORE, 4, 5]])
    return TaskBatch(inputs, targets, TaskSpec(n_data=2, vocab_size=6))


def test_accuracy_on_a_hand_made_case():
    batch = _hand_batch()
    logits = torch.zeros(2, 5, 6)
    # row 0: both answers right; row 1: first right, second wrong (predicts 2 instead of 5)
    logits[0, 3, 2] = logits[0, 4, 3] = 1.0
    logits[1, 3, 4] = logits[1, 4, 2] = 1.0
    logits[:, :3, 5] = 9.0  # non-answer positions never count
    acc = answer_accuracy(logits, batch)
    assert acc.token == 0.75 and acc.sequence == 0.5 and acc.n_sequences == 2


def test_loss_counts_answers_only():
    batch = _hand_batch()
    logits = torch.zeros(2, 5, 6)
    assert answer_loss(logits, batch).item() == pytest.approx(torch.log(torch.tensor(6.0)).item())
    logits[:, :3] = torch.randn(2, 3, 6) * 10  # changes outside the answers do not move the loss
    assert answer_loss(logits, batch).item() == pytest.approx(torch.log(torch.tensor(6.0)).item())


@pytest.mark.parametrize(
    ("spec", "length", "code"),
    [
        (TaskSpec(), 0, "ssm.task.bad_length"),
        (TaskSpec(), -5, "ssm.task.bad_length"),
        (TaskSpec(n_data=4), 11, "ssm.task.bad_length"),  # room for 4 data tokens, 4 blanks and 4 markers: 12
        (TaskSpec(), 10**6, "ssm.task.bad_length"),
        (TaskSpec(name="induction"), 3, "ssm.task.bad_length"),
        (TaskSpec(name="copy"), 64, "input.unknown_choice"),
        (TaskSpec(vocab_size=3), 64, "input.out_of_range"),
        (TaskSpec(n_data=0), 64, "input.out_of_range"),
    ],
)
def test_bad_sizes_have_codes(spec, length, code):
    with pytest.raises(UserError) as info:
        make_batch(spec, 2, length, seed=0)
    assert info.value.code == code
