"""engine.core.errors: the UserError family, its codes, and their Korean/English text in ui/strings/errors.yaml."""

from __future__ import annotations

import pickle
import string

import pytest

from engine.core import InputError, UserError
from engine.core.errors import MESSAGES, format_message, is_code
from ui.errors import error_message, is_backend, translated
from ui.i18n import LANGS, strings

ERROR_KEYS = sorted(k for k in strings() if k.startswith("error.") and not k.startswith("error.name."))
CODES = [k.removeprefix("error.") for k in ERROR_KEYS]


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _sample(fields: set[str]) -> dict:
    return {name: f"<{name}>" for name in fields}


def test_errors_yaml_has_codes():
    assert "input.empty" in CODES and "input.too_many" in CODES and len(CODES) >= 10


@pytest.mark.parametrize("code", CODES)
def test_every_translated_code_is_an_engine_code(code):
    assert code in MESSAGES, f"error.{code} in ui/strings/errors.yaml but not in engine.core.errors.MESSAGES"


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_every_engine_code_is_translated(code):
    assert f"error.{code}" in strings(), f"{code}: add error.{code} (ko, en) to ui/strings/errors.yaml"


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("lang", LANGS)
def test_code_formats_in_both_languages(code, lang):
    fields = _fields(MESSAGES[code])
    entry = strings()[f"error.{code}"]
    assert _fields(entry[lang]) <= fields, f"error.{code} ({lang}) needs values the engine does not pass"
    exc = UserError(code, **_sample(fields))
    text = error_message(exc, lang)
    assert text and "{" not in text, text
    assert text == translated(code, exc.fmt, lang)
    for name in _fields(entry[lang]) - {"name"}:  # each value the sentence names appears in it
        assert f"<{name}>" in text
    assert "{" not in str(exc)  # the English CLI sentence formats too


@pytest.mark.parametrize("lang", LANGS)
def test_names_are_translated(lang):
    exc = InputError("input.too_large", name="batch sizes", limit=32, value=99)
    label = strings()["error.name.batch_sizes"][lang]
    assert label in error_message(exc, lang) and "32" in error_message(exc, lang)


def test_korean_differs_from_english():
    exc = InputError("input.empty")
    assert error_message(exc, "ko") != error_message(exc, "en")
    assert error_message(exc, "en") == strings()["error.input.empty"]["en"]


def test_code_and_fmt():
    exc = UserError("input.too_many", name="steps", limit=64, value=65)
    assert exc.code == "input.too_many" and exc.fmt == {"name": "steps", "limit": 64, "value": 65}
    assert str(exc) == "steps: give at most 64 values (got 65)." == exc.args[0]
    assert UserError("input.empty").fmt == {} and str(UserError("input.empty")).startswith("empty text")


def test_missing_value_does_not_crash():
    assert str(UserError("input.too_many", name="steps")) == "steps: give at most {limit} values (got {value})."
    assert format_message("{value!r} / {limit:,}", {"limit": "many"}) == "{value} / many"


def test_unknown_code_falls_back_to_english():
    exc = InputError("input.something_new", value=3)
    assert exc.code == "input.something_new" and str(exc) == "input.something_new (value=3)"
    assert translated(exc.code, exc.fmt, "ko") is None and error_message(exc, "ko") == str(exc)


def test_plain_sentence_keeps_its_message():
    exc = InputError("type one Korean word, e.g. 세금")
    assert exc.code == "input.invalid" and exc.fmt == {"detail": "type one Korean word, e.g. 세금"}
    assert str(exc) == "type one Korean word, e.g. 세금"
    assert "type one Korean word" in error_message(exc, "ko") and error_message(exc, "ko") != str(exc)
    assert not is_code("no morpheme 'x.y'") and is_code("input.too_many") and is_code("model.new_thing")


def test_pickle_keeps_code_and_fmt():
    exc = pickle.loads(pickle.dumps(InputError("input.too_large", name="n", limit=3, value=4)))
    assert (
        type(exc) is InputError and exc.code == "input.too_large" and exc.fmt["value"] == 4 and "at most 3" in str(exc)
    )


def _family():
    from engine.alignment.reward import PreferenceError
    from engine.ann.memory import SweepTooLarge
    from engine.models import ModelUnavailable
    from engine.serving import ModelServerError
    from engine.training.memory.profile import MemoryRefused
    from engine.vectorstore.errors import DuplicateId, MissingId, StoreCorrupted, StoreError
    from engine.vectorstore.sqlite_store import StoreCorruptedError

    return {
        InputError: "input.invalid",
        ModelUnavailable: "model.unavailable",
        ModelServerError: "server.error",
        SweepTooLarge: "memory.sweep_too_large",
        StoreError: "store.error",
        DuplicateId: "store.error",
        MissingId: "store.error",
        StoreCorrupted: "store.error",
        StoreCorruptedError: "store.error",
        MemoryRefused: "memory.refused",
        PreferenceError: "preference.invalid",
    }


def test_family_relationships():
    for cls, code in _family().items():
        assert issubclass(cls, UserError) and issubclass(cls, ValueError), cls
        assert cls.default_code == code, cls
        assert code in MESSAGES
    from engine.models import ModelUnavailable
    from engine.serving import ModelServerError

    for cls in (ModelUnavailable, ModelServerError):  # still RuntimeErrors for the code that catches those
        assert issubclass(cls, RuntimeError)
        assert is_backend(cls("the server is down"))
    assert not is_backend(InputError("input.empty"))
    from engine.core import Cancelled

    assert not issubclass(Cancelled, UserError)  # a stop the learner asked for is not an error


def test_subclass_with_its_own_init():
    from engine.training.memory.profile import MemoryRefused

    exc = MemoryRefused("needs 9 GiB, 2 GiB free", estimate="E")
    assert exc.code == "memory.refused" and exc.estimate == "E" and str(exc) == "needs 9 GiB, 2 GiB free"
    again = pickle.loads(pickle.dumps(exc))
    assert again.estimate == "E" and str(again) == str(exc)


def test_store_error_with_message_is_caught_as_before():
    from engine.vectorstore.errors import MissingId

    with pytest.raises(ValueError, match="no document 'x'"):
        raise MissingId("no document 'x' in the store")
