"""Bounds for text a learner types: every demo passes input through here first.

Nothing raises on odd text; the caller gets the cleaned text and a note it can show (e.g. "truncated").
Text that cannot be used at all (empty, or a list with a non-number in it) raises `InputError`, a `UserError`
with a code the pages translate (see engine.core.errors).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from engine.core.errors import UserError

DEFAULT_MAX_CHARS = 10_000


class InputError(UserError):
    """Input that cannot be used at all (e.g. empty): a `UserError` whose code says why."""

    default_code = "input.invalid"


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
        raise InputError("input.not_text", value=type(text).__name__)
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
        raise InputError("input.empty")
    return CleanText(cleaned, original, truncated, removed)


DEFAULT_MAX_ITEMS = 64
_SEPARATORS = re.compile(r"[,\s\uff0c\u3001;]+")  # commas (also the full-width ones a Korean IME types), spaces


def parse_numbers(
    text: str,
    cast: Callable = int,
    *,
    name: str,
    min_value=None,
    max_value=None,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> list:
    """'1, 4 16' -> [1, 4, 16]: the one parser for a list of numbers a learner types.

    Items are separated by commas and/or spaces; `cast` (int or float) reads each one. Raises `InputError` with
    `name` and the offending value for an empty list ("input.empty_list"), a non-number ("input.not_an_integer" /
    "input.not_a_number"), a value outside [min_value, max_value] ("input.too_small" / "input.too_large") and more
    than `max_items` values ("input.too_many"). A list or tuple of numbers is accepted as well as text.
    """
    if text is None:
        text = ""
    if isinstance(text, str):
        parts: list = [p for p in _SEPARATORS.split(text.strip()) if p]
    elif isinstance(text, Iterable):
        parts = list(text)
    else:
        parts = [text]
    if not parts:
        raise InputError("input.empty_list", name=name, example=_example(cast, min_value, max_value), value="")
    if len(parts) > max_items:
        raise InputError("input.too_many", name=name, limit=max_items, value=len(parts))
    numbers = []
    for part in parts:
        try:
            value = cast(part)
        except (TypeError, ValueError, OverflowError):
            code = "input.not_an_integer" if cast is int else "input.not_a_number"
            raise InputError(code, name=name, value=str(part)) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError("input.not_a_number", name=name, value=str(part))
        if min_value is not None and value < min_value:
            raise InputError("input.too_small", name=name, limit=min_value, value=value)
        if max_value is not None and value > max_value:
            raise InputError("input.too_large", name=name, limit=max_value, value=value)
        numbers.append(value)
    return numbers


def _example(cast: Callable, min_value, max_value) -> str:
    low = min_value if min_value is not None and min_value > 1 else 1
    values = [low, low * 2, low * 4]
    if max_value is not None:
        values = [v for v in values if v <= max_value] or [low]
    return ",".join(str(cast(v)) for v in values)
