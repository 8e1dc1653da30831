"""engine.inference.batching_throughput: roofline arithmetic, left padding, batched greedy = one-by-one greedy."""

from __future__ import annotations

import pytest

from engine.core.textinput import InputError
from engine.inference.batching_throughput import (
    batch_prompts,
    batch_sweep,
    batched_greedy,
    decode_intensity,
    gpu_specs,
    left_pad,
    measure_machine,
    parse_batch_sizes,
    ridge_point,
    roofline,
)
from engine.inference.kv_cache import greedy_with_cache


def test_intensity_grows_with_batch():
    assert decode_intensity(1, 2) == 1.0
    assert decode_intensity(64, 2) == 64.0
    assert decode_intensity(8, 4) == 4.0


def test_roofline_memory_then_compute_bound():
    a100 = next(g for g in gpu_specs() if "A100" in g["name"])
    ridge = ridge_point(a100["peak_tflops"], a100["bandwidth_tbs"])
    assert 140 < ridge < 160
    rows = roofline(7e9, [1, 16, 1024], a100["peak_tflops"], a100["bandwidth_tbs"])
    assert [r["bound"] for r in rows] == ["memory", "memory", "compute"]
    # batch 1, 7B fp16 on 2 TB/s: 14 GB per step -> about 146 tokens/s at best
    assert rows[0]["tokens_per_s"] == pytest.approx(2.039e12 / 14e9, rel=1e-6)
    assert rows[1]["tokens_per_s"] == pytest.approx(16 * rows[0]["tokens_per_s"])  # free while memory-bound
    assert all(g["source"] for g in gpu_specs())


def test_left_pad():
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


@pytest.mark.parametrize("text", ["0", "1,99", "x", ""])
def test_bad_batch_sizes(text):
    with pytest.raises(InputError):
        parse_batch_sizes(text)


def test_machine_roofline_is_measured():
    m = measure_machine("cpu", size=256, copy_mb=16, repeats=1)
    assert m.matmul_gflops > 0 and m.copy_gbs > 0 and m.ridge > 0


def test_batched_equals_one_by_one(chat_lm):
    prompts = batch_prompts(chat_lm, 3)
    assert len({len(p) for p in prompts}) > 1  # different lengths: padding really happens
    batched = batched_greedy(chat_lm, prompts, 5)
    for prompt, row in zip(prompts, batched, strict=True):
        alone, _ = greedy_with_cache(chat_lm.model, prompt, 5)
        assert row == alone


def test_sweep_rows_and_cancel(chat_lm):
    rows = batch_sweep(chat_lm, [1, 2], new_tokens=3)
    assert [r.batch for r in rows] == [1, 2]
    assert all(
        r.tokens_per_s > 0 and r.tokens_per_s == pytest.approx(r.batch * r.per_sequence_tokens_per_s, rel=1e-3)
        for r in rows
    )  # both rounded to 3 decimals
    assert batch_sweep(chat_lm, [1, 2], new_tokens=3, should_stop=lambda: True) == []
