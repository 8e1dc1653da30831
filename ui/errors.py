"""Errors a learner can fix, in the learner's language.

The engine raises `UserError`s (engine.core.errors) that carry a code and the values the message needs; this turns
one into the Korean or English sentence of `error.<code>` in ui/strings/errors.yaml. A code without a translation
shows the engine's English sentence.
"""

from __future__ import annotations

import errno

from engine.core.errors import UserError, format_message
from ui.i18n import DEFAULT_LANG, lang, strings

# codes shown as st.error (the model or the server, not what the learner typed); the rest are st.warning
BACKEND_PREFIXES = ("model.", "server.")


def translated(code: str, fmt: dict, language: str | None = None) -> str | None:
    """The text of `error.<code>` in `language` (default: the current one) with `fmt`; None if not translated."""
    entry = strings().get(f"error.{code}")
    if not entry:
        return None
    language = language or lang()
    template = entry.get(language) or entry.get(DEFAULT_LANG)
    if not template:
        return None
    values = dict(fmt)
    name = values.get("name")
    if isinstance(name, str):
        label = strings().get("error.name." + name.strip().replace(" ", "_"))
        if label:
            values["name"] = label.get(language) or label.get(DEFAULT_LANG) or name
    return format_message(template, values)


def error_message(exc: UserError, language: str | None = None) -> str:
    """The learner-facing sentence for `exc`: translated by code, else its English message."""
    return translated(exc.code, exc.fmt, language) or str(exc)


def is_backend(exc: UserError) -> bool:
    return exc.code.startswith(BACKEND_PREFIXES)


# a disk the app cannot write to: the cache folder mounted read-only, or full
DISK_ERRNOS = {errno.EROFS: "disk.read_only", errno.ENOSPC: "disk.full", errno.EDQUOT: "disk.full"}


def disk_message(exc: BaseException, language: str | None = None) -> str | None:
    """The learner-facing sentence for a write that failed because the disk is read-only or full; None for any
    other error (those are bugs, shown as such). Writes into the cache are atomic (a temporary name, then a rename),
    so a failed write leaves the earlier files as they were: the message can say nothing was damaged."""
    code = DISK_ERRNOS.get(getattr(exc, "errno", None)) if isinstance(exc, OSError) else None
    if code is None:
        return None
    from engine.core.config import get_settings

    path = exc.filename or get_settings().cache_dir
    return translated(code, {"path": str(path), "cache": str(get_settings().cache_dir)}, language)
