"""Chapter 9's shipped results (engine/rag/shipped.py, assets/precomputed/ch09_*.json): each file is there, says
the command that made it, matches the page's defaults, and the deterministic ones are what the engine computes
now (the cache sweep and the rail evaluation; the store timings and the model's answer are measurements)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.core import load_precomputed
from engine.rag import shipped

ROOT = Path(__file__).resolve().parents[2]
STRINGS = yaml.safe_load((ROOT / "ui" / "strings" / "09_rag.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", shipped.SECTIONS)
def test_every_section_is_shipped_with_its_command(name):
    pre = load_precomputed(name)
    assert pre is not None, f"assets/precomputed/{name}.json is missing: python -m engine rag-precompute --only {name}"
    assert pre.command == f"python -m engine rag-precompute --only {name}"
    assert pre.made and pre.machine


def test_defaults_match_the_page():
    assert STRINGS["ch09.default_question"]["ko"] == shipped.QUESTION
    assert (STRINGS["ch09.pair_a"]["ko"], STRINGS["ch09.pair_b"]["ko"]) == shipped.PAIR
    page = (ROOT / "pages" / "09_rag.py").read_text(encoding="utf-8")
    assert f'param("vd_n", {shipped.STORE_N:_}, int' in page  # the store comparison's default n


def test_shipped_answer_is_a_real_rag_run():
    data = load_precomputed("ch09_answer").data
    rag = data["rag"]
    assert data["question"] == shipped.QUESTION and rag["question"] == shipped.QUESTION
    assert rag["cache"] == "off" and not rag["blocked"]  # a real model call, not a cached answer
    assert rag["answer"].strip() and data["no_rag"].strip()
    assert rag["sources"] == [p["doc_id"] for p in data["passages"]] and rag["sources"]
    assert set(rag["cited"]) <= set(rag["sources"])
    assert [m["role"] for m in data["messages"]] == ["system", "user", "assistant", "user"]  # with the worked example
    assert all(f"[{i}]" in data["messages"][-1]["content"] for i in rag["sources"])  # the passages, tagged
    assert rag["prompt_tokens"] > 0 and 0 < rag["first_token_s"] < rag["latency_s"]
    assert all(0.0 <= p["score"] <= 1.0 for p in data["retrieved"])
    assert [r["rail"] for r in rag["rails"]][:2] == ["injection", "pii"]
    if rag["trace_id"]:
        names = [s["name"] for s in data["spans"]]
        assert names[0] == "rag.query" and {"retrieve", "llm", "rails.output"} <= set(names)


def test_shipped_stores_cover_every_store_and_dataset():
    from engine.rag.vector_db import DATASETS, STORES

    data = load_precomputed("ch09_stores").data
    assert data["n"] == shipped.STORE_N
    assert {(r["store"], r["dataset"]) for r in data["rows"]} == {(s, d) for s in STORES for d in DATASETS}
    for r in data["rows"]:
        assert r["query_ms"] > 0 and 0.0 <= r["recall_at_k"] <= 1.0
        if r["store"] == "exact" or r["dataset"] == "constitution":
            assert r["recall_at_k"] == pytest.approx(1.0, abs=0.02)  # truth itself; 136 vectors are easy for all


@pytest.mark.slow
def test_shipped_cache_sweep_is_what_the_engine_computes():
    data = load_precomputed("ch09_cache").data
    fresh = shipped.cache_data()
    assert fresh["rows"] == data["rows"] and fresh["pair"] == data["pair"]
    assert data["pair"]["similarity"] > 0.99 and not data["pair"]["guard"]["passed"]  # the false hit, caught


@pytest.mark.slow
def test_shipped_rail_metrics_are_what_the_engine_computes():
    data = load_precomputed("ch09_rails").data
    assert shipped.rails_data() == data
    assert {r["rail"] for r in data["test"]} >= {"injection", "pii", "off_topic", "indirect_injection", "grounded"}
