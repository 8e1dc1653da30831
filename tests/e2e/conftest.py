"""Fixtures of the real-browser tests (helpers live in tests/e2e/_browser.py)."""

from __future__ import annotations

import pytest

from tests.e2e._browser import CHROMIUM, CHROMIUM_ARGS, RUN_TIMEOUT_S, WIDTH, running_app, wait_server_quiet


@pytest.fixture(scope="session")
def app_url():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (make browser installs Debian's chromium)")
    with running_app() as url:
        yield url


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
    # the next test starts on an idle server: what this one started (an answer still being written) is not its load
    waited = wait_server_quiet()
    if waited > 10:
        print(f"\n[e2e] the app server was busy for {waited:.0f} s after the test")


@pytest.fixture
def quiet_app(app_url):
    """The app's URL once the server is idle: work an earlier test left running (a model still loading, an answer
    still being written) is not this test's load. For tests that talk to the app without a browser page (seen: the
    load-tool tests failed right after a test whose model load was still running)."""
    waited = wait_server_quiet()
    if waited > 10:
        print(f"\n[e2e] waited {waited:.0f} s for the app server to be idle")
    yield app_url
    wait_server_quiet()  # and the next test starts on an idle server too
