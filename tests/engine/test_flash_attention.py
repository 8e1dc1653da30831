"""engine.inference.flash_attention: tiled attention with an online softmax equals standard attention, and the memory
traffic each algorithm counts while it runs equals the paper's closed-form analysis."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.inference.flash_attention import (
    Traffic,
    compare_on_random,
    flash_attention,
    flash_block_sizes,
    measure_sdpa_memory,
    standard_attention_counted,
    time_sdpa_backends,
    traffic_formula,
    traffic_table,
)
from engine.lm.attention import scaled_dot_product_attention as scratch_sdpa

SHAPES = [(1, 1, 1), (7, 7, 3), (64, 64, 16), (50, 80, 16), (80, 50, 16), (129, 129, 32)]  # (T, S, block)


def _qkv(T: int, S: int, D: int = 16, dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(2, 3, T, D, generator=g, dtype=dtype)
    k = torch.randn(2, 3, S, D, generator=g, dtype=dtype)
    v = torch.randn(2, 3, S, D, generator=g, dtype=dtype)
    return q, k, v


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("T", "S", "block"), SHAPES)
def test_flash_equals_standard_attention(T, S, block, causal):
    q, k, v = _qkv(T, S)
    out = flash_attention(q, k, v, causal=causal, block_q=block, block_k=block)
    ours, _ = scratch_sdpa(q, k, v, causal=causal)
    torch_out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert out.shape == ours.shape == torch_out.shape
    assert torch.allclose(out, ours, atol=1e-5, rtol=0)
    assert torch.allclose(out, torch_out, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("block_q", "block_k"), [(1, 1), (3, 5), (8, 32), (32, 8), (200, 200)])
def test_any_tiling_gives_the_same_result(block_q, block_k):
    q, k, v = _qkv(33, 33, dtype=torch.float64)
    ref = flash_attention(q, k, v, causal=True, block_q=64, block_k=64)
    out = flash_attention(q, k, v, causal=True, block_q=block_q, block_k=block_k)
    assert torch.allclose(out, ref, atol=1e-12, rtol=0)


def test_large_scores_do_not_overflow():
    # exp(1000) overflows; the running max keeps every exponent ≤ 0
    q, k, v = _qkv(20, 20)
    q = q * 300
    out = flash_attention(q, k, v, block_q=4, block_k=4)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v), atol=1e-4)


def test_standard_counted_equals_torch():
    q, k, v = _qkv(24, 24)
    for causal in (False, True):
        out = standard_attention_counted(q, k, v, causal=causal)
        assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, is_causal=causal), atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("T", "S", "block_q", "block_k"), [(37, 37, 8, 16), (50, 80, 16, 8), (64, 64, 64, 64)])
def test_counted_traffic_matches_formula(T, S, block_q, block_k, causal):
    q, k, v = _qkv(T, S)
    tf, ts = Traffic(), Traffic()
    flash_attention(q, k, v, causal=causal, block_q=block_q, block_k=block_k, traffic=tf)
    standard_attention_counted(q, k, v, causal=causal, traffic=ts)
    f = traffic_formula(T, 16, S, block_q, block_k, causal, batch_heads=6)
    assert (tf.total_reads, tf.total_writes) == (f["flash_reads"], f["flash_writes"])
    assert (ts.total_reads, ts.total_writes) == (f["standard_reads"], f["standard_writes"])
    assert "S" not in tf.reads and "P" not in tf.writes  # the score matrix never leaves "SRAM"


def test_flash_moves_less_and_has_no_quadratic_term():
    rows = traffic_table([1024, 4096], D=64)
    std = {r["T"]: r["total_bytes"] for r in rows if r["method"] == "standard"}
    fl = {r["T"]: r["total_bytes"] for r in rows if r["method"] == "flash"}
    assert fl[1024] < std[1024] and fl[4096] < std[4096]
    # standard ≈ 4·N² elements; flash ≈ (3d + 4)·N²/Bc: both quadratic, flash with a much smaller constant
    assert std[4096] / fl[4096] > std[1024] / fl[1024] > 3


def test_block_sizes_follow_algorithm_1():
    assert flash_block_sizes(64, sram_bytes=100 * 1024, dtype_bytes=2) == (64, 200)  # Bc = ⌈51200 / 256⌉
    assert flash_block_sizes(128, sram_bytes=100 * 1024, dtype_bytes=2) == (100, 100)
    with pytest.raises(ValueError):
        flash_block_sizes(0)


def test_bad_input():
    q, k, v = _qkv(4, 4)
    with pytest.raises(ValueError):
        flash_attention(q, k[..., :8], v)
    with pytest.raises(ValueError):
        flash_attention(q, k, v, block_q=0)
    with pytest.raises(ValueError):
        time_sdpa_backends([0])
    with pytest.raises(ValueError):
        time_sdpa_backends([64], repeats=0)


def test_sdpa_backends_are_timed_and_agree():
    rows = time_sdpa_backends([64], heads=2, D=16, repeats=1)
    names = {r["implementation"] for r in rows}
    assert "engine.lm.attention (scratch)" in names and "flash_attention (scratch, tiled)" in names
    assert any(n.startswith("torch SDPA") for n in names)
    assert all(r["ms"] is None or r["ms"] > 0 for r in rows)


def test_math_backend_allocates_the_score_matrix():
    rows = {r["backend"]: r for r in measure_sdpa_memory(T=256, heads=2, D=16)}
    assert "math" in rows
    math_row = rows["math"]
    assert math_row["peak_bytes"] >= math_row["score_matrix_bytes"]
    flash_row = rows.get("flash")
    if flash_row and flash_row.get("peak_bytes") is not None:  # CPU flash kernel present (torch ≥ 2.3)
        assert flash_row["peak_bytes"] < math_row["peak_bytes"]


def test_compare_on_random_reports_exactness_and_traffic():
    r = compare_on_random(40, D=16, block_q=8, block_k=8, causal=True)
    assert r["max_diff_scratch"] < 1e-5 and r["max_diff_torch"] < 1e-5
    std, fl = r["traffic"]
    assert std["reads (counted)"] + std["writes (counted)"] == std["total (formula)"]
    assert fl["reads (counted)"] + fl["writes (counted)"] == fl["total (formula)"]
    assert r["traffic_ratio"] == pytest.approx(std["total (formula)"] / fl["total (formula)"])
    with pytest.raises(ValueError):
        compare_on_random(0)


def test_tile_count_is_the_loop_the_page_waits_for():
    from engine.inference import tile_count

    assert tile_count(48, 16, 16) == 9 and tile_count(48, 16, 16, causal=True) == 6  # tiles above the diagonal skipped
    assert tile_count(256, 4, 4) == 64 * 64 and tile_count(256, 64, 64) == 16


def test_progress_hears_of_every_kv_tile():
    from engine.inference import compare_on_random

    seen = []
    compare_on_random(32, 8, 8, 8, causal=False, progress=lambda f, m: seen.append((round(f, 2), m)))
    assert seen == [
        (0.0, "K/V tile 1 of 4"),
        (0.25, "K/V tile 2 of 4"),
        (0.5, "K/V tile 3 of 4"),
        (0.75, "K/V tile 4 of 4"),
    ]
