"""`python -m engine memory | zero | finetune`: the chapter 5 CLI contracts, run as real subprocesses."""

from __future__ import annotations

import json

import pytest

from tests.engine.test_cli import run_cli

KEYS = {"weights", "gradients", "optimizer", "activations"}


def _rows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_memory_json_contract_on_tiny():
    r = run_cli("memory", "--model", "tiny", "--batch", "1,2", "--mode", "full,qlora", "--seq-len", "8", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = _rows(r.stdout)
    assert [(x["mode"], x["batch"]) for x in rows] == [("full", 1), ("full", 2), ("qlora", 1), ("qlora", 2)]
    for row in rows:
        assert row["seq_len"] == 8
        assert set(row["estimated"]) == KEYS and set(row["measured"]) == KEYS
        assert all(isinstance(v, int) and v > 0 for v in row["measured"].values())
        for c in ("weights", "gradients", "optimizer"):
            assert abs(row["estimated"][c] - row["measured"][c]) <= 0.1 * row["measured"][c]
    assert rows[2]["measured"]["weights"] <= 0.35 * rows[0]["measured"]["weights"] * 3  # embeddings stay fp32


def _main(capsys, *args: str) -> tuple[int, str, str]:
    """The same entry point in-process (no new interpreter): for the cheap paths."""
    from engine.__main__ import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_memory_estimate_only_needs_no_model(capsys):
    code, out, _ = _main(
        capsys, "memory", "--model", "tiny", "--batch", "4", "--mode", "lora", "--estimate-only", "--json"
    )
    assert code == 0
    (row,) = _rows(out)
    assert row["measured"] is None and set(row["estimated"]) == KEYS


def test_memory_absurd_batch_is_refused(capsys):
    code, out, err = _main(capsys, "memory", "--model", "tiny", "--batch", "100000", "--mode", "full", "--json")
    assert code == 2 and out == ""
    assert err.strip() == "error: batch size must be between 1 and 1024, got 100000"


def test_memory_batch_that_does_not_fit_is_refused_with_estimate(capsys):
    code, out, err = _main(
        capsys, "memory", "--model", "tiny", "--batch", "1024", "--seq-len", "4096", "--mode", "full", "--json"
    )
    assert code == 2
    (row,) = _rows(out)
    assert row["measured"] is None and row["estimated"]["activations"] > 100 * 1024**3
    assert "needs about" in row["refused"] and "refused" in err


def test_memory_bad_mode_is_one_clear_line(capsys):
    code, _, err = _main(capsys, "memory", "--model", "tiny", "--mode", "half", "--json")
    assert code == 2 and "mode must be one of" in err


def test_zero_json(capsys):
    code, out, _ = _main(capsys, "zero", "--params", "7.5e9", "--gpus", "64", "--json")
    assert code == 0
    assert [round(x["total"] / 1e9, 1) for x in _rows(out)] == [120.0, 31.4, 16.6, 1.9]


def test_finetune_diverging_lr_stops_cleanly():
    r = run_cli(
        "finetune", "--model", "tiny", "--mode", "full", "--steps", "8", "--lr", "1e4", "--seq-len", "8", "--json"
    )
    assert r.returncode == 3, r.stderr[-2000:]
    steps = _rows(r.stdout)
    assert "diverged at step" in r.stderr and "Traceback" not in r.stderr
    assert len(steps) < 8 and all(s["loss"] == s["loss"] for s in steps)  # finished steps kept, no NaN among them


@pytest.mark.slow
def test_memory_chat_contract():
    """The issue's command on the real model (minutes on a busy 2-core machine)."""
    r = run_cli(
        "memory", "--model", "chat", "--batch", "1,4", "--mode", "full", "--seq-len", "16", "--json", timeout=1200
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows = _rows(r.stdout)
    assert [x["batch"] for x in rows] == [1, 4]
    for row in rows:
        assert row["measured"]["weights"] == 538_060_032
        for c in KEYS:
            assert row["estimated"][c] == row["measured"][c]


@pytest.mark.slow
def test_memory_demo_prints_what_the_page_ships():
    """`memory-demo accumulation` (without --save-precomputed) recomputes the shipped result: same gradients."""
    from engine.training import shipped_demo

    r = run_cli("memory-demo", "accumulation", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    (line,) = _rows(r.stdout)
    shipped = shipped_demo("accumulation").pre.data
    assert line["demo"] == "accumulation"
    for key in ("batch", "micro_batch", "steps", "dtype", "activations_full", "activations_micro", "loss_full"):
        assert line["data"][key] == shipped[key], key
