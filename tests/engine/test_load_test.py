"""engine.serving.load_test and `python -m engine serve-bench`: the REAL embedded llama.cpp server under
concurrent load (no mocks), the JSON contract, and clear refusals for bad input and a server that is down.

Like tests/engine/test_serving.py this points LLMLAB_CACHE at a temporary directory, so it starts its own server
and never touches one a developer has running. Request counts stay small (≤ 6 per level, ≤ 8 tokens).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.core.progress import Cancelled
from engine.serving import ModelServerError, chat, ensure_server, server_status
from engine.serving.load_test import MAX_CONCURRENCY, check_load_test_args, run_load_test
from tests.engine._server import own_llama_server

pytestmark = pytest.mark.server
ROOT = Path(__file__).resolve().parents[2]
CONTRACT = {"concurrency", "tokens_per_s", "p50_s", "p95_s", "errors"}


@pytest.fixture(scope="module", autouse=True)
def server_cache(tmp_path_factory):
    with own_llama_server(tmp_path_factory.mktemp("llmlab-load-cache")) as cache:
        ensure_server()
        chat([{"role": "user", "content": "Hi"}], max_tokens=2, temperature=0.0)  # warm-up, not timed
        yield cache


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_load_test_against_the_real_server():
    seen = []
    rows = run_load_test([1, 3], requests=3, max_tokens=8, on_level=seen.append)
    assert [r["concurrency"] for r in rows] == [1, 3] and seen == rows
    for r in rows:
        assert set(r) >= CONTRACT
        assert r["errors"] == 0 and r["requests"] == 3 and not r["partial"]
        assert 0 < r["completion_tokens"] <= 3 * 8
        assert r["tokens_per_s"] > 0 and 0 < r["p50_s"] <= r["p95_s"]
        assert r["server"] == "embedded llama.cpp" and r["endpoint"].startswith("http://127.0.0.1:")


def test_concurrency_above_the_server_slots_queues_without_errors():
    # llama-cpp-python serves one request at a time; 6 clients at once must queue, not fail
    (row,) = run_load_test([6], requests=6, max_tokens=4)
    assert row["errors"] == 0 and row["requests"] == 6


@pytest.mark.slow  # restarts the server (a model load) on top of the requests
def test_embedded_server_dying_mid_test_is_restarted_and_reported():
    killed = []

    def kill_server(row: dict) -> None:
        if not killed:
            pid = server_status()["pid"]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)

    rows = run_load_test([1, 1], requests=1, max_tokens=2, on_level=kill_server)
    assert killed and [r["errors"] for r in rows] == [0, 0]
    assert [r["server_restarts"] for r in rows] == [0, 1]
    assert server_status()["pid"] != killed[0]


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cancel_keeps_finished_levels():
    def stop_after_first_level() -> bool:
        return len(done) >= 1

    done: list[dict] = []
    with pytest.raises(Cancelled) as info:
        run_load_test([1, 2], requests=1, max_tokens=2, on_level=done.append, should_stop=stop_after_first_level)
    partial = info.value.partial
    assert partial[0]["concurrency"] == 1 and not partial[0]["partial"]
    assert partial[-1]["partial"] is True


@pytest.mark.parametrize(
    ("levels", "requests", "max_tokens", "message"),
    [
        ([MAX_CONCURRENCY + 1], 4, 8, "between 1 and 64"),
        ([0], 4, 8, "between 1 and 64"),
        ([], 4, 8, "at least one"),
        ([1], 0, 8, "requests"),
        ([1], 10_000, 8, "requests"),
        ([1], 4, 0, "max_tokens"),
        ([1], 4, 1_000_000, "max_tokens"),
    ],
)
def test_bad_arguments_are_refused(levels, requests, max_tokens, message):
    with pytest.raises(ValueError, match=message):
        check_load_test_args(levels, requests, max_tokens)
    with pytest.raises(ValueError, match=message):
        run_load_test(levels, requests=requests, max_tokens=max_tokens)


def test_a_server_that_is_down_gives_a_clear_message(monkeypatch):
    monkeypatch.setenv("LLMLAB_LLM_BASE_URL", f"http://127.0.0.1:{_closed_port()}/v1")
    with pytest.raises(ModelServerError, match="does not answer"):
        run_load_test([1], requests=1, max_tokens=4)
    monkeypatch.setenv("LLMLAB_LLM_MODEL", "some-model")  # skips model discovery: the health check catches it
    with pytest.raises(ModelServerError, match="does not answer"):
        run_load_test([1], requests=1, max_tokens=4)


def test_remote_and_hosted_servers_are_refused(monkeypatch):
    monkeypatch.setenv("LLMLAB_LLM_MODEL", "m")
    monkeypatch.setenv("LLMLAB_LLM_BASE_URL", "http://10.1.2.3:8000/v1")
    with pytest.raises(ValueError, match="loopback"):
        run_load_test([1], requests=1, max_tokens=4)
    monkeypatch.setenv("LLMLAB_LLM_BASE_URL", "https://api.openai.com/v1")
    with pytest.raises(ValueError, match="OpenAI"):
        run_load_test([1], requests=1, max_tokens=4, allow_remote=True)


def _cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_serve_bench_json_contract():
    p = _cli("serve-bench", "--concurrency", "1,2", "--requests", "2", "--max-tokens", "8", "--json", "--quiet")
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    assert [r["concurrency"] for r in rows] == [1, 2]
    for r in rows:
        assert set(r) >= CONTRACT
        assert r["errors"] == 0 and isinstance(r["tokens_per_s"], float) and r["p95_s"] >= r["p50_s"] > 0


def test_serve_bench_bad_input_exits_with_a_message():
    p = _cli("serve-bench", "--concurrency", "100", "--json")
    assert p.returncode == 2 and "between 1 and 64" in p.stderr and not p.stdout.strip()
    p = _cli("serve-bench", "--max-tokens", "0", "--json")
    assert p.returncode == 2 and "max_tokens" in p.stderr
    p = _cli("serve-bench", "--json", env_extra={"LLMLAB_LLM_BASE_URL": f"http://127.0.0.1:{_closed_port()}/v1"})
    assert p.returncode == 2 and "does not answer" in p.stderr and "Traceback" not in p.stderr
