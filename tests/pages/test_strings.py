"""UI strings and lesson files are complete in both languages, and every key the code uses exists.

Driven by the files themselves and lessons/catalog.yaml, so new chapters are checked without editing this file.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
import yaml

from engine.core import catalog
from ui.i18n import LANGS, STRINGS_DIR

ROOT = Path(__file__).resolve().parents[2]
STRING_FILES = sorted(STRINGS_DIR.glob("*.yaml"))
# The code that ships: app.py, ui/, the home page and every live chapter's page. A page whose chapter is not yet
# live in the catalog is work in progress (not reachable from the navigation) and is checked once it goes live.
CODE_FILES = sorted(
    {ROOT / "app.py", ROOT / "pages" / "00_home.py", *(ROOT / "ui").rglob("*.py")}
    | {ROOT / c.page for c in catalog.live_chapters() if c.page}
)

# t("key") and the helpers that take a key and translate it themselves (notice("common.notice", ...))
_LITERAL_KEY = re.compile(r"""\b(?:t|notice)\(\s*(["'])([\w.\-]+)\1""")
_FSTRING_KEY = re.compile(r"""\bt\(\s*f(["'])([^"'{}]*\{[^"']*)\1""")

# f-string keys whose values are known: each expansion must exist. Applied only where the f-string occurs,
# so a page that changes its widgets does not make this table fail; other f-string keys are checked by pattern.
_EXPANSIONS = {
    "ch1.strategy_{s}": ["greedy", "sample"],
    "ch2.pos_{k}": ["sinusoidal", "learned", "rope"],
    "ch2.notice_pos_{kind}": ["sinusoidal", "learned", "rope"],
    "ch2.mask_{mk}": "engine.lm.attention:MASK_KINDS",
    "ch2.mask_name_{mk}": "engine.lm.attention:MASK_KINDS",
}


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load keeps the last of two equal keys silently; a strings file must not have any."""


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _load(path: Path) -> dict:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}  # a SafeLoader subclass


def _all_strings() -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for path in STRING_FILES:
        merged.update(_load(path))
    return merged


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_strings_files_exist():
    assert STRING_FILES, f"no strings files in {STRINGS_DIR}"


@pytest.mark.parametrize("path", STRING_FILES, ids=lambda p: p.name)
def test_every_key_has_both_languages(path: Path):
    data = _load(path)
    assert isinstance(data, dict), f"{path.name}: expected a mapping of key -> {{ko, en}}"
    problems = []
    for key, entry in data.items():
        if not isinstance(entry, dict):
            problems.append(f"{key}: not a {{ko, en}} mapping")
            continue
        for lang in LANGS:
            value = entry.get(lang)
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{key}: empty or missing {lang!r}")
        extra = set(entry) - set(LANGS)
        if extra:
            problems.append(f"{key}: unknown languages {sorted(extra)}")
        if all(isinstance(entry.get(lang), str) for lang in LANGS):
            ko, en = (_fields(entry[lang]) for lang in LANGS)
            if ko != en:
                problems.append(f"{key}: placeholders differ (ko {sorted(ko)}, en {sorted(en)})")
    assert not problems, "\n".join(problems)


def test_no_key_in_two_files():
    owner: dict[str, str] = {}
    clashes = []
    for path in STRING_FILES:
        for key in _load(path):
            if key in owner:
                clashes.append(f"{key}: {owner[key]} and {path.name}")
            owner[key] = path.name
    assert not clashes, "\n".join(clashes)


def _used_keys() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    literal, fstrings = set(), set()
    for path in CODE_FILES:
        src = path.read_text(encoding="utf-8")
        rel = str(path.relative_to(ROOT))
        literal |= {(m.group(2), rel) for m in _LITERAL_KEY.finditer(src)}
        fstrings |= {(m.group(2), rel) for m in _FSTRING_KEY.finditer(src)}
    return literal, fstrings


def test_literal_keys_exist():
    keys = _all_strings()
    literal, _ = _used_keys()
    assert len(literal) > 20, "the key regex found suspiciously few t('...') calls"
    missing = sorted(f"{key} (used in {where})" for key, where in literal if key not in keys)
    assert not missing, "keys used in code but not in ui/strings/*.yaml:\n" + "\n".join(missing)


def test_fstring_keys_exist():
    keys = _all_strings()
    _, fstrings = _used_keys()
    missing = []
    for pattern, where in sorted(fstrings):
        expansion = _EXPANSIONS.get(pattern)
        if isinstance(expansion, str):
            expansion = list(catalog.resolve_code(expansion))
        if expansion is not None:
            prefix = pattern.split("{", 1)[0]
            missing += [f"{prefix}{v} (from {pattern} in {where})" for v in expansion if f"{prefix}{v}" not in keys]
        else:  # unknown values: at least one key must fit the pattern
            regex = re.compile(re.sub(r"\\\{[^}]*\\\}", r"[\\w.\\-]+", re.escape(pattern)) + "$")
            if not any(regex.match(k) for k in keys):
                missing.append(f"no key matches {pattern} (used in {where})")
    assert not missing, "\n".join(missing)


LIVE = catalog.live_chapters()


@pytest.mark.parametrize("chapter", LIVE, ids=lambda c: c.slug)
def test_lessons_match_catalog_sections(chapter: catalog.Chapter):
    expected = [s.id for s in chapter.sections]
    assert expected, f"chapter {chapter.id} is live but lists no sections"
    markers = {}
    for lang in LANGS:
        path = catalog.LESSONS / lang / f"{chapter.stem}.md"
        assert path.is_file(), f"missing lesson {path.relative_to(ROOT)}"
        text = path.read_text(encoding="utf-8")
        markers[lang] = catalog._SECTION.findall(text)
        assert markers[lang] == expected, f"{path.relative_to(ROOT)}: sections {markers[lang]} != catalog {expected}"
        body = catalog.lesson_text(chapter.id, lang)
        empty = [sid for sid in expected if not body.get(sid)]
        assert not empty, f"{path.relative_to(ROOT)}: empty sections {empty}"
    assert markers["ko"] == markers["en"]


@pytest.mark.parametrize("chapter", LIVE, ids=lambda c: c.slug)
def test_catalog_entry_complete(chapter: catalog.Chapter):
    for lang in LANGS:
        assert chapter.title.get(lang), f"chapter {chapter.id}: no {lang} title"
        for s in chapter.sections:
            assert s.title.get(lang), f"chapter {chapter.id} section {s.id}: no {lang} title"
    for ref in chapter.code:
        assert catalog.source_of(ref).strip(), f"chapter {chapter.id}: 'show the code' ref {ref} is empty"


@pytest.mark.parametrize("chapter", LIVE, ids=lambda c: c.slug)
def test_quizzes_well_formed(chapter: catalog.Chapter):
    sections = {s.id for s in chapter.sections}
    for i, q in enumerate(catalog.quiz(chapter.id)):
        where = f"lessons/quizzes/{chapter.stem}.yaml #{i}"
        assert q.get("section") in sections, f"{where}: section {q.get('section')!r} not in the catalog"
        for field in ("question", "explain"):
            assert all(q.get(field, {}).get(lang) for lang in LANGS), f"{where}: {field} needs ko and en"
        options = q["options"]
        per_lang = options if isinstance(options, dict) else {lang: options for lang in LANGS}
        sizes = {lang: len(per_lang.get(lang) or []) for lang in LANGS}
        assert len(set(sizes.values())) == 1 and sizes["ko"] >= 2, f"{where}: options per language {sizes}"
        assert 0 <= q["answer"] < sizes["ko"], f"{where}: answer index {q['answer']} out of range"
