"""engine.serving: the REAL embedded llama.cpp server behind the OpenAI-compatible API (no mocks).

The server's state file and lock live under LLMLAB_CACHE, so this module points LLMLAB_CACHE at a temporary
directory: it starts its own server and never touches one a developer has running. (The `chat` GGUF is read
from site-packages, so the only cost is hashing it once into the temporary hash memo.)
"""

from __future__ import annotations

import os
import signal
import socket
import time

import openai
import pytest

from engine.serving import ModelServerError, backend_info, chat, ensure_server, server_status, stop_server, stream_chat
from engine.serving.client import MAX_TOKENS_LIMIT, RESTART_MARK, resolve_endpoint
from engine.serving.llama_server import MODEL_ALIAS, _pid_alive, healthy, server_command
from tests.engine._server import own_llama_server

pytestmark = pytest.mark.server

HELLO = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = dict(temperature=0.0, max_tokens=16, seed=0)
_answers: dict[str, str] = {}


def greedy_answer() -> str:
    """The greedy answer through engine.serving.chat, computed once (generation is the slow part)."""
    if "chat" not in _answers:
        _answers["chat"] = chat(HELLO, **GREEDY)
    return _answers["chat"]


@pytest.fixture(scope="module", autouse=True)
def server_cache(tmp_path_factory):
    # One thread: on a shared 2-core test machine, llama.cpp's spinning worker threads slow down badly
    # when the cores are oversubscribed; a single thread degrades gracefully.
    with own_llama_server(tmp_path_factory.mktemp("llmlab-server-cache"), threads=1) as cache:
        yield cache


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """True once `pid` has exited (the engine's own check, which also reaps a killed child of ours)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_status_before_start_reports_nothing_running():
    assert server_status() == {"running": False, "url": None, "pid": None}
    info = backend_info()
    assert info["tier"] == "offline-cpu" and info["local"] is True and info["healthy"] is False


def test_ensure_server_starts_on_loopback(server_cache):
    server = ensure_server()
    assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/v1")
    assert server.model == MODEL_ALIAS
    assert server.model_path.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert server.restarted is False
    assert server_status() == {"running": True, "url": server.url, "pid": server.pid}
    assert (server_cache / "server" / "state.json").is_file()
    assert healthy(server.url)


def test_second_ensure_server_shares_the_same_process():
    first = ensure_server()
    second = ensure_server()
    assert (second.pid, second.port) == (first.pid, first.port)
    assert second.restarted is False
    ep = resolve_endpoint()
    assert ep.local and ep.base_url == first.url and ep.model == MODEL_ALIAS and not ep.restarted


def test_chat_returns_text():
    # Behaviour any correct server has; what a 135M model knows about France is not this test's business.
    assert greedy_answer().strip()


def test_server_greedy_equals_llama_cpp_in_process():
    """The server's greedy answer == llama.cpp's own greedy answer in this process, for the same GGUF, the same
    model settings (parsed from the very command that started the server) and the server's request defaults."""
    from llama_cpp.server.model import LlamaProxy
    from llama_cpp.server.settings import ModelSettings
    from llama_cpp.server.types import CreateChatCompletionRequest

    server = ensure_server()
    args = server_command(server.model_path, server.port)[3:]  # after `python -m llama_cpp.server`
    given = {k.removeprefix("--"): v for k, v in zip(args[::2], args[1::2], strict=True)}
    settings = ModelSettings(**{k: v for k, v in given.items() if k in ModelSettings.model_fields}, verbose=False)
    # The OpenAI API has no repeat_penalty: the server applies its own default, so the reference does too.
    defaults = CreateChatCompletionRequest.model_fields
    llm = LlamaProxy.load_llama_from_model_settings(settings)
    try:
        own = llm.create_chat_completion(
            messages=HELLO, **GREEDY, repeat_penalty=defaults["repeat_penalty"].default, top_k=defaults["top_k"].default
        )["choices"][0]["message"]["content"]
    finally:
        llm.close()
    assert own == greedy_answer()


def test_stop_sequence_is_honoured():
    answer = greedy_answer()
    words = answer.split()
    assert len(words) >= 2, answer
    stop = " " + words[1]  # cut right before the second word
    expected = answer[: answer.index(stop)]
    assert chat(HELLO, **GREEDY, stop=[stop]) == expected


def test_max_tokens_is_respected():
    server = ensure_server()
    client = openai.OpenAI(base_url=server.url, api_key="not-needed", timeout=120)
    resp = client.chat.completions.create(model=server.model, messages=HELLO, **{**GREEDY, "max_tokens": 3})
    assert resp.usage.completion_tokens <= 3
    if resp.choices[0].finish_reason == "length":
        assert resp.usage.completion_tokens == 3
    assert greedy_answer().startswith(resp.choices[0].message.content)  # the same greedy path, cut short


def test_raw_openai_client_against_server_url():
    """The contract: any OpenAI client works against server.url."""
    server = ensure_server()
    client = openai.OpenAI(base_url=server.url, api_key="not-needed", timeout=120)
    assert MODEL_ALIAS in [m.id for m in client.models.list().data]
    resp = client.chat.completions.create(model=server.model, messages=HELLO, **GREEDY)
    text = resp.choices[0].message.content
    assert text and text.strip()
    assert resp.usage.completion_tokens <= GREEDY["max_tokens"]
    assert text == greedy_answer()  # greedy: the engine's client sees exactly the same answer


def test_streaming_yields_several_pieces():
    pieces = list(stream_chat(HELLO, **GREEDY))
    assert RESTART_MARK not in pieces
    assert len(pieces) >= 2
    assert all(isinstance(p, str) and p for p in pieces)
    assert "".join(pieces) == greedy_answer()


@pytest.mark.parametrize(
    "bad",
    [
        dict(max_tokens=0),
        dict(max_tokens=MAX_TOKENS_LIMIT + 1),
        dict(top_p=0.0),
        dict(top_p=1.5),
        dict(temperature=3.0),
        dict(temperature=-0.1),
    ],
)
def test_invalid_arguments_raise_value_error(bad):
    with pytest.raises(ValueError):
        chat(HELLO, **{**GREEDY, **bad})
    with pytest.raises(ValueError):
        next(stream_chat(HELLO, **{**GREEDY, **bad}))


def test_killed_server_is_restarted_and_reported():
    old = ensure_server()
    os.kill(old.pid, signal.SIGKILL)
    assert _wait_gone(old.pid)
    assert server_status()["running"] is False
    pieces = list(stream_chat(HELLO, **GREEDY))
    assert pieces[0] == RESTART_MARK
    assert "".join(pieces[1:]).strip()
    new = ensure_server()
    assert new.pid != old.pid
    assert server_status() == {"running": True, "url": new.url, "pid": new.pid}


def test_killed_server_restart_through_chat_is_silent():
    old = ensure_server()
    os.kill(old.pid, signal.SIGKILL)  # no waiting: the request may still find the dying process
    answer = chat(HELLO, **GREEDY)  # chat() strips the restart mark
    assert answer.strip() and RESTART_MARK not in answer
    assert ensure_server().pid != old.pid


def test_stop_server_stops_it():
    server = ensure_server()
    assert stop_server() is True
    assert _wait_gone(server.pid)
    assert server_status() == {"running": False, "url": None, "pid": None}
    assert not healthy(server.url, timeout=0.5)
    assert stop_server() is False  # nothing left to stop


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: nothing listens there


def test_unreachable_base_url_is_a_clear_error(monkeypatch):
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    monkeypatch.setenv("LLMLAB_LLM_BASE_URL", url)
    with pytest.raises(ModelServerError) as info:
        chat(HELLO, **GREEDY)
    msg = str(info.value)
    assert url in msg and "does not answer" in msg and "LLMLAB_LLM_BASE_URL" in msg
    assert server_status()["running"] is False  # a configured endpoint never starts the local server

    monkeypatch.setenv("LLMLAB_LLM_MODEL", "some-model")  # with a model name, the failure comes from the request
    with pytest.raises(ModelServerError, match="does not answer"):
        chat(HELLO, **GREEDY)
    info = backend_info()
    assert (info["tier"], info["url"], info["local"], info["healthy"]) == ("remote", url, False, False)
