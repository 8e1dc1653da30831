"""engine.core.catalog: every live chapter has a page, ko/en lessons with the catalog's sections, real code refs."""

from __future__ import annotations

import re

import pytest

from engine.core.catalog import (
    LANGS,
    LESSONS,
    ROOT,
    chapter,
    lesson_text,
    live_chapters,
    load_catalog,
    quiz,
    resolve_code,
)

LIVE = live_chapters()
IDS = [c.id for c in LIVE]
_MARKER = re.compile(r"^<!--\s*section:\s*([\w-]+)\s*-->\s*$", re.MULTILINE)


def test_catalog_shape():
    chapters = load_catalog()
    ids = [c.id for c in chapters]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert len({c.slug for c in chapters}) == len(chapters)
    assert LIVE, "at least one live chapter"
    for c in chapters:
        assert set(c.title) == set(LANGS) and all(c.title.values())
        assert c.status in {"live", "planned"}
        assert not c.extra, f"chapter {c.id}: unknown keys {sorted(c.extra)}"
    with pytest.raises(KeyError, match="no chapter"):
        chapter("99")


@pytest.mark.parametrize("cid", IDS)
def test_live_chapter_has_page(cid):
    c = chapter(cid)
    assert c.page is not None
    assert (ROOT / c.page).is_file()
    assert c.sections, "a live chapter lists its sections"
    for s in c.sections:
        assert set(s.title) == set(LANGS) and all(s.title.values())
    assert len({s.id for s in c.sections}) == len(c.sections)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("cid", IDS)
def test_lesson_files_have_the_catalog_sections(cid, lang):
    c = chapter(cid)
    path = LESSONS / lang / f"{c.stem}.md"
    assert path.is_file(), f"missing lesson file {path.relative_to(ROOT)}"
    markers = _MARKER.findall(path.read_text(encoding="utf-8"))
    assert markers == [s.id for s in c.sections]
    parts = lesson_text(cid, lang)
    assert list(parts) == ["intro", *markers]
    assert all(parts[s.id] for s in c.sections), "every section has text"


@pytest.mark.parametrize("cid", IDS)
def test_code_refs_resolve(cid):
    c = chapter(cid)
    assert c.code
    for ref in c.code:
        assert ref.startswith("engine.") and ":" in ref
        obj = resolve_code(ref)
        assert callable(obj), ref
        assert obj.__qualname__ == ref.partition(":")[2]


@pytest.mark.parametrize("cid", IDS)
def test_quiz_answers_are_valid(cid):
    c = chapter(cid)
    sections = {s.id for s in c.sections}
    for i, q in enumerate(quiz(cid)):
        where = f"chapter {cid} quiz #{i}"
        assert q["section"] in sections, where
        for lang in LANGS:
            assert q["question"][lang], where
            assert q["explain"][lang], where
            options = q["options"][lang]
            assert len(options) >= 2, where
            assert 0 <= q["answer"] < len(options), where
        assert len(q["options"]["ko"]) == len(q["options"]["en"]), where


def test_quiz_is_parsed_once_and_each_caller_gets_its_own_copy():
    first = quiz("16")
    first[0]["question"] = "changed by a caller"
    first.append({"extra": True})
    again = quiz("16")
    assert again[0]["question"] != "changed by a caller" and len(again) == len(first) - 1


@pytest.mark.parametrize("cid", IDS)
def test_page_file_name_gives_the_slug(cid):
    """Streamlit still scans pages/ the old (v1) way before app.py's st.navigation has run once: on a fresh server,
    the very first request for /<slug> is looked up among names derived from the file names, and a miss shows
    "Page not found" (it did for pages/H4_classification.py -> "H4_classification"). So a page file is named
    <digits>_<slug>.py, whose v1 name is the slug."""
    from pathlib import Path

    from streamlit.source_util import page_icon_and_name

    c = chapter(cid)
    _, name = page_icon_and_name(Path(c.page))
    assert name == c.slug, f"{c.page} is '{name}' to Streamlit's first lookup, not '{c.slug}'"
