"""engine.training.classifier_report: chapter 3's results as records (no training: small stand-ins)."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from engine.training.callbacks import DIVERGED, FINISHED, RunLog
from engine.training.classifier_report import (
    classify_lines,
    dataset_examples,
    first_texts,
    loop_status,
    loop_summary,
    text_lines,
)


def _overview():
    train = {"text": [f"t{i}" for i in range(8)], "label": [0, 1, 0, 1, 0, 1, 0, 1], "article": list("abcdefgh")}
    return SimpleNamespace(dataset={"train": train}, labels=["zero", "one"])


def _comparison(loop_status=FINISHED, gap=0.0):
    rows = [{"kind": "train", "step": 1, "loss": 1.0}, {"kind": "eval", "epoch": 1, "accuracy": 0.5}]
    trainer = RunLog("Trainer", list(rows), FINISHED)
    loop = RunLog("PyTorch loop", list(rows), loop_status, "nan loss" if loop_status != FINISHED else "")
    return SimpleNamespace(
        trainer=trainer,
        loop=loop,
        seconds={"Trainer": 1.234, "PyTorch loop": 2.0},
        prep=SimpleNamespace(dataset={"test": {"label": [0, 0, 0, 1]}}),
        max_loss_gap=gap,
        cfg=SimpleNamespace(hidden=8, layers=1),
        loop_model=torch.nn.Linear(3, 2),
    )


def test_examples_and_texts():
    ex = dataset_examples(_overview(), n=3)
    assert [(e.text, e.label, e.article) for e in ex] == [("t0", "zero", "a"), ("t1", "one", "b"), ("t2", "zero", "c")]
    assert first_texts(_overview()) == ["t0", "t1", "t2"]


def test_loop_summary():
    s = loop_summary(_comparison())
    assert [(r.label, r.steps, r.accuracy, r.seconds) for r in s.runs] == [
        ("Trainer", 1, 0.5, 1.2),
        ("PyTorch loop", 1, 0.5, 2.0),
    ]
    assert s.majority == 0.75 and s.same_losses and s.params == 8 and s.device == "cpu"
    assert loop_summary(_comparison(gap=float("nan"))).max_loss_gap is None
    assert not loop_summary(_comparison(gap=0.1)).same_losses


def test_loop_status_names_the_run_that_did_not_finish():
    assert loop_status(_comparison()) == (FINISHED, "")
    assert loop_status(_comparison(DIVERGED)) == (DIVERGED, "nan loss")


def test_text_lines_and_predictions(monkeypatch):
    assert text_lines(" a \n\n b\n" + "x\n" * 30) == ["a", "b"] + ["x"] * 18
    fake = lambda model, tok, lines: [[{"label": "L", "score": 0.9}] for _ in lines]  # noqa: E731
    monkeypatch.setattr("engine.training.classifier.classify", fake)
    preds = classify_lines(None, None, ["a", "b"])
    assert [(p.text, p.top) for p in preds] == [("a", [("L", 0.9)]), ("b", [("L", 0.9)])]


def test_the_shipped_run_reads_back_as_the_pages_records():
    from engine.core.precomputed import load_precomputed
    from engine.training.classifier_report import EXAMPLE_LINES, loops_from_shipped

    pre = load_precomputed("ch03_loops")
    assert pre is not None and pre.command == "python -m engine hf-train --save-precomputed"
    shown = loops_from_shipped(pre.data)
    s = shown.summary
    runs = [(r.label, r.status, r.steps) for r in s.runs]
    assert runs == [("Trainer", FINISHED, 180), ("PyTorch loop", FINISHED, 180)]
    assert s.same_losses and s.max_loss_gap == 0.0 and s.runs[0].accuracy == s.runs[1].accuracy
    assert {(r["run"], r["kind"]) for r in shown.rows} == {
        (run, kind) for run in ("Trainer", "PyTorch loop") for kind in ("train", "eval")
    }
    assert [p.text for p in shown.predictions] == list(EXAMPLE_LINES)
    for p in shown.predictions:
        scores = [score for _, score in p.top]
        assert len(p.top) == 3 and scores == sorted(scores, reverse=True) and all(x.startswith("제") for x, _ in p.top)
