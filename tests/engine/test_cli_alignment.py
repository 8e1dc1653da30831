"""`python -m engine align` and `hf-train`: one JSON line per step with the contract's keys; clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = {"method", "step", "reward_mean", "kl", "loss", "seconds"}


def test_align_json_lines_in_process(capsys):
    assert main(["align", "--method", "dpo,ppo", "--steps", "3", "--seed", "0", "--json"]) == 0
    out = capsys.readouterr()
    rows = [json.loads(line) for line in out.out.splitlines() if line.strip()]
    assert len(rows) == 6 and all(set(r) >= CONTRACT for r in rows)
    assert sorted((r["method"], r["step"]) for r in rows) == [(m, s) for m in ("dpo", "ppo") for s in (1, 2, 3)]
    assert "examples" not in rows[0]
    assert "ppo: finished after 3 steps" in out.err


def test_align_reports_divergence(capsys):
    assert main(["align", "--method", "dpo", "--steps", "5", "--lr", "1000", "--json"]) == 1
    err = capsys.readouterr().err
    assert "diverged" in err and "learning rate" in err


def test_align_refuses_unknown_method(capsys):
    assert main(["align", "--method", "ppo,rlhf", "--steps", "2"]) == 2
    assert "error: --method" in capsys.readouterr().err


@pytest.mark.slow
def test_align_as_a_subprocess():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMLAB_ONLINE", "LLMLAB_OFFLINE"))}
    r = subprocess.run(
        [sys.executable, "-m", "engine", "align", "--method", "dpo,ppo", "--steps", "4", "--seed", "1", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert len(rows) == 8 and all(set(row) >= CONTRACT for row in rows)


@pytest.mark.slow
def test_hf_train_as_a_subprocess():
    r = subprocess.run(
        [sys.executable, "-m", "engine", "hf-train", "--epochs", "1", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    summary = rows[-1]
    assert summary["kind"] == "summary" and summary["max_loss_gap"] < 1e-5
    assert summary["accuracy_trainer"] == pytest.approx(summary["accuracy_loop"])
