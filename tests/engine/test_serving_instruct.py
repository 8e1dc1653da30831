"""The `instruct` role on its own embedded server: chosen per request, structured output and tool calls through the
standard `openai` fields (real llama.cpp server, real Qwen2.5-Coder-0.5B GGUF)."""

from __future__ import annotations

import pytest

from engine.serving import (
    ToolCall,
    chat,
    count_tokens,
    ensure_server,
    parse_tool_calls,
    server_status,
    stop_server,
    structured_chat,
    tool_chat,
)
from engine.serving.llama_server import ALIASES
from tests.engine._server import own_llama_server

pytestmark = pytest.mark.server

WEATHER = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "도시의 현재 날씨를 조회한다",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "sources": {"type": "array", "items": {"type": "string"}}},
    "required": ["answer", "sources"],
}


@pytest.fixture(scope="module", autouse=True)
def server_cache(tmp_path_factory):
    with own_llama_server(tmp_path_factory.mktemp("instruct-server")) as cache:
        yield cache


def test_each_role_has_its_own_server_and_model_name():
    instruct = ensure_server(role="instruct")
    assert instruct.model == ALIASES["instruct"] and instruct.model_path.endswith("q4_k_m.gguf")
    assert server_status("instruct")["running"] is True
    assert server_status("chat")["running"] is False  # starting one role never starts the other
    chat_server = ensure_server(role="chat")
    assert chat_server.port != instruct.port and chat_server.model == ALIASES["chat"]
    assert ensure_server(role="instruct").pid == instruct.pid  # reused, not restarted


def test_the_model_is_chosen_per_request():
    a = chat([{"role": "user", "content": "안녕"}], role="instruct", max_tokens=8, temperature=0)
    b = chat([{"role": "user", "content": "안녕"}], role="instruct", max_tokens=8, temperature=0)
    assert a and a == b  # greedy is deterministic on one server
    assert chat([{"role": "user", "content": "Hi"}], role="chat", max_tokens=8, temperature=0)


def test_structured_output_follows_the_schema():
    out = structured_chat([{"role": "user", "content": "대통령의 임기를 JSON으로 답하라."}], SCHEMA, max_tokens=120)
    assert set(out) >= {"answer", "sources"}
    assert isinstance(out["answer"], str) and isinstance(out["sources"], list)
    assert all(isinstance(s, str) for s in out["sources"])


def test_forced_tool_call_is_constrained_by_the_server():
    reply = tool_chat(
        [{"role": "user", "content": "서울 날씨 알려줘"}],
        WEATHER,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert [c.name for c in reply.tool_calls] == ["get_weather"]
    assert isinstance(reply.tool_calls[0].arguments.get("city"), str) and not reply.parsed_from_text


def test_auto_tool_choice_comes_back_as_tool_calls_or_text():
    reply = tool_chat([{"role": "user", "content": "서울 날씨 알려줘"}], WEATHER)
    assert all(c.name == "get_weather" and isinstance(c.arguments, dict) for c in reply.tool_calls)
    assert reply.tool_calls or reply.content  # never both empty


def test_count_tokens_asks_the_server():
    n = count_tokens("대한민국은 민주공화국이다.")
    assert isinstance(n, int) and 3 <= n <= 30
    assert count_tokens("대한민국은 민주공화국이다. " * 4) > n


def test_stop_server_without_a_role_stops_both():
    ensure_server(role="chat")
    ensure_server(role="instruct")
    assert stop_server() is True
    assert not server_status("chat")["running"] and not server_status("instruct")["running"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "서울"}}\n</tool_call>',
            [("get_weather", "서울")],
        ),
        ('```json\n{"name": "get_weather", "arguments": {"city": "부산"}}\n```', [("get_weather", "부산")]),
        ('{"name": "get_weather", "arguments": "{\\"city\\": \\"대구\\"}"}', [("get_weather", "대구")]),
        ('{"name": "rm_rf", "arguments": {"path": "/"}}', []),  # not an offered tool: stays text
        ("서울은 맑습니다.", []),
        ("<tool_call>{broken json</tool_call>", []),
    ],
)
def test_parse_tool_calls(text, expected):
    calls = parse_tool_calls(text, {"get_weather"})
    assert [(c.name, c.arguments["city"]) for c in calls] == expected
    assert all(isinstance(c, ToolCall) for c in calls)
