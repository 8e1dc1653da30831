"""engine.lm.tokenization: one text, four real tokenizers (no mocks)."""

from __future__ import annotations

import time

import pytest
from kiwipiepy import Kiwi

from engine.core.textinput import InputError
from engine.lm.tokenization import (
    MAX_CHARS,
    MAX_GROUPED,
    MAX_SHOWN_TOKENS,
    TOKENIZERS,
    compare_tokenizers,
    token_cost,
    tokenize_one,
)

BPE, SP, WP, KIWI = list(TOKENIZERS)
HF = (BPE, SP, WP)

TEXTS = {
    "ko": "대한민국의 수도는 서울입니다.",
    "en": "The capital of France is Paris.",
    "emoji": "🙂👍🏽🇰🇷",
    "mixed": "GPT-4는 2023년에 released 됐다 🚀!",
}
# Exact counts (special tokens excluded), pinned from the packaged tokenizers.
EXPECTED = {
    BPE: {"ko": 36, "en": 7, "emoji": 14, "mixed": 27},
    SP: {"ko": 8, "en": 7, "emoji": 5, "mixed": 15},
    WP: {"ko": 33, "en": 7, "emoji": 1, "mixed": 18},
    KIWI: {"ko": 8, "en": 6, "emoji": 3, "mixed": 13},
}
SPEED_LIMIT_S = 1.0  # 10,000 characters through all four tokenizers, warm


@pytest.fixture(scope="module")
def fresh_kiwi():
    """A Kiwi of its own (building one takes seconds), independent of the engine's instance."""
    return Kiwi()


def test_four_tokenizers_loaded(tokenizers):
    assert list(tokenizers) == list(TOKENIZERS)
    assert isinstance(tokenizers[KIWI], Kiwi)


@pytest.mark.parametrize("lang", sorted(TEXTS))
@pytest.mark.parametrize("name", HF)
def test_counts_match_the_hf_tokenizer(tokenizers, name, lang):
    tok, text = tokenizers[name], TEXTS[lang]
    r = tokenize_one(name, tok, text)
    own = tok(text, add_special_tokens=False).input_ids
    assert r.count == len(own) == EXPECTED[name][lang]
    assert r.ids == own
    assert r.tokens == tok.convert_ids_to_tokens(own)
    assert r.vocab_size == len(tok)
    assert r.algorithm == TOKENIZERS[name][1]
    assert r.chars_per_token == pytest.approx(len(text) / r.count)


@pytest.mark.parametrize("lang", sorted(TEXTS))
def test_kiwi_count_matches_kiwi(tokenizers, fresh_kiwi, lang):
    text = TEXTS[lang]
    r = tokenize_one(KIWI, tokenizers[KIWI], text)
    morphs = fresh_kiwi.tokenize(text)
    assert r.count == len(morphs) == EXPECTED[KIWI][lang]
    assert r.tokens == [f"{m.form}/{m.tag}" for m in morphs]
    assert r.ids == [None] * r.count and r.vocab_size is None


def test_kiwi_splits_korean_into_morphemes(tokenizers):
    r = tokenize_one(KIWI, tokenizers[KIWI], TEXTS["ko"])
    assert r.tokens[:4] == ["대한민국/NNP", "의/JKG", "수도/NNG", "는/JX"]


def test_byte_level_bpe_splits_hangul_below_characters(tokenizers):
    r = tokenize_one(BPE, tokenizers[BPE], TEXTS["ko"])
    assert "\ufffd" in "".join(r.pieces)  # pieces of one syllable are not valid UTF-8 on their own
    assert tokenizers[BPE].decode(r.ids) == TEXTS["ko"]  # ... but together they are lossless
    assert r.count > 2 * tokenize_one(SP, tokenizers[SP], TEXTS["ko"]).count


def test_100k_characters_handled_150k_truncated(tokenizers):
    unit = "한국어와 English가 섞인 문장입니다. "
    text = (unit * (MAX_CHARS // len(unit) + 1))[:MAX_CHARS]
    results, note = compare_tokenizers(text, tokenizers)
    assert note is None
    assert all(r.count > 10_000 for r in results)
    assert all(len(r.tokens) == len(r.pieces) == len(r.ids) == MAX_SHOWN_TOKENS for r in results)

    long_results, long_note = compare_tokenizers(text + "x" * 50_000, tokenizers)
    assert long_note == "truncated from 150,000 to 100,000 characters"
    assert [r.count for r in long_results] == [r.count for r in results]  # the tail was cut before tokenizing


def test_empty_text_raises(tokenizers):
    for text in ("", "   \n"):
        with pytest.raises(InputError):
            compare_tokenizers(text, tokenizers)


def test_control_characters_removed_with_note(tokenizers):
    results, note = compare_tokenizers("hello\x00 world\x07", tokenizers)
    assert note == "removed 2 control characters"
    clean = {r.name: r.count for r in compare_tokenizers("hello world", tokenizers)[0]}
    assert {r.name: r.count for r in results} == clean


def test_token_cost_rows(tokenizers):
    pairs = [{"ko": "고양이가 매트 위에 앉았다.", "en": "The cat sat on the mat."}]
    rows = token_cost(pairs, tokenizers)
    assert len(rows) == 2 * len(TOKENIZERS)
    assert {(r["tokenizer"], r["lang"]) for r in rows} == {(n, lang) for n in TOKENIZERS for lang in ("ko", "en")}
    by = {(r["tokenizer"], r["lang"]): r["tokens"] for r in rows}
    assert by[(BPE, "ko")] > by[(BPE, "en")]  # Korean costs more on an English-trained byte-level BPE


def test_10k_characters_with_all_four_within_a_second(tokenizers):
    text = ("안녕하세요, 세계! Hello world 🙂 한국어 토큰화는 재미있다. " * 400)[:10_000]
    compare_tokenizers(text, tokenizers)  # warm-up (Kiwi builds its caches on first use)
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        results, _ = compare_tokenizers(text, tokenizers)
        timings.append(time.perf_counter() - start)
    best = min(timings)
    per = {r.name: round(r.seconds * 1000, 1) for r in results}
    assert best <= SPEED_LIMIT_S, f"10k chars took {best * 1000:.0f} ms (per tokenizer, ms: {per})"


def test_groups_show_characters_never_replacement_marks(tokenizers):
    """The byte pieces of one Hangul syllable are one display group, with their raw bytes (as in tiktokenizer)."""
    r = tokenize_one(BPE, tokenizers[BPE], TEXTS["ko"])
    assert [g.text for g in r.groups][:3] == ["대", "한", "민"]
    assert all("\ufffd" not in g.text for g in r.groups)
    assert "".join(g.text for g in r.groups) == TEXTS["ko"]
    assert [p for g in r.groups for p in g.positions] == list(range(r.count))  # every token once, in order
    first = r.groups[0]
    assert first.hex == "대".encode().hex(" ").upper() == "EB 8C 80" and len(first.positions) > 1


def test_whole_tokens_are_groups_of_one(tokenizers):
    r = tokenize_one(SP, tokenizers[SP], TEXTS["en"])
    assert all(len(g.positions) == 1 and not g.hex for g in r.groups)
    assert [g.raw[0] for g in r.groups] == r.tokens


def test_kiwi_groups_are_its_morphemes_and_it_has_no_vocabulary(tokenizers):
    r = tokenize_one(KIWI, tokenizers[KIWI], TEXTS["ko"])
    assert [g.text for g in r.groups][:4] == ["대한민국", "의", "수도", "는"]
    assert [g.raw for g in r.groups][:2] == [("대한민국/NNP",), ("의/JKG",)]
    assert all(g.ids == () and g.hex == "" for g in r.groups)
    assert r.vocab_size is None  # a dictionary-based analyzer: the page shows "—" and says why


def test_groups_cover_at_most_max_grouped_tokens(tokenizers):
    text = "안녕하세요 " * 200
    r = tokenize_one(BPE, tokenizers[BPE], text)
    assert r.count > MAX_GROUPED
    assert len(r.groups) <= MAX_GROUPED
    assert max(p for g in r.groups for p in g.positions) < MAX_GROUPED + 8  # the last character stays whole
    assert all("\ufffd" not in g.text and not g.text.startswith("⟨") for g in r.groups)
