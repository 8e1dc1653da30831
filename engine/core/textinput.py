"""Bounds for text a learner types: every demo passes input through here first.

Nothing raises on odd text; the caller gets the cleaned text and a note it can show (e.g. "truncated").
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

DEFAULT_MAX_CHARS = 10_000


class InputError(ValueError):
    """Input that cannot be used at all (e.g. empty). The message is meant for the learner."""


@dataclass(frozen=True)
class CleanText:
    text: str
    original_chars: int
    truncated: bool
    removed_control: int

    @property
    def note(self) -> str | None:
        """English note for logs/CLI; pages show the translated version via its fields."""
        parts = []
        if self.truncated:
            parts.append(f"truncated from {self.original_chars:,} to {len(self.text):,} characters")
        if self.removed_control:
            parts.append(f"removed {self.removed_control} control characters")
        return "; ".join(parts) or None


def clean_text(text: str | None, max_chars: int = DEFAULT_MAX_CHARS, *, allow_empty: bool = False) -> CleanText:
    """Drop control characters (keeping newlines and tabs), normalize to NFC, cut to `max_chars`.

    NFC matters for Korean: a Hangul syllable typed as separate jamo (NFD, e.g. from macOS file names)
    would otherwise tokenize differently from the same visible text.
    """
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InputError("text must be a string")
    original = len(text)
    kept = []
    removed = 0
    for ch in text:
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs", "Cn"):
            kept.append(ch)
        else:
            removed += 1
    cleaned = unicodedata.normalize("NFC", "".join(kept))
    truncated = len(cleaned) > max_chars
    if truncated:
        cleaned = cleaned[:max_chars]
    if not allow_empty and not cleaned.strip():
        raise InputError("empty text")
    return CleanText(cleaned, original, truncated, removed)
