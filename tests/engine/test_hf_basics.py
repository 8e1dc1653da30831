"""engine.training.hf_basics: the Constitution-paragraph dataset, its WordPiece tokenizer, padding, attention masks."""

from __future__ import annotations

import re

import pytest

from engine.training.hf_basics import (
    SPECIAL_TOKENS,
    build_dataset,
    chapter_counts,
    constitution_paragraphs,
    dataset_overview,
    padded_batch,
    train_tokenizer,
    wordpiece_vocab,
)


def test_paragraphs_cover_articles_1_to_130_without_preamble_or_addenda():
    paras = constitution_paragraphs()
    assert paras[0].text == "대한민국은 민주공화국이다." and paras[0].chapter == "총강" and paras[0].article == 1
    assert {p.article for p in paras} == set(range(1, 131))
    assert [p.chapter_no for p in paras] == sorted(p.chapter_no for p in paras)  # in order, chapters 1..10
    assert {p.chapter_no for p in paras} == set(range(1, 11))
    for p in paras:  # the label must not leak through the article number or the paragraph marker
        assert not re.match(r"^(제\d+조|[①-⑳])", p.text), p.text
        assert "부칙" not in p.text and "이 헌법은 1988년" not in p.text
    assert 290 <= len(paras) <= 360


def test_chapter_counts_match_paragraphs():
    counts = chapter_counts()
    assert [c["chapter_no"] for c in counts] == list(range(1, 11))
    assert sum(c["paragraphs"] for c in counts) == len(constitution_paragraphs())
    assert {c["chapter"] for c in counts} >= {"총강", "국민의 권리와 의무", "국회", "정부", "법원"}


def test_build_dataset_stratified_and_labelled():
    dd = build_dataset(min_per_class=15, test_fraction=0.2, seed=0)
    names = dd["train"].features["label"].names
    assert names[0] == "제1장 총강" and "제4장 정부" in names and "제8장 지방자치" not in names  # 4 paragraphs
    assert set(dd) == {"train", "test"} and set(dd["train"].column_names) == {"text", "label", "article"}
    n = len(dd["train"]) + len(dd["test"])
    assert len(dd["test"]) == pytest.approx(0.2 * n, abs=1)
    for split in ("train", "test"):  # stratified: every kept chapter appears in both splits
        assert set(dd[split]["label"]) == set(range(len(names)))
    again = build_dataset(min_per_class=15, test_fraction=0.2, seed=0)
    assert list(again["test"]["text"]) == list(dd["test"]["text"])


def test_build_dataset_bad_settings():
    with pytest.raises(ValueError, match="min_per_class"):
        build_dataset(min_per_class=1000)
    with pytest.raises(ValueError, match="test_fraction"):
        build_dataset(test_fraction=0.9)


def test_wordpiece_vocab_is_deterministic_and_splits_korean_words():
    texts = list(build_dataset()["train"]["text"])
    vocab = wordpiece_vocab(texts, 2000)
    assert vocab[: len(SPECIAL_TOKENS)] == SPECIAL_TOKENS and len(vocab) == len(set(vocab)) <= 2000
    assert wordpiece_vocab(texts, 2000) == vocab
    tok = train_tokenizer(texts)
    assert tok.get_vocab() == train_tokenizer(texts).get_vocab()
    pieces = tok.tokenize("국민에게 새로운 권리를 보장한다")
    assert pieces[0] == "국민" and "[UNK]" not in pieces
    ids = tok("대통령은")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    with pytest.raises(ValueError):
        wordpiece_vocab([])


@pytest.mark.parametrize("side", ["right", "left"])
def test_padded_batch_masks_exactly_the_padding(side):
    tok = train_tokenizer(list(build_dataset()["train"]["text"]))
    texts = ["대통령은 국가의 원수이다", "국회는 법률을 만든다 그리고 예산을 심의한다 또한 국정을 감사한다", "법원"]
    b = padded_batch(tok, texts, max_length=12, padding_side=side)
    assert len({len(r) for r in b.input_ids}) == 1
    for tokens, mask in zip(b.tokens, b.attention_mask, strict=True):
        assert [int(t != b.pad_token) for t in tokens] == mask
        assert (mask[0] == 1) if side == "right" else (mask[-1] == 1)
    assert b.truncated == [False, True, False]
    with pytest.raises(ValueError):
        padded_batch(tok, [], 12)


def test_dataset_overview_marks_dropped_chapters():
    ov = dataset_overview(min_per_class=15)
    kept = [c["label"] for c in ov.counts if c["kept"]]
    assert kept == ov.labels and len(ov.counts) == 10
