"""Bounds for a search query, checked before any index is loaded, with messages a learner can act on."""

from __future__ import annotations

from engine.core.textinput import InputError, clean_text

MAX_QUERY_CHARS = 500  # a question, not a document: longer input is refused with a message


def check_query(query: str | None, language: str = "ko") -> tuple[str, list[str]]:
    """The query as searched, and notes for the learner (`language` is the corpus's: "ko" notes a query with no
    Hangul). Raises InputError for what cannot be searched (empty, too long, only symbols)."""
    cleaned = clean_text(query, max_chars=10**9)
    text = cleaned.text.strip()
    if len(text) > MAX_QUERY_CHARS:
        raise InputError("query.too_long", chars=len(text), limit=MAX_QUERY_CHARS)
    if not any(ch.isalnum() for ch in text):
        raise InputError("query.no_letters")
    notes = []
    if language == "ko":
        hangul = sum("가" <= ch <= "힣" for ch in text)
        letters = sum(ch.isalpha() for ch in text)
        if hangul == 0 and letters:
            notes.append("the query has no Hangul: this corpus is Korean, so results may be unrelated")
    return text, notes
