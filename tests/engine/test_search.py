"""Search engine: bad input, the CLI JSON contract, and (slow) the Korean retriever's held-out goals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.core.textinput import InputError
from engine.retrieval.query import MAX_QUERY_CHARS, check_query

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "query, message", [("", "empty"), ("   ", "empty"), ("😀🎉", "no letters"), ("가" * 10_000, "10,000 characters")]
)
def test_bad_queries_are_refused_clearly(query, message):
    with pytest.raises(InputError, match=message):
        check_query(query)


def test_other_scripts_are_searched_with_a_note():
    for query in ("president term of office", "大統領の任期", "总统任期"):
        text, notes = check_query(query)
        assert text == query and notes and "Hangul" in notes[0]
    assert check_query("대통령 임기 president")[1] == []
    assert len(check_query("가" * MAX_QUERY_CHARS)[0]) == MAX_QUERY_CHARS


def test_cli_bad_query_answers_before_loading_anything():
    r = run_cli("search", "--corpus", "constitution", "--method", "bm25", "--json", "😀", timeout=120)
    assert r.returncode == 2
    row = json.loads(r.stdout.strip())
    assert row["results"] == [] and "error" in row
    assert "Traceback" not in r.stderr


def test_a_korean_corpus_notes_a_query_without_hangul_and_others_do_not():
    assert check_query("president term", "ko")[1] and check_query("president term", "en")[1] == []


def test_pipeline_names_and_the_cli_alias():
    """The engine's names are the only ones; on the command line `hybrid` is the alias of the best pipeline."""
    from engine.retrieval import BEST_PIPELINE, METHODS, PIPELINES
    from engine.retrieval.pipeline import CLI_ALIASES, cli_pipeline

    assert METHODS == ("bm25", "dense", "hybrid", "rerank") == tuple(PIPELINES)
    assert BEST_PIPELINE == "rerank" and CLI_ALIASES == {"hybrid": BEST_PIPELINE}
    assert cli_pipeline("hybrid") == BEST_PIPELINE
    assert cli_pipeline("hybrid", rerank=False) == "hybrid"  # --no-rerank: the engine's plain fusion
    assert cli_pipeline("hybrid", fusion="rrf") == "hybrid"
    assert cli_pipeline("hybrid", reranker_built=False) == "hybrid"  # falls back (the CLI adds a note)
    for name in METHODS:
        if name not in CLI_ALIASES:
            assert cli_pipeline(name) == name


def test_cli_help_says_what_hybrid_means():
    r = run_cli("search", "--help", timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    text = " ".join(r.stdout.split())
    assert "`--method hybrid` runs `rerank`, the best pipeline" in text and "--no-rerank" in text


def test_search_hits_are_the_one_hit_type():
    """A search returns retrieval's Hit: rank, title and text filled, in rank order."""
    from engine.core.corpus import Doc
    from engine.retrieval import Hit, SearchResult
    from engine.retrieval.pipeline import search

    class Stub:  # the Retrievers shape: three documents, fixed scores
        def __init__(self):
            self.docs = [Doc("a", "A", "가"), Doc("b", "B", "나"), Doc("c", "C", "다")]
            self.alpha, self.reranker, self.language = 0.5, None, "ko"

        def bm25_scores(self, query, tokenizer="kiwi"):
            return np.array([0.0, 2.0, 1.0])

        def dense_scores(self, query):
            return np.array([0.9, 0.1, 0.5])

        def hybrid_scores(self, query, fusion="convex", rrf_k=60.0, alpha=None):
            return self.bm25_scores(query) + self.dense_scores(query)

    result = search(Stub(), "나다", "bm25", k=2)
    assert isinstance(result, SearchResult) and result.method == "bm25"
    assert result.hits == [Hit("b", 2.0, rank=1, title="B", text="나"), Hit("c", 1.0, rank=2, title="C", text="다")]
    assert [h.doc_id for h in search(Stub(), "나다", "dense", k=3).hits] == ["a", "c", "b"]
    with pytest.raises(ValueError, match="LM reranker is not built"):
        search(Stub(), "나다", "rerank")


def test_uploaded_document_set_end_to_end(tmp_path, monkeypatch):
    """A corpus spec for three uploaded documents: build (tiny encoder, no reranker), then BM25 and hybrid search."""
    from engine.core.corpus import documents_corpus
    from engine.retrieval import build_index
    from engine.retrieval.korean_dense import TrainConfig

    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    spec = documents_corpus(
        "my-notes",
        [
            ("a", "대통령의 임기는 5년으로 하며, 중임할 수 없다."),
            ("b", "국회의원의 임기는 4년으로 한다."),
            ("c", "모든 국민은 법률이 정하는 바에 의하여 납세의 의무를 진다."),
        ],
    )
    index = build_index(spec, config=TrainConfig(epochs=1, queries_per_doc=2, batch_size=16), reranker=False)
    assert index.corpus == "my-notes" and index.doc_ids == ["a", "b", "c"]
    assert index.expansions == [[], [], []] and index.alpha == 0.5 and index.reranker is None  # no dev questions
    result = index.search("국회의원의 임기", "bm25", k=3)
    assert result.hits[0].doc_id == "b" and result.hits[0].rank == 1 and result.notes == []
    assert result.hits[0].text == "국회의원의 임기는 4년으로 한다."
    assert index.search("납세의 의무", "bm25", k=1).hits[0].doc_id == "c"
    assert len(index.search("대통령 임기", "hybrid", k=3).hits) == 3
    assert list((tmp_path / "retrieval").glob("index-v*.json"))  # persisted under the cache


@pytest.fixture(scope="module")
def built_index():
    from engine.retrieval.build import build_index

    return build_index("constitution")


@pytest.mark.slow
def test_cli_json_contract(built_index, tmp_path):
    queries = tmp_path / "q.txt"
    queries.write_text("대통령의 임기는?\n국회의원의 임기\n", encoding="utf-8")
    for method in ("bm25", "dense", "hybrid"):
        r = run_cli(
            "search",
            "--corpus",
            "constitution",
            "--method",
            method,
            "--k",
            "10",
            "--json",
            "--queries-file",
            str(queries),
        )
        assert r.returncode == 0, r.stderr[-2000:]
        rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        assert [row["query"] for row in rows] == ["대통령의 임기는?", "국회의원의 임기"]
        for row in rows:
            assert set(row) >= {"query", "results"} and len(row["results"]) == 10
            assert all(set(h) == {"doc_id", "score"} for h in row["results"])
            scores = [h["score"] for h in row["results"]]
            assert scores == sorted(scores, reverse=True)
        top = [h["doc_id"] for h in rows[0]["results"]]
        # BM25 alone ranks 부칙 제2조 (which literally says "최초의 대통령의 임기") close to 제70조; the others must not
        assert top[0] == "제70조" if method != "bm25" else "제70조" in top[:3], (method, top[:3])


@pytest.mark.slow
def test_held_out_goals_and_latency(built_index):
    """Build (or load) the Korean retriever, then check the goals on the held-out questions.

    The goals are the CLI's: `search --method hybrid` runs fusion → LM rerank (the engine's `rerank` method)."""
    import time

    from engine.retrieval.evaluation import DEV_QUESTIONS, TEST_QUESTIONS, load_questions

    index = built_index
    assert index.reranker is not None, index.notes
    test = load_questions(TEST_QUESTIONS)
    result = index.evaluate(test, ("bm25", "dense", "hybrid", "rerank"))
    best = result["rerank"]
    assert best["hit@5"] >= 0.92 and best["hit@1"] >= 0.80, result
    for metric in ("hit@1", "hit@5"):
        assert best[metric] >= max(result["bm25"][metric], result["dense"][metric]), result
    dev = index.evaluate(load_questions(DEV_QUESTIONS), ("bm25", "dense", "hybrid", "rerank"))
    assert dev["hybrid"]["mrr"] >= max(dev["bm25"]["mrr"], dev["dense"]["mrr"])
    assert dev["rerank"]["mrr"] >= dev["hybrid"]["mrr"]
    index.search("워밍업", "rerank")  # loads the LM: the goal is per query once everything is loaded
    start = time.perf_counter()
    for q in test:
        index.search(q.question, "rerank", 10)
    assert (time.perf_counter() - start) / len(test) < 0.2


@pytest.mark.slow
def test_index_persists_across_restarts(built_index):
    from engine.retrieval.persistence import load_index

    again = load_index("constitution")
    assert again is not None and again.reranker is not None and again.reranker.adapter is not None
    assert again.alpha == built_index.alpha and again.reranker.weights == built_index.reranker.weights
    q = "국회의원의 임기는 몇 년인가요?"
    assert [h.doc_id for h in again.search(q, "rerank").hits] == [
        h.doc_id for h in built_index.search(q, "rerank").hits
    ]


def test_training_questions_stay_apart_from_evaluation():
    """The training questions (document expansion, adapter training) never repeat or paraphrase closely a dev or
    held-out question: no exact match, difflib ratio < 0.7 to any, < 0.6 to one about the same article."""
    import difflib

    from engine.core.corpus import load_corpus
    from engine.retrieval.evaluation import DEV_QUESTIONS, TEST_QUESTIONS, TRAIN_QUESTIONS, load_questions

    train = load_questions(TRAIN_QUESTIONS)
    held = load_questions(DEV_QUESTIONS) + load_questions(TEST_QUESTIONS)
    ids = {d.doc_id for d in load_corpus("constitution")}
    assert len(train) >= 500 and all(q.doc_id in ids for q in train)
    assert len({q.question for q in train}) == len(train), "a training question is repeated"
    norm = {"".join(q.question.split()) for q in held}
    too_close = []
    for q in train:
        assert "".join(q.question.split()) not in norm, q.question
        for e in held:
            r = difflib.SequenceMatcher(None, q.question, e.question).ratio()
            if r >= 0.7 or (e.doc_id == q.doc_id and r >= 0.6):
                too_close.append((q.question, e.question, round(r, 2)))
    assert not too_close, too_close[:5]


def test_evaluation_sets_do_not_overlap():
    from engine.retrieval.evaluation import DEV_QUESTIONS, TEST_QUESTIONS, load_questions

    dev = {q.question for q in load_questions(DEV_QUESTIONS)}
    assert not dev & {q.question for q in load_questions(TEST_QUESTIONS)}
