"""Chapter 1 opens at its title, not scrolled down to the chat box.

A top-level st.chat_input is pinned to the bottom of the window, and Streamlit then keeps the page scrolled to the
bottom (its stAppScrollToBottomContainer): the learner arrived in the middle of chapter 1. The page puts the input in
a container instead; this checks, in a real browser window of ordinary height, that nothing is scrolled after load.
"""

from __future__ import annotations

import pytest

from engine.core import catalog
from tests.e2e._browser import CHROMIUM, RUN_TIMEOUT_S, SHOTS, WIDTH, assert_clean, wait_idle

pytestmark = pytest.mark.e2e

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (make browser installs Debian's chromium)", allow_module_level=True)

# Every element scrolled away from its top (Streamlit scrolls its own containers, not only the window).
SCROLLED = """() => {
  const out = [...document.querySelectorAll('*')]
    .filter(e => e.scrollTop > 0)
    .map(e => (e.getAttribute('data-testid') || e.tagName) + ':' + e.scrollTop);
  if (window.scrollY > 0) out.push('window:' + window.scrollY);
  return out;
}"""


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_chapter_1_opens_at_the_top(app_url, browser, lang: str):
    chapter = catalog.chapter("01")
    context = browser.new_context(viewport={"width": WIDTH, "height": 900})  # shorter than the page
    pg = context.new_page()
    pg.set_default_timeout(RUN_TIMEOUT_S * 1000)
    try:
        pg.goto(f"{app_url}/{chapter.slug}?lang={lang}")
        wait_idle(pg)
        assert_clean(pg, chapter.title[lang])
        pg.wait_for_timeout(1000)  # a late scroll (after the last element is drawn) would show by now
        scrolled = pg.evaluate(SCROLLED)
        SHOTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(SHOTS / f"{chapter.slug}-top-{lang}.png"))
        assert scrolled == [], f"chapter 1 opened scrolled: {scrolled}"
        assert pg.locator("h1").first.is_visible()
        assert pg.locator('[data-testid="stChatInput"] textarea').count() == 1  # the chat is still there
    finally:
        context.close()
