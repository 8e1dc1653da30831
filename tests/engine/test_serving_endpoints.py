"""Which endpoint serves each role when endpoints are configured (no server needed: explicit model names)."""

from __future__ import annotations

import pytest

from engine.serving.client import model_name, resolve_endpoint


@pytest.fixture
def env(monkeypatch):
    for name in (
        "LLMLAB_LLM_BASE_URL",
        "LLMLAB_LLM_MODEL",
        "LLMLAB_INSTRUCT_MODEL",
        "LLMLAB_INSTRUCT_BASE_URL",
        "OPENAI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_one_endpoint_serves_both_roles_with_their_model_names(env):
    env.setenv("LLMLAB_LLM_BASE_URL", "http://gpu-host:8000/v1")
    env.setenv("LLMLAB_LLM_MODEL", "smol")
    env.setenv("LLMLAB_INSTRUCT_MODEL", "qwen")
    chat, inst = resolve_endpoint(role="chat"), resolve_endpoint(role="instruct")
    assert (chat.base_url, chat.model, chat.local) == ("http://gpu-host:8000/v1", "smol", False)
    assert (inst.base_url, inst.model) == ("http://gpu-host:8000/v1", "qwen")
    assert model_name("instruct-large") == "qwen" == resolve_endpoint(role="instruct-large").model


def test_a_second_endpoint_takes_the_application_roles(env):
    env.setenv("LLMLAB_LLM_BASE_URL", "http://vllm-chat:8000/v1")
    env.setenv("LLMLAB_LLM_MODEL", "smol")
    env.setenv("LLMLAB_INSTRUCT_BASE_URL", "http://vllm-instruct:8000/v1")
    env.setenv("LLMLAB_INSTRUCT_MODEL", "qwen")
    assert resolve_endpoint(role="chat").base_url == "http://vllm-chat:8000/v1"
    inst = resolve_endpoint(role="instruct")
    assert (inst.base_url, inst.model, inst.local) == ("http://vllm-instruct:8000/v1", "qwen", False)
    assert model_name("chat") == "smol" and model_name("instruct") == "qwen"


@pytest.mark.server
def test_the_app_talks_to_an_external_server_it_did_not_start(env, tmp_path):
    """A course points the app at a model server on another host: here a llama.cpp server started as a plain
    process (not by the engine), found by URL alone; the model name comes from its /v1/models."""
    import subprocess
    import time

    from engine.models.registry import resolve
    from engine.serving import chat, server_status
    from engine.serving.llama_server import _free_port, healthy, server_command

    env.setenv("LLMLAB_CACHE", str(tmp_path))
    env.setenv("LLMLAB_SERVER_CTX", "1024")
    env.setenv("LLMLAB_SERVER_THREADS", "1")
    port = _free_port()
    cmd = server_command(str(resolve("chat").gguf_path()), port, "chat")
    cmd[cmd.index("--model_alias") + 1] = "external-smol"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while not healthy(url + "/v1") and time.monotonic() < deadline and proc.poll() is None:  # GET /v1/models
            time.sleep(0.3)
        env.setenv("LLMLAB_LLM_BASE_URL", url + "/v1")
        ep = resolve_endpoint(role="chat")
        assert (ep.model, ep.local) == ("external-smol", False)
        reply = chat([{"role": "user", "content": "Hi"}], max_tokens=4, temperature=0.0)
        assert isinstance(reply, str)
        assert server_status()["running"] is False  # the engine started no server of its own
    finally:
        proc.terminate()
        proc.wait(timeout=30)
