"""`python -m engine`: the CLI, run as a real subprocess (JSON on stdout, one clear error line on failure)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.models.registry import ROLES, installed

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMLAB_ONLINE", "LLMLAB_OFFLINE"))}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_lists_commands():
    r = run_cli("--help", timeout=60)
    assert r.returncode == 0
    for command in ("models", "serve", "tokenize", "attention"):
        assert command in r.stdout


def test_models_json_one_object_per_role(chat_lm, base_ko_lm):  # fixtures: conversions already cached
    r = run_cli("models", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert [row["role"] for row in rows] == [r for r in ROLES if installed(r)]  # optional roles only when installed
    for row in rows:
        assert set(row) == {"role", "source", "model_id", "path", "sha256_ok", "bytes", "load_seconds"}
        assert row["source"] == "offline" and row["sha256_ok"] is True
        assert Path(row["path"]).exists() and row["bytes"] > 1_000_000
        if ROLES[row["role"]].served_only:
            assert row["load_seconds"] is None  # the llama.cpp server runs it; never loaded in-process
        else:
            assert 0 < row["load_seconds"] < 30
    assert rows[0]["model_id"] == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_models_no_load_and_unknown_role():
    r = run_cli("models", "chat", "nope", "--json", "--no-load", timeout=120)
    assert r.returncode == 1  # one role failed
    chat, nope = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert chat["role"] == "chat" and chat["sha256_ok"] is True and "load_seconds" not in chat
    assert nope["role"] == "nope" and "known roles" in nope["error"] and "Traceback" not in r.stderr


def test_tokenize_json(chat_lm):
    r = run_cli("tokenize", "--model", "chat", "--json", "hello world", timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out == {"model": "chat", "tokens": ["hello", "Ġworld"], "ids": [28120, 905], "count": 2, "truncated": False}


def test_tokenize_korean_with_kiwi():
    r = run_cli("tokenize", "--model", "kiwi", "--json", "대한민국의 수도는 서울입니다.", timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["count"] == 8 and out["tokens"][:2] == ["대한민국/NNP", "의/JKG"] and out["ids"] == [None] * 8


def test_tokenize_empty_text_is_a_clear_error():
    r = run_cli("tokenize", "--model", "base-ko", "--json", "", timeout=120)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.strip() == "error: empty text"
    assert "Traceback" not in r.stderr


def test_attention_json_square_matrix(chat_lm):
    r = run_cli("attention", "--model", "chat", "--layer", "0", "--head", "0", "--json", "the cat sat", timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["tokens"] == ["the", "␣cat", "␣sat"]
    assert (out["model"], out["layer"], out["head"], out["truncated_tokens"]) == ("chat", 0, 0, 0)
    n = len(out["tokens"])
    assert len(out["matrix"]) == n and all(len(row) == n for row in out["matrix"])
    for i, row in enumerate(out["matrix"]):
        assert sum(row) == pytest.approx(1.0, abs=1e-4)
        assert all(x == 0 for x in row[i + 1 :])


def test_attention_head_minus_one_is_the_average(chat_lm):
    r = run_cli("attention", "--model", "chat", "--head", "-1", "--json", "the cat sat", timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["head"] is None
