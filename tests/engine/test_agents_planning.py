"""Plan, then execute: the plan's parsing and which plans the loop carries out."""

import json

from engine.agents.planning import MAX_LOOKUPS, PLAN_EXAMPLES, Plan, parse_plan, plan_messages


def test_parse_plan_reads_the_schema_reply_and_refuses_anything_else():
    assert parse_plan('{"lookups": [" 대통령 임기 ", ""], "arithmetic": " a + b "}') == Plan(["대통령 임기"], "a + b")
    assert parse_plan(json.dumps({"lookups": list("abcde"), "arithmetic": 3})) == Plan(list("abc"), "")
    assert MAX_LOOKUPS == 3
    assert parse_plan("not json") is None and parse_plan("[1, 2]") is None


def test_only_a_question_with_two_parts_and_a_lookup_gets_a_plan():
    assert Plan([], "17 * 23").steps() == []  # pure arithmetic: the loop as before
    assert Plan(["장르 수"], "").steps() == []  # one fact
    assert Plan(["고객 수"], "고객 수 * 3").steps() == [("lookup", "고객 수"), ("compute", "고객 수 * 3")]
    assert Plan(["a", "b"], "").steps() == [("lookup", "a"), ("lookup", "b")]


def test_plan_messages_carry_the_worked_examples_then_the_question():
    system = {"role": "system", "content": "the agent's"}
    messages = plan_messages("질문", system)
    assert messages[0] is system and messages[-1] == {"role": "user", "content": "Question: 질문"}
    assert messages[1]["content"].startswith("You plan how") and plan_messages("질문")[0]["role"] == "system"
    assert len(messages) == 2 + 2 * len(PLAN_EXAMPLES)
    for reply in messages[2:-1:2]:
        assert parse_plan(reply["content"]) is not None
