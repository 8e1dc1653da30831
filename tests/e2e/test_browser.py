"""The real app in a real browser: `streamlit run app.py` driven by headless Chromium (Playwright).

Every live page of lessons/catalog.yaml and the home page, in Korean and English: the page finishes running,
shows its catalog title and no exception, and a full screenshot goes to artifacts/screenshots/<slug>-<lang>.png.
Plus a streamed chat answer from the embedded llama.cpp server (page 01) and a deep link that restores widget
state from the URL (page 02). Cold model loads on 2 shared cores can take minutes, hence the long waits.
"""

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

from engine import catalog
from ui.i18n import LANGS, strings

pytestmark = pytest.mark.e2e

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

PAGES = [pytest.param("", strings()["home.title"], id="home")] + [
    pytest.param(c.slug, c.title, id=c.slug) for c in catalog.live_chapters()
]

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (make browser installs Debian's chromium)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url():
    """`streamlit run app.py` on a free port for the whole session; stopped at teardown.

    LLMLAB_E2E_URL=http://127.0.0.1:8501 points the tests at an app that is already running instead.
    """
    if os.environ.get("LLMLAB_E2E_URL"):
        yield os.environ["LLMLAB_E2E_URL"].rstrip("/")
        return
    port = _free_port()
    LOG.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
           "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]  # fmt: skip
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


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    # A tall viewport: Streamlit scrolls inside its own container, so a full-page shot of a short window is short.
    context = browser.new_context(viewport={"width": WIDTH, "height": 5000})
    pg = context.new_page()
    pg.set_default_timeout(RUN_TIMEOUT_S * 1000)
    yield pg
    context.close()


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


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("slug", "title"), PAGES)
def test_page_in_browser(app_url, page, slug: str, title: dict[str, str], lang: str):
    page.goto(f"{app_url}/{slug}?lang={lang}")
    wait_idle(page)
    assert_clean(page, title[lang])
    path = screenshot(page, f"{slug or 'home'}-{lang}")
    assert path.stat().st_size > 10_000


def test_chat_streams_an_answer(app_url, page):
    """Page 01's chat goes through the real llama.cpp server (OpenAI-compatible streaming)."""
    chapter = catalog.chapter("01")
    page.goto(f"{app_url}/{chapter.slug}?lang=en")
    wait_idle(page)
    assert_clean(page, chapter.title["en"])
    box = page.locator('[data-testid="stChatInput"] textarea')
    box.fill("What is the capital of France? Answer in one sentence.")
    box.press("Enter")
    assistant = page.locator('[data-testid="stChatMessage"]').filter(
        has=page.locator('[data-testid="stChatMessageAvatarAssistant"]')
    )
    assistant.first.wait_for(state="attached", timeout=RUN_TIMEOUT_S * 1000)
    wait_idle(page)
    assert_clean(page, chapter.title["en"])
    text = assistant.first.locator('[data-testid="stChatMessageContent"]').inner_text().strip()
    assert text, "the assistant message is empty"
    alerts = assistant.first.locator('[data-testid="stAlert"]').all_inner_texts()
    assert not alerts, f"the chat answered with a message instead of text: {alerts}"
    screenshot(page, f"{chapter.slug}-chat-en")


def test_deep_link_restores_state(app_url, page):
    """A copied link reopens the same demo: language and the position-encoding radio come from the URL."""
    chapter = catalog.chapter("02")
    page.goto(f"{app_url}/{chapter.slug}?lang=en&pos_kind=rope")
    wait_idle(page)
    assert_clean(page, chapter.title["en"])
    label = strings()["ch2.pos_kind"]["en"]
    radio = page.locator('[data-testid="stRadio"]').filter(has_text=label).first
    checked = radio.locator("input:checked")
    assert checked.count() == 1, f"no option of {label!r} is selected"
    chosen = checked.locator("xpath=ancestor::label[1]").inner_text().strip()
    assert chosen == strings()["ch2.pos_rope"]["en"], chosen
    assert "pos_kind=rope" in page.url and "lang=en" in page.url
    screenshot(page, f"{chapter.slug}-deeplink-rope-en")
