"""Chapter 12's store query for the page: the metadata filter its controls describe, and hits as table rows."""

from __future__ import annotations

from dataclasses import dataclass

from engine.core.textinput import InputError

# The corpus' `part` metadata: the articles (본문) or the addenda (부칙); "all" means no part filter.
PARTS = {"all": None, "main": "본문", "addenda": "부칙"}
ARTICLES = (1, 130)  # the article numbers the corpus has


def article_filter(part: str, first: int, last: int) -> list[list] | None:
    """[[field, op, value], ...] for `DocumentStore.query`; None when the controls select everything, so the
    learner's own documents (which have no `number`) are found too."""
    if part not in PARTS:
        raise InputError("store.unknown_part", choices=", ".join(PARTS), value=part)
    if (int(first), int(last), part) == (*ARTICLES, "all"):
        return None
    where: list[list] = [["number", ">=", int(first)], ["number", "<=", int(last)]]
    if PARTS[part] is not None:
        where.append(["part", "==", PARTS[part]])
    return where


@dataclass(frozen=True)
class HitRow:
    id: str
    score: float  # rounded to 4 decimals
    title: str
    text: str  # the first 300 characters


def hit_rows(hits) -> list[HitRow]:
    return [HitRow(h.doc_id, round(h.score, 4), h.metadata.get("title", ""), h.text[:300]) for h in hits]
