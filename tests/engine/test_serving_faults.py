"""Faults of the model server a course meets: the server killed in the middle of an answer.

The page must say so (a typed, translated error: the answer so far stays on the page) and the next request must work
(the engine restarts its embedded server). Real server, real SIGKILL.
"""

from __future__ import annotations

import os
import signal

import pytest

from engine.serving import ModelServerError, chat, ensure_server, stream_chat
from tests.engine._server import own_llama_server

pytestmark = pytest.mark.server

LONG = [{"role": "user", "content": "Count from 1 to 200, one number per line."}]


@pytest.fixture(scope="module", autouse=True)
def server_cache(tmp_path_factory):
    with own_llama_server(tmp_path_factory.mktemp("llmlab-faults"), threads=1) as cache:
        yield cache


def test_a_server_killed_mid_answer_is_a_clear_error_and_the_next_request_works():
    server = ensure_server()
    pieces = []
    with pytest.raises(ModelServerError) as info:
        for piece in stream_chat(LONG, max_tokens=400, temperature=0.0, seed=0):
            pieces.append(piece)
            if len(pieces) == 3:
                os.kill(server.pid, signal.SIGKILL)
    assert info.value.code == "server.connection_lost"
    assert len(pieces) >= 3  # what arrived before the kill was delivered, not repeated
    again = chat([{"role": "user", "content": "Hi"}], max_tokens=4, temperature=0.0)
    assert isinstance(again, str)
    assert ensure_server().pid != server.pid


def test_a_busy_server_that_answers_slowly_is_not_killed(tmp_path, monkeypatch):
    """A live server process whose /models answers after 2 s (busy writing answers on a loaded machine) is kept:
    before, the 1-s health check called it hung and the next request killed it with every answer in flight."""
    import json
    import subprocess
    import sys
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from engine.serving.llama_server import _pid_alive, _state_file

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(2.0)
            body = b'{"data": [{"id": "chat"}]}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # the 'server' process
    try:
        monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
        state = {
            "pid": stand_in.pid,
            "port": httpd.server_address[1],
            "model": "chat",
            "model_path": "x",
            "started_at": time.time(),
        }
        _state_file("chat").write_text(json.dumps(state))
        server = ensure_server()
        assert server.pid == stand_in.pid and _pid_alive(stand_in.pid)  # kept, not replaced
    finally:
        stand_in.kill()
        httpd.shutdown()
        _state_file("chat").unlink(missing_ok=True)  # the stand-in is no server: the module's fixture must not stop it
