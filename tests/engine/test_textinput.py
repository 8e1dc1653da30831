"""engine.core.textinput.clean_text: the bounds every demo puts on typed text."""

from __future__ import annotations

import unicodedata

import pytest

from engine.core.textinput import DEFAULT_MAX_CHARS, CleanText, InputError, clean_text


@pytest.mark.parametrize("text", ["", None, "   ", "\n\t \n", "\x00\x01\x7f"])
def test_empty_or_blank_raises(text):
    with pytest.raises(InputError, match="empty text"):
        clean_text(text)


def test_allow_empty_returns_empty():
    c = clean_text("", allow_empty=True)
    assert c == CleanText("", 0, False, 0) and c.note is None
    assert clean_text(None, allow_empty=True).text == ""


def test_non_string_raises():
    with pytest.raises(InputError, match="string"):
        clean_text(123)  # type: ignore[arg-type]


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
