"""engine.llmops.metrics: EM, token F1, BLEU, chrF, ROUGE on whitespace tokens vs Kiwi morphemes (real Kiwi, real
sacrebleu and rouge-score), with hand-computed expected values."""

from __future__ import annotations

import math

import pytest
from sacrebleu.metrics import BLEU

from engine.core.textinput import InputError
from engine.llmops.metrics import (
    EXAMPLE_PAIRS,
    METRICS,
    TOKENIZATIONS,
    evaluate_pairs,
    exact_match,
    morpheme_tokens,
    token_f1,
    whitespace_tokens,
)


def _one(pred: str, ref: str):
    return evaluate_pairs([pred], [ref]).pairs[0]


def test_identical_korean_scores_100_everywhere_but_rouge_default_tokenizer_sees_nothing():
    pair = _one("대한민국은 민주공화국이다.", "대한민국은 민주공화국이다.")
    for tok in TOKENIZATIONS:
        assert pair.scores[tok].as_dict() == pytest.approx({m: 100.0 for m in METRICS})
    # rouge-score's default tokenizer keeps only [a-z0-9]: a perfect Korean answer gets ROUGE-L 0
    assert pair.rouge_default_tokenizer == 0.0
    assert _one("The cat sat.", "The cat sat.").rouge_default_tokenizer == pytest.approx(100.0)
    # ... and only digits survive it: two different Korean sentences sharing "5" score 100
    other = _one("대통령의 임기는 5년이다.", "대통령의 임기는 5년으로 하며, 중임할 수 없다.")
    assert other.rouge_default_tokenizer == pytest.approx(100.0)
    assert other.scores["whitespace"].rougeL < 50


def test_spacing_mistake_whitespace_vs_morpheme():
    pred, ref = "모든국민은 근로의권리를 가진다", "모든 국민은 근로의 권리를 가진다"
    assert whitespace_tokens(pred) == ["모든국민은", "근로의권리를", "가진다"]
    assert len(whitespace_tokens(ref)) == 5
    pair = _one(pred, ref)
    ws = pair.scores["whitespace"]
    # one common token (가진다): P = 1/3, R = 1/5, F1 = 2PR/(P+R) = 1/4
    assert ws.exact_match == 0.0
    assert ws.token_f1 == pytest.approx(25.0)
    assert ws.rouge1 == pytest.approx(25.0)
    assert ws.rouge2 == 0.0  # no bigram in common
    assert ws.rougeL == pytest.approx(25.0)  # LCS = 1 token
    # Kiwi ignores the missing spaces: the same morphemes on both sides
    assert morpheme_tokens(pred) == morpheme_tokens(ref)
    mo = pair.scores["morpheme"]
    assert mo.exact_match == 100.0 and mo.token_f1 == pytest.approx(100.0) and mo.bleu == pytest.approx(100.0)
    assert pair.gap("token_f1") == pytest.approx(75.0)
    assert ws.chrf == pytest.approx(100.0)  # chrF drops the spaces before counting character n-grams


def test_particle_change_whitespace_zero_morpheme_partial():
    pred, ref = "국회의원의 임기", "국회의원 임기는"
    pair = _one(pred, ref)
    assert pair.scores["whitespace"].token_f1 == 0.0  # 국회의원의 ≠ 국회의원, 임기 ≠ 임기는
    # Kiwi keeps the compound whole in one phrase and splits it in the other (a caveat of its own)
    assert pair.tokens["morpheme"] == (["국회의원", "의", "임기"], ["국회", "의원", "임기", "는"])
    # one morpheme in common (임기): P = 1/3, R = 1/4, F1 = 2/7
    assert pair.scores["morpheme"].token_f1 == pytest.approx(100 * 2 / 7)
    assert pair.scores["morpheme"].rouge1 == pytest.approx(100 * 2 / 7)


def test_bleu_matches_the_formula():
    # 5 tokens each, 4/5 unigrams, 3/4 bigrams, 2/3 trigrams, 1/2 4-grams match; equal lengths: BP = 1
    report = evaluate_pairs(["가 나 다 라 마"], ["가 나 다 라 바"])
    expected = 100 * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    assert report.corpus["whitespace"].bleu == pytest.approx(expected, abs=1e-9)
    assert report.pairs[0].scores["whitespace"].bleu == pytest.approx(expected, abs=1e-9)
    # a short hypothesis: every n-gram matches, brevity penalty exp(1 - 5/4)
    short = evaluate_pairs(["가 나 다 라"], ["가 나 다 라 마"])
    assert short.corpus["whitespace"].bleu == pytest.approx(100 * math.exp(1 - 5 / 4), abs=1e-9)
    # the same number straight from sacrebleu on the pre-tokenized text
    direct = BLEU(tokenize="none").corpus_score(["가 나 다 라"], [["가 나 다 라 마"]]).score
    assert short.corpus["whitespace"].bleu == pytest.approx(direct)


def test_token_f1_equals_rouge1_from_the_library():
    # token F1 (computed here) and ROUGE-1 F (rouge-score) are the same clipped unigram overlap
    report = evaluate_pairs([p for p, _ in EXAMPLE_PAIRS], [r for _, r in EXAMPLE_PAIRS])
    for pair in report.pairs:
        for tok in TOKENIZATIONS:
            assert pair.scores[tok].token_f1 == pytest.approx(pair.scores[tok].rouge1)
    # and morphemes never score a pair lower on token F1 here than whitespace does
    assert sum(p.gap("token_f1") for p in report.pairs) > 0
    assert report.corpus["morpheme"].token_f1 > report.corpus["whitespace"].token_f1
    assert set(report.libraries) == {"sacrebleu", "rouge-score"}
    assert len(report.rows()) == 2 * len(EXAMPLE_PAIRS)


def test_chrf_moves_with_morphemes_because_kiwi_restores_base_forms():
    pair = _one("권리를 가진다", "권리를 가지며")
    assert pair.scores["whitespace"].chrf != pytest.approx(pair.scores["morpheme"].chrf)
    assert "가지" in pair.tokens["morpheme"][0] and "가지" in pair.tokens["morpheme"][1]


def test_exact_match_and_f1_helpers():
    assert exact_match(["a", "b"], ["a", "b"]) == 100.0 and exact_match(["a"], ["a", "b"]) == 0.0
    assert token_f1(["a", "a", "b"], ["a", "b", "b"]) == pytest.approx(100 * 2 / 3)
    assert token_f1([], []) == 100.0 and token_f1([], ["a"]) == 0.0


def test_empty_prediction_scores_zero():
    pair = _one("", "대통령은 국가의 원수이다.")
    for tok in TOKENIZATIONS:
        assert pair.scores[tok].as_dict() == {m: 0.0 for m in METRICS}


@pytest.mark.parametrize(
    ("preds", "refs", "code"),
    [
        (["a", "b"], ["a"], "llmops.metrics.unequal_lengths"),
        ([], [], "llmops.metrics.no_pairs"),
        (["대통령"], [""], "llmops.metrics.empty_reference"),
        (["대통령"], ["   "], "llmops.metrics.empty_reference"),
        (["대통령"], ["?!."], "llmops.metrics.empty_reference"),
        (["대통령"], [None], "llmops.metrics.not_text"),
        ("대통령", "대통령", "llmops.metrics.not_a_list"),
    ],
)
def test_bad_input(preds, refs, code):
    with pytest.raises(InputError) as info:
        evaluate_pairs(preds, refs)
    assert info.value.code == code
    assert "{" not in str(info.value)
