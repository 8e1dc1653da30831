"""engine/commands/lighter_models.py through the real CLI: JSON contracts and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KV_KEYS = {"new_tokens", "with_cache_s", "without_cache_s", "speedup", "kv_bytes_measured", "kv_bytes_formula"}
QUANT_KEYS = {"precision", "bytes", "tokens_per_s", "perplexity_ko", "perplexity_en"}


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def rows(r: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def test_help_lists_chapter_commands():
    out = cli("--help", timeout=120).stdout
    for command in ("kv-bench", "quant-bench", "batch-bench", "decode", "layer-quant", "distill"):
        assert command in out


def test_kv_bench_json_contract(chat_lm):
    r = cli("kv-bench", "--new-tokens", "2,3", "--json", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    out = rows(r)
    assert [row["new_tokens"] for row in out] == [2, 3]
    for row in out:
        assert set(row) >= KV_KEYS
        assert row["kv_bytes_measured"] == row["kv_bytes_formula"]


@pytest.mark.parametrize("counts", ["0", "64,abc", "99999"])
def test_kv_bench_bad_counts(counts):
    r = cli("kv-bench", "--new-tokens", counts, "--json", timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_quant_bench_unknown_precision():
    r = cli("quant-bench", "--precisions", "fp32,int3", "--json", timeout=120)
    assert r.returncode == 2 and "int3" in r.stderr


@pytest.mark.parametrize(
    "args",
    [["--max-tokens", "0"], ["--strategy", "sample", "--temperature", "0"], ["--strategy", "sample", "--top-p", "1.5"]],
)
def test_decode_bad_settings(chat_lm, args):
    r = cli("decode", "hello", "--json", "--quiet", *args, timeout=300)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_decode_json(chat_lm):
    r = cli("decode", "What is 2+2?", "--max-tokens", "3", "--json", "--quiet", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (row,) = rows(r)
    assert row["strategy"] == "greedy" and row["new_tokens"] == 3 and len(row["steps"]) == 3


@pytest.mark.slow
def test_quant_bench_json_contract(chat_lm):
    r = cli("quant-bench", "--precisions", "fp32,nf4", "--speed-tokens", "4", "--json", "--quiet", timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    out = {row["precision"]: row for row in rows(r)}
    assert set(out) == {"fp32", "nf4"}
    for row in out.values():
        assert set(row) >= QUANT_KEYS and row["tokens_per_s"] > 0 and row["perplexity_en"] > 1
    assert out["nf4"]["bytes"] <= 0.35 * out["fp32"]["bytes"]
