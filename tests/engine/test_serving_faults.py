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
