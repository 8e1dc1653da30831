"""Conversation memory: a window keeps the last k turns and forgets the rest word for word; a running summary folds
what falls out into a summary (a recording summarizer here, the real model in the server test)."""

from __future__ import annotations

import pytest

from engine.agents.memory import ChatTurn, SummaryMemory, WindowMemory, forgotten
from engine.core.errors import UserError

TURNS = [
    ("내 이름은 민수야", "반가워요, 민수님."),
    ("나는 부산에 살아", "부산에 사시는군요."),
    ("좋아하는 숫자는 7이야", "7을 기억할게요."),
    ("오늘 날씨 어때?", "저는 날씨를 볼 수 없어요."),
]


def fill(mem):
    for user, assistant in TURNS:
        mem.add(user, assistant)
    return mem


def test_window_keeps_the_last_k_and_shows_what_it_dropped():
    view = fill(WindowMemory(k=2)).view()
    assert view.kind == "window" and view.summary == ""
    assert [t.user for t in view.kept] == ["좋아하는 숫자는 7이야", "오늘 날씨 어때?"]
    assert [t.user for t in view.dropped] == ["내 이름은 민수야", "나는 부산에 살아"]
    assert [m["role"] for m in view.messages] == ["user", "assistant"] * 2
    assert view.chars == sum(len(m["content"]) for m in view.messages)
    assert forgotten(view, ["민수", "부산", "7"]) == {"민수": True, "부산": True, "7": False}


def test_window_with_fewer_turns_than_k_drops_nothing():
    mem = WindowMemory(k=3)
    mem.add("a", "b")
    assert mem.view().dropped == [] and len(mem.messages()) == 2


def test_summary_folds_each_turn_that_falls_out():
    calls = []

    def summarize(summary: str, turn: ChatTurn) -> str:
        calls.append((summary, turn.user))
        return (summary + " " if summary else "") + turn.user

    view = fill(SummaryMemory(k=1, summarize=summarize)).view()
    assert calls == [
        ("", "내 이름은 민수야"),
        ("내 이름은 민수야", "나는 부산에 살아"),
        ("내 이름은 민수야 나는 부산에 살아", "좋아하는 숫자는 7이야"),
    ]
    assert [t.user for t in view.kept] == ["오늘 날씨 어때?"] and len(view.dropped) == 3
    assert view.messages[0]["role"] == "system" and "부산" in view.messages[0]["content"]
    assert forgotten(view, ["민수", "부산", "7"]) == {"민수": False, "부산": False, "7": False}


@pytest.mark.parametrize("k", [0, 21, "3", True])
def test_bad_window_is_refused(k):
    with pytest.raises(UserError) as exc:
        WindowMemory(k=k)
    assert exc.value.code == "agents.memory.bad_window"


@pytest.mark.server
def test_the_model_writes_the_summary(tmp_path_factory):
    """The default summarizer asks the real model; the summary is text, and the turn it replaced is gone from the
    verbatim part (whether the model kept "부산" is the model's business, shown on the page, not asserted)."""
    from tests.engine._server import own_llama_server

    with own_llama_server(tmp_path_factory.mktemp("memory-server")):
        mem = SummaryMemory(k=1)
        mem.add("나는 부산에 살아", "부산에 사시는군요.")
        mem.add("좋아하는 숫자는 7이야", "7을 기억할게요.")
        view = mem.view()
        assert isinstance(view.summary, str) and view.summary.strip()
        assert [t.user for t in view.dropped] == ["나는 부산에 살아"] and len(view.kept) == 1
