"""The lesson catalog (lessons/catalog.yaml): chapters, their pages, sections and the code they show."""

from __future__ import annotations

import copy
import importlib
import inspect
import re
from dataclasses import dataclass, field
from functools import lru_cache

import yaml

from engine.core.assets import LESSONS, ROOT  # noqa: F401  (ROOT: callers that need the repository root)

LANGS = ("ko", "en")
_SECTION = re.compile(r"^<!--\s*section:\s*([\w-]+)\s*-->\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Section:
    id: str
    title: dict[str, str]


@dataclass(frozen=True)
class Chapter:
    id: str
    slug: str
    title: dict[str, str]
    status: str = "planned"
    page: str | None = None
    icon: str | None = None
    sections: tuple[Section, ...] = ()
    code: tuple[str, ...] = ()
    book: str = "llm"  # "llm": the Korean book's chapters; "handson": Hands-On LLM topics and the capstone
    extra: dict = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.status == "live"

    @property
    def stem(self) -> str:
        return f"{self.id}_{self.slug}"


@lru_cache(maxsize=1)
def load_catalog() -> tuple[Chapter, ...]:
    raw = yaml.safe_load((LESSONS / "catalog.yaml").read_text(encoding="utf-8"))
    chapters = []
    for item in raw["chapters"]:
        item = dict(item)
        sections = tuple(Section(s["id"], s["title"]) for s in item.pop("sections", []))
        code = tuple(item.pop("code", []))
        known = {k: item.pop(k) for k in ("id", "slug", "title", "status", "page", "icon", "book") if k in item}
        chapters.append(Chapter(sections=sections, code=code, extra=item, **known))
    return tuple(chapters)


def live_chapters() -> list[Chapter]:
    return [c for c in load_catalog() if c.live]


def chapter(chapter_id: str) -> Chapter:
    for c in load_catalog():
        if c.id == chapter_id:
            return c
    raise KeyError(f"no chapter {chapter_id!r} in lessons/catalog.yaml")


def lesson_text(chapter_id: str, lang: str) -> dict[str, str]:
    """The lesson Markdown split by `<!-- section: id -->` markers; text before the first marker is 'intro'."""
    c = chapter(chapter_id)
    path = LESSONS / lang / f"{c.stem}.md"
    text = path.read_text(encoding="utf-8")
    parts = _SECTION.split(text)
    out = {"intro": parts[0].strip()}
    for sid, body in zip(parts[1::2], parts[2::2], strict=True):
        out[sid] = body.strip()
    return out


def quiz(chapter_id: str) -> list[dict]:
    """The chapter's quiz questions (a fresh copy: callers may change it). Parsed once per file version: every
    section of every page rerun asks, and parsing the YAML each time was 7% of a course server's CPU (py-spy)."""
    path = LESSONS / "quizzes" / f"{chapter(chapter_id).stem}.yaml"
    if not path.exists():
        return []
    return copy.deepcopy(_parsed_yaml(str(path), path.stat().st_mtime_ns))


@lru_cache(maxsize=64)
def _parsed_yaml(path: str, mtime_ns: int) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or []


def resolve_code(ref: str):
    """'engine.module:Qualname' -> the object, for "show the code"."""
    module_name, _, qualname = ref.partition(":")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def source_of(ref: str) -> str:
    return inspect.getsource(resolve_code(ref))
