"""engine.core.textinput: clean_text (the bounds every demo puts on typed text) and parse_numbers (typed lists)."""

from __future__ import annotations

import unicodedata

import pytest

from engine.core import UserError, parse_numbers
from engine.core.textinput import DEFAULT_MAX_CHARS, CleanText, InputError, clean_text


@pytest.mark.parametrize("text", ["", None, "   ", "\n\t \n", "\x00\x01\x7f"])
def test_empty_or_blank_raises(text):
    with pytest.raises(InputError, match="empty text") as info:
        clean_text(text)
    assert info.value.code == "input.empty" and isinstance(info.value, UserError)


def test_allow_empty_returns_empty():
    c = clean_text("", allow_empty=True)
    assert c == CleanText("", 0, False, 0) and c.note is None
    assert clean_text(None, allow_empty=True).text == ""


def test_non_string_raises():
    with pytest.raises(InputError, match="string") as info:
        clean_text(123)  # type: ignore[arg-type]
    assert info.value.code == "input.not_text" and info.value.fmt == {"value": "int"}


def test_plain_text_is_untouched():
    text = "안녕하세요, world! 🙂\n\tindented  spaces  "
    c = clean_text(text)
    assert c.text == text
    assert (c.original_chars, c.truncated, c.removed_control, c.note) == (len(text), False, 0, None)


def test_control_characters_removed_but_newlines_and_tabs_kept():
    c = clean_text("a\x00b\x07c\x1b[0m\nd\te\x7f\u0085f")
    assert c.text == "abc[0m\nd\tef"
    assert c.removed_control == 5
    assert c.note == "removed 5 control characters"


def test_lone_surrogates_and_unassigned_removed():
    c = clean_text("x\ud800y\U000e0fffz")
    assert c.text == "xyz" and c.removed_control == 2


def test_nfd_hangul_becomes_nfc():
    nfc = "한국어 토큰화"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc and len(nfd) > len(nfc)
    c = clean_text(nfd)
    assert c.text == nfc
    assert c.note is None  # normalization is not a removal


def test_truncation_at_default_and_custom_limits():
    c = clean_text("가" * (DEFAULT_MAX_CHARS + 5))
    assert len(c.text) == DEFAULT_MAX_CHARS and c.truncated
    assert c.note == f"truncated from {DEFAULT_MAX_CHARS + 5:,} to {DEFAULT_MAX_CHARS:,} characters"
    c = clean_text("abcdef", max_chars=4)
    assert c.text == "abcd" and c.original_chars == 6
    assert clean_text("abcd", max_chars=4).truncated is False


def test_notes_combine():
    c = clean_text("\x00" + "x" * 20, max_chars=10)
    assert c.note == "truncated from 21 to 10 characters; removed 1 control characters"


# parse_numbers: the one parser for a list of numbers a learner types


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,2,4", [1, 2, 4]),
        (" 1, 4 ,16 ", [1, 4, 16]),
        ("1 2  4", [1, 2, 4]),  # spaces alone separate too
        ("64,256,", [64, 256]),  # a trailing comma is fine
        ("1，2、3", [1, 2, 3]),  # the full-width comma a Korean IME types
        ("7", [7]),
        ([8, 16], [8, 16]),  # a list passes through the same checks
    ],
)
def test_parse_numbers_accepts(text, expected):
    assert parse_numbers(text, name="batch") == expected


def test_parse_numbers_float():
    assert parse_numbers("0.5, 1e-3 2", float, name="lr") == [0.5, 0.001, 2.0]
    assert all(isinstance(x, float) for x in parse_numbers("1,2", float, name="lr"))


@pytest.mark.parametrize(
    ("text", "cast", "code", "value"),
    [
        ("", int, "input.empty_list", ""),
        (" , ,", int, "input.empty_list", ""),
        (None, int, "input.empty_list", ""),
        ("1,x,3", int, "input.not_an_integer", "x"),
        ("1.5", int, "input.not_an_integer", "1.5"),
        ("1,abc", float, "input.not_a_number", "abc"),
        ("nan", float, "input.not_a_number", "nan"),
        ("inf", float, "input.not_a_number", "inf"),
        ("0,4", int, "input.too_small", 0),
        ("4,-3", int, "input.too_small", -3),
        ("1,1000", int, "input.too_large", 1000),
    ],
)
def test_parse_numbers_refuses(text, cast, code, value):
    with pytest.raises(InputError) as info:
        parse_numbers(text, cast, name="sizes", min_value=1, max_value=999)
    exc = info.value
    assert exc.code == code
    assert exc.fmt["name"] == "sizes" and exc.fmt["value"] == value
    assert "sizes" in str(exc) and isinstance(exc, ValueError)


def test_parse_numbers_limits_count():
    assert len(parse_numbers(",".join(["1"] * 64), name="n")) == 64
    with pytest.raises(InputError) as info:
        parse_numbers(",".join(["1"] * 65), name="n")
    assert info.value.code == "input.too_many" and info.value.fmt == {"name": "n", "limit": 64, "value": 65}
    with pytest.raises(InputError, match="at most 3 values"):
        parse_numbers("1 2 3 4", name="n", max_items=3)


def test_parse_numbers_bounds_are_inclusive():
    assert parse_numbers("1,999", name="n", min_value=1, max_value=999) == [1, 999]
    assert parse_numbers("-5", name="n") == [-5]  # no bounds unless asked


def test_parse_numbers_messages_name_the_value():
    with pytest.raises(InputError, match=r"cannot read 'x' as a whole number"):
        parse_numbers("x", name="steps")
    with pytest.raises(InputError, match=r"steps must be at most 10 \(got 11\)"):
        parse_numbers("11", name="steps", max_value=10)
