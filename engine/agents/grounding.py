"""Grounded arguments: the numbers a tool call uses must come from somewhere.

A small model asked "the president's term plus a member's term" often skips the lookups and writes the calculator
call at once with numbers it made up (`(2019 - 1975) + (2023 - 1975)` from the 1.5B, dev task d14). The call is
valid JSON and fits the schema, so nothing else stops it. The guard: every number in a grounded argument
(`Tool.grounded`) must appear in the question or in an earlier tool result, or be a small constant of everyday
arithmetic (0-12, 24, 60, 100, 1000: "in months", "per hour", "a percentage"). A call that fails is not run; the
model is told which numbers have no source, and the loop's router picks the step that can find them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

COMMON_CONSTANTS = frozenset([*range(13), 24, 60, 100, 1000])
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")


def numbers_in(text: str) -> set[float]:
    """The numbers written in `text` ("1,234" is one number; "2**10" is 2 and 10)."""
    return {float(m.group().replace(",", "")) for m in _NUMBER.finditer(text or "")}


def ungrounded_numbers(arguments: dict, fields: Sequence[str], sources: Iterable[str]) -> list[str]:
    """The numbers in `arguments[field]` (for each of `fields`) found in none of `sources` and not a common
    constant, as written in the argument, in order of appearance; [] when the call is grounded."""
    known = set(COMMON_CONSTANTS)
    for text in sources:
        known |= numbers_in(text)
    missing: list[str] = []
    for name in fields:
        value = arguments.get(name) if isinstance(arguments, dict) else None
        for m in _NUMBER.finditer(value if isinstance(value, str) else ""):
            if float(m.group().replace(",", "")) not in known and m.group() not in missing:
                missing.append(m.group())
    return missing


__all__ = ["COMMON_CONSTANTS", "numbers_in", "ungrounded_numbers"]
