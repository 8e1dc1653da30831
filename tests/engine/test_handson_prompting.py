"""The prompt studio's engine (engine.handson.prompting): parsing, the arithmetic checker, structured-output validity,
the techniques' control flow (with scripted models: which calls, which votes, which nodes survive) and the template
view. The real server's accuracy is measured by the CLI, not asserted here (a 0.5B model's arithmetic is a fact
about the model)."""

from __future__ import annotations

import pytest

from engine.core.textinput import InputError
from engine.handson.prompting import (
    FEW_SHOT,
    TECHNIQUES,
    Problem,
    TotConfig,
    compare_techniques,
    messages_for,
    parse_int,
    problems,
    render_template,
    run_technique,
    tree_of_thought,
    valid_answer_json,
    wrong_calculations,
)

P = Problem("t1", "사과가 12개 있었는데 5개를 먹고 8개를 더 샀습니다. 사과는 몇 개입니까?", 15)


def test_task_set():
    ps = problems()
    assert len(ps) == 20 and len({p.id for p in ps}) == 20
    assert all(isinstance(p.answer, int) for p in ps)
    assert not {q for q, _ in FEW_SHOT} & {p.question for p in ps}  # the shots are not test problems


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("15", 15),
        ("12 - 5 + 8 = 15\n답: 15", 15),
        ("답: 2,900원", 2900),
        ("계산하면 7, 그리고 15", 15),
        ("모름", None),
        ("", None),
        (None, None),
        ("답 : -3", -3),
    ],
)
def test_parse_int(text, value):
    assert parse_int(text) == value


def test_wrong_calculations():
    assert wrong_calculations("12 - 5 = 7, 7 + 8 = 15") == 0
    assert wrong_calculations("300 × 7 = 2100 그리고 5000 - 2100 = 3100") == 1
    assert wrong_calculations("24 ÷ 8 = 3, 3 x 3 = 10") == 1
    assert wrong_calculations("숫자가 없음") == 0


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ('{"steps": "a", "answer": 15}', True),
        ('앞말 {"steps": "a", "answer": 15} 뒷말', True),
        ('{"steps": "a", "answer": "15"}', False),
        ('{"answer": true}', False),
        ("{broken", False),
        ("15", False),
    ],
)
def test_valid_answer_json(text, ok):
    assert (valid_answer_json(text) is not None) is ok


def test_messages():
    few = messages_for("few_shot", P.question)
    assert [m["role"] for m in few] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert "답: 숫자" in messages_for("cot", P.question)[-1]["content"]
    with pytest.raises(InputError):
        messages_for("magic", P.question)


class Scripted:
    """A model that replies from a list, recording every call (messages, temperature, seed)."""

    def __init__(self, replies, scores=None):
        self.replies, self.scores, self.calls = list(replies), list(scores or []), []

    def chat(self, messages, temperature=0.0, seed=0, max_tokens=256):
        self.calls.append((messages, temperature, seed))
        return self.replies.pop(0)

    def structured(self, messages, schema, max_tokens=256, temperature=0.0):
        self.calls.append((messages, "structured", None))
        return {"score": self.scores.pop(0)} if "score" in schema["properties"] else self.replies.pop(0)


def test_self_consistency_majority_vote():
    m = Scripted(["답: 15", "답: 13", "답: 15", "모름", "답: 13"])
    a = run_technique("self_consistency", P, m.chat, m.structured, samples=5)
    assert a.predicted == 15 and a.correct and a.calls == 5 and a.votes == {"15": 2, "13": 2}
    assert [c[2] for c in m.calls] == [0, 1, 2, 3, 4] and all(c[1] == 0.8 for c in m.calls)


def test_structured_free_and_grammar():
    m = Scripted(['{"steps": "12-5+8", "answer": 15}', "답은 15입니다"])
    assert run_technique("structured_free", P, m.chat, m.structured).valid is True
    bad = run_technique("structured_free", P, m.chat, m.structured)
    assert bad.valid is False and bad.predicted is None and not bad.correct
    g = Scripted([{"steps": "x", "answer": 15}])
    assert run_technique("structured_grammar", P, g.chat, g.structured).correct


def test_tree_of_thought_search():
    # depth 2, k=2, b=1: level 1 proposes a wrong and a right step; the wrong calculation scores 0 whatever the
    # model says, so the right one is kept and expanded; the finish call sees its steps
    m = Scripted(
        ["12 - 5 = 8", "12 - 5 = 7", "7 + 8 = 15", "7 + 8 = 16", "풀이 끝\n답: 15"],
        scores=[5, 3, 4, 2],
    )
    final, nodes = tree_of_thought(P.question, m.chat, m.structured, TotConfig(breadth=1, proposals=2, depth=2))
    assert parse_int(final) == 15
    assert [n.score for n in nodes[1:]] == [0.0, 3.0, 4.0, 0.0]
    assert [n.kept for n in nodes] == [True, False, True, True, False]
    assert nodes[3].steps == ("12 - 5 = 7", "7 + 8 = 15") and nodes[3].parent == 2
    assert "7 + 8 = 15" in m.calls[-1][0][-1]["content"]  # the finish prompt holds the best leaf's steps


def test_tot_config_limits():
    with pytest.raises(InputError):
        TotConfig(breadth=9)


def test_compare_techniques_table():
    def chat(messages, temperature=0.0, seed=0, max_tokens=256):
        return "답: 15"

    def structured(messages, schema, max_tokens=256, temperature=0.0):
        return {"score": 3} if "score" in schema["properties"] else {"steps": "", "answer": 15}

    rows = compare_techniques(TECHNIQUES, limit=2, chat=chat, structured=structured, samples=2, tot=TotConfig(1, 1, 1))
    assert [r.technique for r in rows] == list(TECHNIQUES)
    assert all(r.n == 2 for r in rows)
    assert rows[0].accuracy == 0.5  # problem p01's answer is 15; p02's is not
    assert rows[3].calls_per_item == 2 and rows[4].calls_per_item == 3
    assert rows[-1].validity == 1.0 and rows[0].validity is None
    with pytest.raises(InputError):
        compare_techniques(limit=0, chat=chat, structured=structured)


def test_render_template_marks_special_tokens():
    view = render_template([{"role": "user", "content": "안녕"}], model_role="chat")
    assert view.text.endswith("<|im_start|>assistant\n")
    assert view.n_tokens == len(view.tokens) == len(view.special)
    assert view.tokens[view.special.index(True)] == "<|im_start|>"
    with pytest.raises(InputError):
        render_template([], model_role="chat")
