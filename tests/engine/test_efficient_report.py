"""engine.training.efficient_report: chapter 5's records (estimates on the tiny model, stand-ins for runs)."""

from __future__ import annotations

from types import SimpleNamespace

from engine.training import LoraSpec
from engine.training.efficient_report import (
    MIB,
    accumulation_view,
    book_lines,
    checkpointing_lines,
    lora_view,
    measured_view,
    memory_estimate,
    mib,
    train_view,
    zero_view,
)
from engine.training.finetune import TrainLog
from engine.training.memory.estimate import COMPONENTS, MODES
from engine.training.memory.profile import MemoryRow


def test_mib():
    assert mib(None) is None and mib(3 * MIB) == 3.0


def test_zero_view_is_the_papers_example():
    lines = zero_view(7.5, 64, 32.0)
    assert [round(z.total, 1) for z in lines] == [120.0, 31.4, 16.6, 1.9]
    assert [z.fits for z in lines] == [False, True, True, True]


def test_memory_estimate_and_lora_on_tiny():
    est = memory_estimate("tiny", 1, 16)
    assert [x.mode for x in est.lines] == list(MODES)
    assert all(list(x.components) == list(COMPONENTS) for x in est.lines)
    assert all(abs(x.total - sum(x.components.values())) < 0.05 for x in est.lines) and est.free > 0
    view = lora_view("tiny", LoraSpec(r=4, alpha=8))
    assert 0 < view.trainable < view.total and view.share == view.trainable / view.total and view.scaling == 2


def test_measured_view():
    est = dict.fromkeys(COMPONENTS, 2 * MIB)
    rows = [
        MemoryRow("tiny", "full", 1, 16, False, est, measured=dict.fromkeys(COMPONENTS, MIB)),
        MemoryRow("tiny", "lora", 1, 16, False, est, refused="needs about 9 GiB"),
        MemoryRow("tiny", "qlora", 1, 16, False, est, error="diverged"),
    ]
    view = measured_view(rows)
    assert view.refused == [("lora", "needs about 9 GiB")] and view.errors == [("qlora", "diverged")]
    assert len(view.lines) == len(COMPONENTS) and {x.ratio for x in view.lines} == {2.0}
    assert (view.model, view.device) == ("tiny", "cpu")
    assert measured_view([]).model is None


def test_small_views():
    acc = SimpleNamespace(activations_full=4 * MIB, activations_micro=MIB)
    assert accumulation_view(acc).change == -0.75
    run = SimpleNamespace(
        checkpointing=True,
        activations=MIB,
        estimated=MIB,
        recompute_layer=0,
        forward_seconds=0.12345,
        backward_seconds=1.0,
    )
    assert checkpointing_lines(SimpleNamespace(runs=[run]))[0].checkpointing == "on"
    logs = {"full": TrainLog("full", 1e4, [2.0, 1.0], [0.1, 0.3], diverged_at=3)}
    view = train_view(logs)
    assert view.curve == [("full", 1, 2.0), ("full", 2, 1.0)] and view.diverged == [("full", 3, 1e4, 2)]
    assert view.lines[0].losses == "2.000 → 1.000" and view.lines[0].seconds_per_step == 0.2
    assert book_lines() and all(b.book == "OOM" or float(b.book) > 0 for b in book_lines())
