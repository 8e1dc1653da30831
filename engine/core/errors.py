"""Typed user errors: a mistake the learner can fix (bad input, a model that is not there, a sweep too large).

Every such error is a `UserError` (a `ValueError`) carrying a `code` and the values `fmt` its message needs:

    raise UserError("input.empty")
    raise InputError("input.too_many", name="steps", limit=64, value=65)

`str(exc)` is an English sentence for the CLI and logs (the template in `MESSAGES`); pages translate by code
(`error.<code>` in ui/strings/errors.yaml, Korean and English) and fall back to the English sentence for a code
they do not know. Anything that is not a `UserError` is a bug and is shown as one.

Older raise sites pass a plain English sentence instead of a code (`InputError("type one Korean word")`); that
still works: the error gets its class's `default_code`, and the sentence becomes `fmt["detail"]`.
"""

from __future__ import annotations

import re
import string
from typing import Any

# code -> English template; the placeholders are the keys of `fmt`. ui/strings/errors.yaml has ko/en for these.
MESSAGES: dict[str, str] = {
    # the default codes of the family's classes: a plain English sentence arrives as {detail} and is the message
    "user.error": "{detail}",
    "input.invalid": "{detail}",
    "model.unavailable": "{detail}",
    "server.error": "{detail}",
    "store.error": "{detail}",
    "memory.sweep_too_large": "{detail}",
    "memory.refused": "{detail}",
    "preference.invalid": "{detail}",
    # text and lists a learner types (engine.core.textinput)
    "input.empty": "empty text",  # the CLI prints "error: empty text"
    "input.not_text": "The text must be a string (got {value}).",
    "input.empty_list": "{name}: the list is empty; give at least one value, e.g. {example}.",
    "input.not_a_number": "{name}: cannot read {value!r} as a number; expected comma-separated numbers.",
    "input.not_an_integer": "{name}: cannot read {value!r} as a whole number; expected comma-separated integers.",
    "input.too_small": "{name} must be at least {limit} (got {value}).",
    "input.too_large": "{name} must be at most {limit} (got {value}).",
    "input.too_many": "{name}: give at most {limit} values (got {value}).",
    "input.out_of_range": "{name} must be between {low:,} and {high:,} (got {value}).",
    "input.context_overflow": (
        "the prompt ({prompt_tokens:,} tokens) plus {new_tokens} new tokens does not fit the model's context window "
        "of {context_window:,} tokens: shorten the prompt."
    ),
    "input.temperature_zero": (
        "temperature must be greater than 0 (got {value}); temperature 0 is greedy decoding: "
        "choose the greedy strategy instead."
    ),
    "input.unknown_choice": "{name}: unknown value {value!r}; use one of {choices}.",
    # retrieval (chapters 10-11)
    "query.too_long": (
        "the query is {chars:,} characters long; search takes a question of at most {limit} characters, not a document"
    ),
    "query.no_letters": "the query has no letters or digits (only symbols or emoji): type a question in Korean",
    "retrieval.not_in_vocabulary": "'{word}' is not in the vocabulary (words seen often enough in the corpus).",
    "retrieval.too_few_words": "too few words for word2vec ({words} with min_count {min_count}): lower min_count.",
    "retrieval.one_word": "type one Korean word, e.g. 세금",
    "retrieval.unknown_morpheme": "Kiwi knows no morpheme {word!r}: try a single Korean word such as 세금 or 국회",
    "retrieval.two_sentences": "give at least two non-empty sentences (one per line)",
    "retrieval.no_words": "no words left after tokenization: type Korean sentences",
    "retrieval.no_documents": "BM25 needs at least one document.",
    "retrieval.all_documents_empty": "every document is empty after tokenization.",
    "retrieval.no_training_pairs": "no training pairs: give at least one (question, passage) pair.",
}

_CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


class _Lenient(string.Formatter):
    """Format a template without failing on a missing or odd value: a missing `{key}` stays as written."""

    def get_value(self, key: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        if isinstance(key, str) and key not in kwargs:
            return "{" + key + "}"
        return super().get_value(key, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> str:
        try:
            return super().format_field(value, format_spec)
        except (TypeError, ValueError):
            return str(value)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
            return value  # a missing key: leave it as written
        return super().convert_field(value, conversion)


def format_message(template: str, fmt: dict[str, Any]) -> str:
    """`template.format(**fmt)`, but a missing or unformattable value never raises (used for ko and en)."""
    try:
        return _Lenient().format(template, **fmt)
    except (IndexError, KeyError, ValueError, AttributeError):
        return template


def is_code(text: str) -> bool:
    """Whether `text` names an error code ("input.too_many") rather than being a sentence."""
    return text in MESSAGES or bool(_CODE.match(text))


class UserError(ValueError):
    """An error the learner can fix; `code` names it, `fmt` holds the values its message needs."""

    default_code = "user.error"

    def __init__(self, code: str | None = None, /, *args: Any, **fmt: Any) -> None:
        if code is None:
            code = self.default_code
        elif not isinstance(code, str) or not is_code(code):
            # an older raise site: a plain sentence (and maybe more args) instead of a code
            detail = " ".join(str(a) for a in (code, *args))
            fmt = {"detail": detail, **fmt}
            code, args = self.default_code, ()
        self.code: str = code
        self.fmt: dict[str, Any] = fmt
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The English sentence (also `str(exc)`)."""
        template = MESSAGES.get(self.code)
        if template is None:
            detail = self.fmt.get("detail")
            if detail is not None:
                return str(detail)
            values = ", ".join(f"{k}={v!r}" for k, v in self.fmt.items())
            return f"{self.code} ({values})" if values else self.code
        return format_message(template, self.fmt)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # keep code and fmt through pickling (jobs that run in another process)
        return (_rebuild, (type(self), self.code, self.fmt, dict(self.__dict__)))


def _rebuild(cls: type[UserError], code: str, fmt: dict[str, Any], state: dict[str, Any]) -> UserError:
    exc = cls.__new__(cls)
    ValueError.__init__(exc)
    exc.__dict__.update(state)
    exc.code, exc.fmt = code, fmt
    exc.args = (exc.message,)
    return exc


__all__ = ["MESSAGES", "UserError", "format_message", "is_code"]
