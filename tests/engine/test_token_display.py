"""Byte pieces are grouped into the characters they form, with the tokenizer's own decoder (never `�`)."""

from __future__ import annotations

import pytest

from engine.lm import group_tokens, token_labels
from engine.lm.token_display import raw_bytes, readable, token_views
from engine.models.loading import load_tokenizer

TEXT = "안녕하세요, 토큰화 실습 hello 🤗"


@pytest.fixture(scope="module", params=["chat", "base-ko", "embed"])
def tok(request):
    return load_tokenizer(request.param)


def test_groups_join_back_to_the_decoded_text_without_replacement_marks(tok):
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    groups = group_tokens(tok, ids)
    assert [p for g in groups for p in g.positions] == list(range(len(ids)))  # every token once, in order
    assert all("\ufffd" not in g.text for g in groups)
    if not tok.convert_ids_to_tokens(ids[1]).startswith("##"):  # WordPiece decodes with spaces, not by joining
        assert "".join(g.text for g in groups) == tok.decode(ids, clean_up_tokenization_spaces=False)
    labels = token_labels(tok, ids)
    assert len(labels) == len(ids) and all("\ufffd" not in x for x in labels)


def test_byte_level_bpe_hangul_pieces_show_their_utf8_bytes():
    tok = load_tokenizer("chat")
    ids = tok("안", add_special_tokens=False)["input_ids"]
    assert len(ids) > 1  # SmolLM2's byte-level BPE cuts the syllable: the point of the lesson
    (group,) = group_tokens(tok, ids)
    assert group.text == "안" and group.is_bytes
    assert group.hex == "EC 95 88" == "안".encode().hex(" ").upper()
    assert token_labels(tok, ids) == [f"안 ({k}/{len(ids)})" for k in range(1, len(ids) + 1)]


def test_a_text_cut_inside_a_character_shows_bytes_not_a_replacement_mark():
    tok = load_tokenizer("chat")
    ids = tok("안", add_special_tokens=False)["input_ids"][:1]
    (group,) = group_tokens(tok, ids)
    assert group.text.startswith("⟨") and "\ufffd" not in group.text and group.hex


def test_raw_bytes_of_vocabulary_entries():
    assert raw_bytes("<0xEC>") == b"\xec"
    assert raw_bytes("Ġ") == b" "
    assert raw_bytes("ìķ") == "안".encode()[:2]


def test_token_views_give_each_byte_piece_its_own_bytes_and_mark_only_the_text():
    tok = load_tokenizer("chat")
    ids = tok(" 안 hi", add_special_tokens=False)["input_ids"]
    views = token_views(tok, ids, mark=lambda s: s.replace(" ", "␣"))
    assert [v.label for v in views] == ["␣안 (1/3)", "␣안 (2/3)", "␣안 (3/3)", "␣hi"]  # the suffix keeps its space
    assert [v.hex for v in views] == ["20 EC", "95", "88", ""]  # " " + 안 = 20 EC 95 88, one token at a time
    assert [v.raw for v in views] == tok.convert_ids_to_tokens(ids)
    assert token_labels(tok, ids, mark=lambda s: s.replace(" ", "␣")) == [v.label for v in views]


def test_sentencepiece_byte_fallback_pieces_show_their_bytes():
    tok = load_tokenizer("base-ko")
    ids = [tok.convert_tokens_to_ids(f"<0x{b:02X}>") for b in "똠".encode()]
    views = token_views(tok, ids)
    assert [v.label for v in views] == ["똠 (1/3)", "똠 (2/3)", "똠 (3/3)"]
    assert [v.hex for v in views] == [f"{b:02X}" for b in "똠".encode()]


def test_bytes_that_never_form_a_character_are_not_marked():
    tok = load_tokenizer("chat")
    ids = tok("안", add_special_tokens=False)["input_ids"][:1]
    (group,) = group_tokens(tok, ids)
    assert readable(group, mark=lambda s: s.upper() + "!") == group.text  # ⟨EC⟩ stays as it is shown
