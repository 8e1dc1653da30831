"""engine.ssm.bench: ms/token and measured state bytes (constant for Mamba, growing for the KV cache); typed errors.
No timing asserts: only keys, byte counts and codes."""

from __future__ import annotations

import pytest

from engine.core.errors import UserError
from engine.core.progress import Cancelled
from engine.ssm.bench import BenchConfig, check_lengths, run_bench

TINY = BenchConfig(
    lengths=(8, 16),
    train_lengths=(8,),
    repeats=1,
    train_repeats=1,
    d_model=8,
    n_layer=1,
    d_state=4,
    n_head=2,
    threads=1,
)


@pytest.fixture(scope="module")
def report():
    rows: list[dict] = []
    rep = run_bench(TINY, on_row=rows.append)
    rep.rows_seen = rows
    return rep


def test_rows_and_keys(report):
    assert [(r["arch"], r["length"]) for r in report.decode] == [
        ("transformer", 8),
        ("mamba", 8),
        ("transformer", 16),
        ("mamba", 16),
    ]
    for row in report.decode:
        assert {"arch", "length", "ms_per_token", "ms_runs", "state_bytes", "state"} <= set(row)
        assert row["ms_per_token"] > 0 and len(row["ms_runs"]) == 1
    assert [r["arch"] for r in report.train_step] == ["transformer", "mamba_parallel", "mamba_sequential"]
    assert all(r["ms"] > 0 and r["length"] == 8 and r["batch"] == 1 for r in report.train_step)
    assert len(report.rows_seen) == 7 and {r["kind"] for r in report.rows_seen} == {"decode", "train_step"}
    assert report.machine_before["torch_threads"] == 1 and "load_average" in report.machine_after
    assert set(report.params) == {"mamba", "transformer"}
    assert set(report.to_json()) >= {"decode", "train_step", "params", "machine_before", "seconds", "config"}


def test_state_bytes_constant_for_mamba_growing_for_attention(report):
    by = {(r["arch"], r["length"]): r["state_bytes"] for r in report.decode}
    assert by[("mamba", 8)] == by[("mamba", 16)]
    # the KV cache: keys and values, 1 layer, d_model 8 numbers each, float32, per position
    assert by[("transformer", 8)] == 2 * 1 * 8 * 4 * 8
    assert by[("transformer", 16)] == 2 * by[("transformer", 8)]
    # the Mamba state: conv window (d_inner × (d_conv-1)) + SSM state (d_inner × d_state), float32
    assert by[("mamba", 8)] == (16 * 3 + 16 * 4) * 4


@pytest.mark.parametrize("lengths", [(0,), (-4,), (10**6,), (16, 8193)])
def test_absurd_lengths_have_a_code(lengths):
    with pytest.raises(UserError) as info:
        check_lengths(lengths)
    assert info.value.code == "ssm.bench.bad_length"


def test_too_many_or_no_lengths():
    with pytest.raises(UserError) as info:
        check_lengths(range(1, 20))
    assert info.value.code == "input.too_many"
    with pytest.raises(UserError) as info:
        check_lengths(())
    assert info.value.code == "input.empty_list"
    with pytest.raises(UserError) as info:
        run_bench(BenchConfig(lengths=(8,), repeats=0))
    assert info.value.code == "input.out_of_range"


def test_stop_keeps_rows():
    rows: list[dict] = []
    with pytest.raises(Cancelled) as info:
        run_bench(TINY, on_row=rows.append, should_stop=lambda: len(rows) >= 2)
    assert len(info.value.partial) == 2 == len(rows)


def test_cli_refuses_bad_lengths(capsys):
    from engine.__main__ import main

    assert main(["ssm-bench", "--lengths", "0", "--json"]) == 2
    assert "cannot be measured" in capsys.readouterr().err
    assert main(["ssm-bench", "--lengths", "100000", "--json"]) == 2
    assert main(["ssm-train", "--length", "2", "--json"]) == 2
