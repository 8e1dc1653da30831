"""engine.training.checkpointing: activation memory down, same gradients, time measured (never asserted)."""

from __future__ import annotations

import pytest

from engine.core.progress import Cancelled
from engine.training.checkpointing import compare_checkpointing
from engine.training.lora import LoraSpec
from tests.engine._ch05_models import save_tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny"), num_hidden_layers=4)


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_checkpointing_saves_activations_not_gradients(tiny, mode):
    r = compare_checkpointing(tiny, mode=mode, batch=2, seq_len=16, lora=LoraSpec())
    off, on = r.runs
    assert (off.checkpointing, on.checkpointing) == (False, True)
    assert on.activations < off.activations / 2
    assert off.activations == off.estimated and on.activations == on.estimated
    assert on.recompute_layer > 0 and off.recompute_layer == 0
    assert r.grad_max_diff < 1e-5
    assert off.seconds > 0 and on.seconds > 0
    assert r.ratio("activations") < 0.5


def test_cancel_keeps_the_finished_run(tiny):
    def progress(fraction, message):
        if "checkpointing on" in message:
            raise Cancelled

    r = compare_checkpointing(tiny, batch=1, seq_len=8, progress=progress)
    assert r.cancelled and len(r.runs) == 1 and r.grad_max_diff is None


def test_bad_input(tiny):
    with pytest.raises(ValueError):
        compare_checkpointing(tiny, mode="qlora")
    with pytest.raises(ValueError):
        compare_checkpointing(tiny, repeats=0)
