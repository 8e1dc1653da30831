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


def test_shipped_demos_rebuild_what_a_run_returns():
    """Every run-only demo of page 5 ships a result (assets/precomputed/ch05_*.json) made by its recorded command,
    and it turns back into the objects a live run returns, so the page draws both the same way."""
    from engine.training import shipped_demo
    from engine.training.efficient_report import DEMOS, demo_command, demo_record

    for demo in DEMOS:
        shipped = shipped_demo(demo)
        assert shipped is not None, f"assets/precomputed/ch05_{demo}.json is missing"
        assert shipped.pre.command == demo_command(demo)
        assert demo_record(demo, shipped.result) == shipped.pre.data  # a lossless round trip
    rows = shipped_demo("measure").result
    assert [r.mode for r in rows] == list(MODES) and {x.ratio for x in measured_view(rows).lines} == {1.0}
    acc = shipped_demo("accumulation").result
    assert acc.max_abs_diff < 1e-12 and accumulation_view(acc).change < -0.5  # 4 micro-batches: about 1/4
    ck = shipped_demo("checkpointing").result
    assert [x.checkpointing for x in checkpointing_lines(ck)] == ["off", "on"] and ck.grad_max_diff == 0.0
    assert ck.ratio("activations") < 0.5
    logs = shipped_demo("train").result
    assert list(logs) == list(MODES) and all(log.losses[-1] < log.losses[0] for log in logs.values())
    assert shipped_demo("merge").result.max_abs_diff < 1e-3 and shipped_demo("qlora_load").result.ratio < 0.4


def test_book_peak_is_only_for_full_fine_tuning():
    lines = book_lines()
    assert {b.mode for b in lines if b.peak is None} == {"load", "lora", "qlora"}
    assert all(isinstance(b.note, dict) and set(b.note) == {"ko", "en"} for b in lines if b.note)
