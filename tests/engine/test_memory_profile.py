"""engine.training.memory.profile: estimate vs measurement per setting, refusals before loading, cancel keeps rows."""

from __future__ import annotations

import pytest

from engine.core.progress import Cancelled
from engine.training.memory.estimate import Breakdown
from engine.training.memory.profile import (
    MemoryRefused,
    available_memory_bytes,
    check_fits,
    estimate_rows,
    memory_profile,
    parse_list,
)
from tests.engine._ch05_models import save_tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny"))


def test_profile_rows_estimated_equals_measured(tiny):
    seen = []
    result = memory_profile(tiny, ["full", "lora", "qlora"], [1, 2], seq_len=8, on_row=seen.append)
    assert not result.cancelled and seen == result.rows
    assert [(r.mode, r.batch) for r in result.rows] == [(m, b) for m in ("full", "lora", "qlora") for b in (1, 2)]
    for row in result.rows:
        assert row.refused is None and row.error is None
        assert row.measured == row.estimated
        assert row.ratio("weights") == 1.0
        d = row.as_dict()
        assert {"mode", "batch", "seq_len", "estimated", "measured"} <= set(d)
    full, qlora = result.rows[0], result.rows[4]
    assert qlora.measured["weights"] < full.measured["weights"]
    assert qlora.measured["gradients"] < full.measured["gradients"] / 10


def test_too_big_is_refused_with_the_estimate(tiny):
    result = memory_profile(tiny, ["full"], [1, 2], seq_len=8, available=1_000)
    assert all(r.refused and r.measured is None for r in result.rows)
    assert "needs about" in result.rows[0].refused and "free" in result.rows[0].refused


def test_check_fits_message_shows_every_component():
    est = Breakdown(weights=4 * 1024**3, gradients=4 * 1024**3, optimizer=8 * 1024**3, activations=1024**3)
    with pytest.raises(MemoryRefused) as info:
        check_fits(est, "full training at batch 4096", available=2 * 1024**3)
    message = str(info.value)
    for word in ("17.000 GiB", "weights 4.000 GiB", "optimizer 8.000 GiB", "activations 1.000 GiB", "2.000 GiB"):
        assert word in message
    assert info.value.estimate is est
    check_fits(est, "fine", available=100 * 1024**3)


@pytest.mark.parametrize(("batches", "seq_len"), [([0], 8), ([100_000], 8), ([1], 1), ([1], 10**6)])
def test_absurd_settings_are_refused(tiny, batches, seq_len):
    with pytest.raises(ValueError, match="between"):
        estimate_rows(tiny, ["full"], batches, seq_len)


def test_cancel_keeps_finished_rows(tiny):
    def progress(fraction, message):
        if message.startswith("measuring lora"):
            raise Cancelled

    result = memory_profile(tiny, ["full", "lora"], [1], seq_len=8, progress=progress)
    assert result.cancelled and [r.mode for r in result.rows] == ["full"]
    assert result.rows[0].measured is not None
    calls = iter([False, False, True, True])
    result = memory_profile(tiny, ["full"], [1, 2], seq_len=8, should_stop=lambda: next(calls))
    assert result.cancelled and [r.batch for r in result.rows] == [1]


def test_parse_list_and_available_memory(tiny):
    assert parse_list("1, 4,", int) == [1, 4]
    assert parse_list(["full"]) == ["full"]
    with pytest.raises(ValueError, match="cannot read"):
        parse_list("1,x", int)
    with pytest.raises(ValueError, match="empty"):
        parse_list(" , ", int)
    assert available_memory_bytes() > 0
    with pytest.raises(ValueError, match="mode"):
        estimate_rows(tiny, ["half"], [1], 8)
