"""Chapter 2's tokenizer box in a real browser: typing re-tokenizes without Enter and without leaving the box
(Streamlit's own `st.text_input(..., live=True)`, in a fragment), the share link follows the text, and opening
that link restores it.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from engine.core import catalog
from tests.e2e._browser import CHROMIUM, RUN_TIMEOUT_S, VALUE_WAIT_MS, WIDTH, assert_clean, screenshot, wait_idle
from ui.i18n import strings

pytestmark = pytest.mark.e2e

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (make browser installs Debian's chromium)", allow_module_level=True)

TYPED = " 안녕하세요 토큰화"
UPDATE_S = 60  # the 250 ms typing pause, then one fragment rerun on busy cores


def _smollm_summary(pg) -> str:
    """The expander label of the byte-level BPE tokenizer, "SmolLM2 (byte-level BPE) — 18 tokens"."""
    return pg.locator('[data-testid="stExpander"] summary').filter(has_text="SmolLM2").first.inner_text().strip()


def test_typing_updates_tokens_without_enter(app_url, page, browser):
    chapter = catalog.chapter("02")
    page.goto(f"{app_url}/{chapter.slug}?lang=en")
    wait_idle(page)
    assert_clean(page, chapter.title["en"])
    label = strings()["ch2.tok_text"]["en"]
    box = page.get_by_label(label, exact=True)
    # the front end may draw the box a moment before it fills in the value from the session (seen in CI)
    expect(box).not_to_have_value("", timeout=VALUE_WAIT_MS)
    before_value = box.input_value()
    before = _smollm_summary(page)

    box.click()
    box.press("End")
    page.keyboard.type(TYPED, delay=40)  # no Enter, no Tab: the box keeps the focus
    deadline = time.monotonic() + UPDATE_S
    while _smollm_summary(page) == before:
        assert time.monotonic() < deadline, f"the token count did not change within {UPDATE_S} s of typing"
        page.wait_for_timeout(250)
    wait_idle(page)
    after = _smollm_summary(page)
    assert after != before, (before, after)
    assert page.evaluate("document.activeElement && document.activeElement.getAttribute('aria-label')") == label
    assert box.input_value() == before_value + TYPED
    assert_clean(page, chapter.title["en"])
    screenshot(page, f"{chapter.slug}-live-tokenize-en")

    # the share link carries the typed text, and opening it restores the box and its tokens
    assert parse_qs(urlparse(page.url).query).get("tok_text") == [before_value + TYPED], page.url
    other = browser.new_context(viewport={"width": WIDTH, "height": 5000})
    try:
        pg2 = other.new_page()
        pg2.set_default_timeout(RUN_TIMEOUT_S * 1000)
        pg2.goto(page.url)
        wait_idle(pg2)
        expect(pg2.get_by_label(label, exact=True)).to_have_value(before_value + TYPED, timeout=VALUE_WAIT_MS)
        assert _smollm_summary(pg2) == after
    finally:
        other.close()
