"""Faults a course meets, against the real app: a learner closes the tab in the middle of a training run.

The run must stop with the session (no thread or CPU left behind for a learner who is gone). The simulated tab is a
real Streamlit session over the app's websocket (engine.course.load_app), so the test can close it mid-run.
"""

from __future__ import annotations

import psutil
import pytest

from engine.core.aio import run_coroutine
from engine.course.load_app import StreamlitSession, _press
from tests.e2e._browser import SERVER, SERVER_SETTLE_S, wait_server_quiet

pytestmark = pytest.mark.e2e


def test_closing_a_tab_mid_training_stops_the_run(quiet_app):
    if "pid" not in SERVER:
        pytest.skip("needs the app this test session started (LLMLAB_E2E_URL points elsewhere)")
    app = psutil.Process(SERVER["pid"])

    async def start_then_close() -> tuple[int, str | None]:
        tab = StreamlitSession(quiet_app, timeout=120)
        await tab.connect()
        assert (await tab.open_page("mamba")).error is None
        threads = app.num_threads()
        tab.timeout = 5  # the training run takes far longer: the rerun is still going when the tab closes
        assert tab.set_widget("tr_mamba", _press) is None
        pressed = await tab.rerun()
        await tab.close()
        return threads, pressed.error

    threads_before, error = run_coroutine(start_then_close)
    assert error and "no script_finished" in error  # the run was under way when the tab closed
    waited = wait_server_quiet()
    assert waited < SERVER_SETTLE_S, "the app kept computing after the learner left"
    assert app.num_threads() <= threads_before
