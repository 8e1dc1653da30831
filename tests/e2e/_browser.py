"""Shared pieces of the real-browser tests: the running app, Chromium, and waiting for Streamlit to settle."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "artifacts" / "screenshots"
LOG = ROOT / "artifacts" / "e2e-streamlit.log"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
WIDTH = 1400
MAX_SHOT_HEIGHT = 16_000  # Chromium cannot capture much taller pages in one image
RUN_TIMEOUT_S = 240  # a first model load in a fresh server process, on busy cores
QUIET_S = 3.0  # the page counts as finished once the "running" widget has been gone this long

BUSY = '[data-testid="stStatusWidget"]'
EXCEPTION = '[data-testid="stException"]'
# The page body; with st.chat_input on a page Streamlit drops the stMain wrapper, this container stays.
TITLE = '[data-testid="stMainBlockContainer"] h1'


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app():
    """`streamlit run app.py` on a free port; stopped at exit.

    LLMLAB_E2E_URL=http://127.0.0.1:8501 points the tests at an app that is already running instead.
    """
    if os.environ.get("LLMLAB_E2E_URL"):
        yield os.environ["LLMLAB_E2E_URL"].rstrip("/")
        return
    port = _free_port()
    LOG.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    with open(LOG, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}:\n{_log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer /_stcore/health within 120 s:\n{_log_tail()}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()  # SIGTERM: streamlit shuts down and its atexit stops the llama.cpp server it started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _log_tail() -> str:
    return LOG.read_text(errors="replace")[-3000:] if LOG.exists() else "(no log)"


def wait_idle(pg, timeout: float = RUN_TIMEOUT_S) -> None:
    """Wait until the script has run: something is drawn and the status widget was absent for QUIET_S."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while True:
        drawn = pg.locator(f"{TITLE}, {EXCEPTION}").count() > 0
        busy = pg.locator(BUSY).count() > 0
        now = time.monotonic()
        if drawn and not busy:
            quiet_since = quiet_since or now
            if now - quiet_since >= QUIET_S:
                return
        else:
            quiet_since = None
        if now > deadline:
            SHOTS.mkdir(parents=True, exist_ok=True)
            shot = SHOTS / f"FAILED-{int(time.time())}.png"
            pg.screenshot(path=str(shot), full_page=True)
            raise AssertionError(f"{pg.url} still running after {timeout:.0f} s (drawn={drawn}, busy={busy}): {shot}")
        time.sleep(0.25)


def assert_clean(pg, title: str) -> None:
    errors = pg.locator(EXCEPTION).all_inner_texts()
    assert not errors, f"{pg.url} shows an exception:\n" + "\n---\n".join(errors)
    h1 = pg.locator(TITLE).first.inner_text().strip()
    assert h1 == title, f"{pg.url}: h1 {h1!r} != catalog title {title!r}"


def screenshot(pg, name: str) -> Path:
    """Grow the window to the content so the shot holds the whole page, then save it."""
    height = pg.evaluate(
        "() => { const c = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
        " return c ? c.scrollHeight : document.body.scrollHeight; }"
    )
    pg.set_viewport_size({"width": WIDTH, "height": max(900, min(int(height) + 120, MAX_SHOT_HEIGHT))})
    pg.wait_for_timeout(1500)  # charts re-layout to the new size
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    return path
