"""engine.llmops.rag_eval: the four RAG metrics on hand-made cases — exactly where they are arithmetic, with the
real `instruct` llama.cpp server and the real Korean encoder where they need a model."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.textinput import InputError
from engine.llmops.rag_eval import (
    CONFIGS,
    ConfigScore,
    answer_relevance,
    context_precision,
    context_recall,
    faithfulness,
    faithfulness_score,
    parse_configs,
    pick_questions,
    relevance_score,
    split_statements,
)
from engine.rag.documents import Passage


# --- arithmetic, exactly ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("relevant", "expected"),
    [
        ([1, 0, 0, 0, 0], 1.0),
        ([0, 1, 0, 0, 0], 0.5),
        ([0, 0, 0, 0, 1], 0.2),
        ([1, 0, 1], (1 + 2 / 3) / 2),
        ([0, 1, 1], (1 / 2 + 2 / 3) / 2),
        ([1, 1, 1], 1.0),
        ([0, 0, 0], 0.0),
        ([], 0.0),
    ],
)
def test_context_precision_is_ragas_average_precision(relevant, expected):
    assert context_precision(relevant) == pytest.approx(expected, abs=1e-12)


def test_context_precision_equals_ragas_formula_with_its_epsilon():
    # ragas 0.4.3 _calculate_average_precision: numerator / (sum(v) + 1e-10)
    for v in ([1, 0, 1, 0, 1], [0, 0, 1, 1, 0], [1]):
        ragas = sum(sum(v[: i + 1]) / (i + 1) * v[i] for i in range(len(v))) / (sum(v) + 1e-10)
        assert context_precision(v) == pytest.approx(ragas, rel=1e-9)


def test_context_recall_is_the_share_of_gold_ids_retrieved():
    assert context_recall(["제70조", "제67조"], ["제70조"]) == 1.0
    assert context_recall(["제70조"], ["제8조", "제111조"]) == 0.0
    assert context_recall(["제111조", "제8조", "제1조"], ["제8조", "제111조"]) == 1.0
    assert context_recall(["제111조"], ["제8조", "제111조"]) == 0.5
    assert context_recall(["제1조"], []) is None


def test_faithfulness_score_is_supported_over_statements():
    assert faithfulness_score([True, True, False]) == pytest.approx(2 / 3)
    assert faithfulness_score([False]) == 0.0
    assert faithfulness_score([]) is None


@pytest.mark.parametrize(
    ("answer", "statements"),
    [
        ("대통령의 임기는 5년입니다 [제70조].", ["대통령의 임기는 5년입니다."]),
        ("임기는 5년이다. 중임할 수 없다 [제70조].", ["임기는 5년이다.", "중임할 수 없다."]),
        ("감사원장은 6년이다. [감사원장은 6년이다. [부칙 제4조].", ["감사원장은 6년이다."]),  # repeat, stray tag
        ("A입니다.\n+\n.", ["A입니다."]),  # no letter: not a claim
        ("", []),
    ],
)
def test_statements_are_the_answers_sentences(answer, statements):
    assert split_statements(answer) == statements


def test_relevance_score_is_mean_cosine_zeroed_when_noncommittal():
    q = np.array([1.0, 0.0])
    gen = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert relevance_score(q, gen, False) == pytest.approx((1 + 0 + 1 / np.sqrt(2)) / 3)
    assert relevance_score(q, gen, True) == 0.0
    assert relevance_score(q, np.zeros((2, 2)), False) == 0.0  # no vector: cosine 0, never NaN


def test_configs_are_parsed_strictly():
    assert parse_configs("best,chroma") == ["best", "chroma"]
    assert parse_configs(" chroma ") == ["chroma"]
    for bad in ("", "best,best", "best,dense", ","):
        with pytest.raises(InputError) as exc:
            parse_configs(bad)
        assert exc.value.code == "llmops.rag_eval.bad_configs"
    assert {c.retriever for c in CONFIGS.values()} == {"best", "chroma"}


def test_questions_are_spread_over_the_held_out_set():
    qs = pick_questions(14)
    assert len(qs) == 14 and len({q.question for q in qs}) == 14
    assert qs[0].question == pick_questions(42)[0].question
    with pytest.raises(InputError):
        pick_questions(0)
    with pytest.raises(InputError):
        pick_questions(43)


def test_config_score_json_rounds_and_keeps_none():
    ci = {"faithfulness": [None, None]}
    s = ConfigScore("best", "", "best", 5, 2, 0.123456, 1.0, None, 0.5, 1.0, 0, 1, 3.21, ci=ci)
    out = s.to_json()
    assert out["context_precision"] == 0.1235 and out["faithfulness"] is None and out["n"] == 2
    assert "samples" not in out


def test_prompt_context_reads_the_passages_back_from_the_prompt():
    from engine.llmops.rag_eval import prompt_context
    from engine.rag.pipeline import RagAnswer
    from engine.rag.prompts import qa_template

    context = "[제70조] 대통령의 임기는 5년으로 하며, 중임할 수 없다.\n\n[제67조] ① 대통령은 보통선거로 선출한다."
    msgs = qa_template("ko").format_messages(context_str=context, query_str=QUESTION)
    messages = [{"role": m.role.value, "content": m.content} for m in msgs]
    res = RagAnswer(QUESTION, QUESTION, "5년", [], [], [], "off", [], False, messages=messages)
    assert prompt_context(res) == context.split("\n\n")
    assert prompt_context(RagAnswer(QUESTION, QUESTION, "x", [], [], [], "off", [], True)) is None


# --- with the real model and encoder ------------------------------------------------------------------------------
# The shared LLMLAB_CACHE (as tests/engine/test_rag_pipeline.py): the Korean encoder trained there is reused.
ART70 = Passage("제70조", "제70조", "대통령의 임기는 5년으로 하며, 중임할 수 없다.", "constitution")
ART42 = Passage("제42조", "제42조", "국회의원의 임기는 4년으로 한다.", "constitution")
CONTEXTS = [f"[{p.doc_id}] {p.text}" for p in (ART70, ART42)]
QUESTION = "대통령의 임기는 몇 년인가요?"


@pytest.mark.server
@pytest.mark.slow
def test_faithfulness_separates_a_supported_from_an_invented_answer():
    good = faithfulness(QUESTION, "대통령의 임기는 5년입니다 [제70조].", CONTEXTS)
    bad = faithfulness(QUESTION, "대통령의 임기는 7년이며 세 번까지 연임할 수 있습니다.", CONTEXTS)
    assert good.statements == ["대통령의 임기는 5년입니다."] and not good.invalid and good.score == 1.0
    assert bad.statements and not bad.invalid and bad.score is not None and bad.score < good.score
    refusal = faithfulness(QUESTION, "제공된 문서에서 찾을 수 없습니다.", CONTEXTS)
    assert refusal.score is None and refusal.statements == []  # nothing claimed, nothing to check


@pytest.mark.server
@pytest.mark.slow
def test_answer_relevance_with_the_korean_encoder():
    from engine.llmops.rag_eval import korean_embedder

    embed = korean_embedder()
    v = embed([QUESTION, QUESTION])
    assert relevance_score(v[0], v[1:], False) == pytest.approx(1.0, abs=1e-6)
    on = answer_relevance(QUESTION, "대통령의 임기는 5년이며 중임할 수 없습니다.", embed)
    off = answer_relevance(QUESTION, "국회의원의 임기는 4년입니다.", embed)
    assert not on.invalid and len(on.questions) == 3 and on.score is not None
    assert off.score is not None and on.score > off.score
