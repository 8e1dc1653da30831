"""Every live page of the catalog (and the home page) runs in both languages without an exception.

Driven by lessons/catalog.yaml: a chapter that becomes `status: live` is tested here without editing this file.
The real packaged models are used; the first run in a fresh cache converts their weights once (a minute or two).
The same runs are the Korean audit (tests/pages/audit.py): no plain-English word in chart and table labels of a
Korean page outside the reviewed allowlist, no English default example, and no garbled (`�`, None) cell in either
language.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.core import catalog
from tests.pages.audit import audit, english_defaults
from tests.pages.conftest import exceptions
from ui.i18n import LANGS, strings

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 240
HOME_TITLE = strings()["home.title"]
PAGES = [pytest.param("pages/00_home.py", HOME_TITLE, id="home")] + [
    pytest.param(c.page, c.title, id=c.slug) for c in catalog.live_chapters()
]


def test_catalog_has_live_pages():
    live = catalog.live_chapters()
    assert live, "no live chapter in lessons/catalog.yaml"
    for c in live:
        assert c.page and (ROOT / c.page).is_file(), f"chapter {c.id}: page {c.page!r} is missing"
    assert len({c.slug for c in live}) == len(live), "two live chapters share a slug (url path)"


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("path", "title"), PAGES)
def test_page_runs(open_page, path: str, title: dict[str, str], lang: str):
    at = open_page(path, lang)
    assert not at.exception, exceptions(at)  # a plain exception is a bug, not bad input: it fails the page
    assert [x.value for x in at.title] == [title[lang]]
    assert not at.error, [e.value for e in at.error]  # st.error = a backend or model problem on default input
    english, garbled = audit(at)
    assert not garbled, [f"{f.where}: {f.text}" for f in garbled]
    if lang == "ko":
        assert not english, [f"{f.where}: {f.text}" for f in english]
        defaults = english_defaults(at)
        assert not defaults, [f"{f.where}: {f.text}" for f in defaults]


def test_app_navigation_builds():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, exceptions(at)
    assert [x.value for x in at.title] == [HOME_TITLE["ko"]]  # the default page, in the default language
    assert at.sidebar.segmented_control, "the language switch is missing from the sidebar"
