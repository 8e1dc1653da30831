"""engine.llmops.judge: the interval math and the bias arithmetic exactly on fixed verdicts, the pair file's bad
input, and one pair judged in both orders by the real `instruct` llama.cpp server (Qwen2.5-Coder-0.5B)."""

from __future__ import annotations

import json
import math

import pytest

from engine.core.errors import MESSAGES
from engine.core.textinput import InputError
from engine.llmops.judge import (
    INVALID_CODES,
    VERDICT_SCHEMA,
    JudgePair,
    Verdict,
    ask_judge,
    bias_report,
    bootstrap_ci,
    load_judge_pairs,
    pair_verdict,
    parse_verdict,
    proportion,
    wilson,
)


# --- intervals ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(5, 10, 0.2365931, 0.7634069), (0, 10, 0.0, 0.2775328), (10, 10, 0.7224672, 1.0), (1, 50, 0.0035393, 0.1049544)],
)
def test_wilson_matches_the_closed_form(k, n, low, high):
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(low, abs=1e-6) and hi == pytest.approx(high, abs=1e-6)


@pytest.mark.parametrize(("k", "n"), [(0, 7), (3, 7), (7, 7), (17, 52), (40, 100)])
def test_wilson_equals_scipy(k, n):
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(ci.low, abs=1e-9) and hi == pytest.approx(ci.high, abs=1e-9)


def test_wilson_of_nothing_is_undefined_and_bad_counts_raise():
    assert wilson(0, 0) == (None, None)
    assert proportion(0, 0).value is None
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    import numpy as np

    data = np.array([0, 1, 1, 0, 1, 1, 1, 0, 1, 1], dtype=float)
    a = bootstrap_ci(lambda idx: float(data[idx].mean()), len(data))
    b = bootstrap_ci(lambda idx: float(data[idx].mean()), len(data))
    assert a == b and a[0] < 0.7 < a[1] and a[0] >= 0.0 and a[1] <= 1.0
    assert bootstrap_ci(lambda idx: 1.0, 0) == (None, None)


# --- parsing what a judge says ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "slot", "code"),
    [
        ({"winner": "A", "reason": "more precise"}, "A", None),
        ({"winner": " b ", "reason": ""}, "B", None),
        ({"winner": "Tie"}, "tie", None),
        ('{"winner": "B", "reason": "x"}', "B", None),
        ('Sure! Here is my verdict: {"winner": "A", "reason": "x"} Hope it helps.', "A", None),
        ("Answer A is better because it is longer.", None, "llmops.judge.not_json"),
        ('{"winner": "A", "reason": "cut off', None, "llmops.judge.not_json"),
        ("", None, "llmops.judge.not_json"),
        (None, None, "llmops.judge.not_json"),
        ("[1, 2, 3]", None, "llmops.judge.not_object"),
        (["A"], None, "llmops.judge.not_object"),
        ({"winner": "C"}, None, "llmops.judge.bad_winner"),
        ({"verdict": "A"}, None, "llmops.judge.bad_winner"),
        ({"winner": None}, None, "llmops.judge.bad_winner"),
    ],
)
def test_parse_verdict_never_raises_and_names_the_problem(raw, slot, code):
    got_slot, _, got_code = parse_verdict(raw)
    assert (got_slot, got_code) == (slot, code)
    assert code is None or code in INVALID_CODES


def test_every_invalid_code_has_a_message():
    assert all(code in MESSAGES for code in INVALID_CODES)


def test_a_swapped_verdict_maps_back_to_the_pairs_own_answers():
    assert Verdict("p", "AB", "A").preferred == "A"
    assert Verdict("p", "BA", "A").preferred == "B"  # slot A held answer B
    assert Verdict("p", "BA", "B").preferred == "A"
    assert Verdict("p", "BA", "tie").preferred == "tie"
    assert Verdict("p", "BA", None, code="llmops.judge.not_json").preferred is None


# --- the figures on fixed verdict lists ---------------------------------------------------------------------------
def _pair(pid: str, la: int, lb: int, label: str) -> JudgePair:
    return JudgePair(pid, f"q{pid}", "가" * la, "나" * lb, label)


PAIRS = [
    _pair("p1", 30, 10, "A"),  # A is longer; label A (the longer)
    _pair("p2", 10, 25, "A"),  # B is longer; label A (the shorter)
    _pair("p3", 10, 40, "B"),  # B is longer; label B (the longer)
    _pair("p4", 20, 20, "tie"),  # as long as each other; label tie
    _pair("p5", 12, 10, "B"),  # A is longer; label B
]
VERDICTS = [
    Verdict("p1", "AB", "A"), Verdict("p1", "BA", "B"),  # consistent: A both times
    Verdict("p2", "AB", "A"), Verdict("p2", "BA", "A"),  # first slot both times: prefers A, then B -> reversal
    Verdict("p3", "AB", "tie"), Verdict("p3", "BA", "A"),  # tie, then B: a flip but not a reversal
    Verdict("p4", "AB", None, code="llmops.judge.not_json"), Verdict("p4", "BA", "B"),  # one invalid
    Verdict("p5", "AB", "B"), Verdict("p5", "BA", "B"),  # prefers B, then A: reversal (second slot both times)
]  # fmt: skip


def test_flip_rate_counts_pairs_with_two_valid_verdicts():
    r = bias_report(PAIRS, VERDICTS)
    # valid both: p1 p2 p3 p5; flips: p2 (A->B), p3 (tie->B), p5 (B->A); reversals p2, p5
    assert (r.flip_rate.k, r.flip_rate.n, r.flip_rate.value) == (3, 4, 0.75)
    assert (r.reversal_rate.k, r.reversal_rate.n) == (2, 4)
    assert (r.flip_rate.low, r.flip_rate.high) == wilson(3, 4) and r.flip_rate.method == "wilson"
    assert r.invalid == 1 and r.invalid_codes == {"llmops.judge.not_json": 1} and r.pairs == 5


def test_first_slot_rate_counts_non_tie_verdicts():
    r = bias_report(PAIRS, VERDICTS)
    # non-tie valid verdicts: p1 A,B; p2 A,A; p3 A; p4 B; p5 B,B -> 8, of which slot A: p1, p2, p2, p3 = 4
    assert (r.first_slot_rate.k, r.first_slot_rate.n, r.first_slot_rate.value) == (4, 8, 0.5)
    assert r.first_slot_rate.method == "bootstrap"


def test_length_bias_is_judge_minus_labels_on_pairs_of_different_length():
    r = bias_report(PAIRS, VERDICTS)
    # judge, non-tie verdicts of pairs with a longer answer (p4 has none): p1 A,A (longer A: 2 of 2); p2 A,B
    # (longer B: 1 of 2); p3 B (longer B: 1 of 1); p5 B,A (longer A: 1 of 2) -> 5 of 7
    assert (r.judge_longer_rate.k, r.judge_longer_rate.n) == (5, 7)
    # labels: p1 A=longer, p2 A=shorter, p3 B=longer, p5 B=shorter -> 2 of 4 (p4: tie and equal lengths)
    assert (r.human_longer_rate.k, r.human_longer_rate.n) == (2, 4)
    assert r.length_bias.value == pytest.approx(5 / 7 - 2 / 4)
    assert r.length_bias.low <= r.length_bias.value <= r.length_bias.high
    # buckets by how much longer the longer answer is: p5 (0.2) | p2 (1.5x -> 1.5), p1 (2.0), p3 (3.0) ...
    sizes = [(b.judge.n, b.human.n) for b in r.length_buckets]
    assert sizes == [(2, 1), (0, 0), (5, 3)]


def test_agreement_uses_the_mt_bench_rule():
    # pair verdicts: p1 A (label A: agree), p2 tie (A), p3 tie (B), p5 tie (B); p4 invalid -> 1 of 4
    r = bias_report(PAIRS, VERDICTS)
    assert (r.agreement_with_humans.k, r.agreement_with_humans.n) == (1, 4)
    # the one-call judge (original order only): p1 A ok, p2 A ok, p3 tie no, p5 B ok -> 3 of 4 (p4 invalid)
    assert (r.agreement_first_order.k, r.agreement_first_order.n) == (3, 4)
    assert pair_verdict(VERDICTS[0], VERDICTS[1]) == "A"
    assert pair_verdict(VERDICTS[6], VERDICTS[7]) is None


def test_report_json_has_the_cli_contract():
    out = bias_report(PAIRS, VERDICTS).to_json(with_verdicts=True)
    for key in ("pairs", "flip_rate", "length_bias", "agreement_with_humans"):
        assert key in out
    for key in ("flip_rate", "length_bias", "agreement_with_humans"):
        low, high = out[f"{key}_ci"]
        assert low <= out[key] <= high
    assert out["invalid"] == 1 and len(out["verdicts"]) == 10
    json.dumps(out)  # plain JSON
    assert out["length_buckets"][-1]["high"] is None  # the open bucket, not inf


def test_figures_per_design_use_the_same_arithmetic():
    pairs = [
        JudgePair(p.pair_id, p.question, p.answer_a, p.answer_b, p.label, design="x" if i < 2 else "y")
        for i, p in enumerate(PAIRS)
    ]
    r = bias_report(pairs, VERDICTS)
    assert set(r.by_design) == {"x", "y"}
    assert (r.by_design["x"].flip_rate.k, r.by_design["x"].flip_rate.n) == (1, 2)  # p1 consistent, p2 flips
    assert (r.by_design["y"].flip_rate.k, r.by_design["y"].flip_rate.n) == (2, 2)  # p3, p5 (p4 invalid)
    assert r.to_json()["by_design"]["x"]["pairs"] == 2


def test_no_verdicts_gives_undefined_figures_not_errors():
    r = bias_report(PAIRS, [])
    assert r.pairs == 0 and r.flip_rate.value is None and r.length_bias.value is None
    assert all(v is None for v in r.to_json()["flip_rate_ci"])


# --- pair files ---------------------------------------------------------------------------------------------------
def test_load_pairs_maps_the_human_eval_items(tmp_path):
    row = {"pair_id": "x1", "question": "q", "answer_a": "a", "answer_b": "bb", "reference": "B", "design": "padded"}
    path = tmp_path / "pairs.jsonl"
    path.write_text("# a comment\n" + json.dumps(row, ensure_ascii=False) + "\n\n", encoding="utf-8")
    (pair,) = load_judge_pairs(path)
    assert (pair.pair_id, pair.label, pair.design, pair.longer) == ("x1", "B", "padded", "B")
    path.write_text("# only comments\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_judge_pairs(path)
    assert exc.value.code == "llmops.judge.no_pairs"
    path.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(InputError):  # the human_eval loader's own code, with the line
        load_judge_pairs(path)


def test_the_shipped_pairs_are_enough_and_well_formed():
    pairs = load_judge_pairs()
    assert len(pairs) >= 50
    assert {p.label for p in pairs} <= {"A", "B", "tie"} and all(p.design for p in pairs)


def test_unknown_role_and_order_are_input_errors():
    with pytest.raises(InputError):
        ask_judge(PAIRS[0], "AB", role="gpt-99")
    with pytest.raises(InputError):
        ask_judge(PAIRS[0], "BB")


def test_schema_asks_the_winner_first():
    assert list(VERDICT_SCHEMA["properties"]) == ["winner", "reason"]
    assert VERDICT_SCHEMA["properties"]["winner"]["enum"] == ["A", "B", "tie"]


# --- the real judge -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def judge_server(tmp_path_factory):
    from tests.engine._server import own_llama_server

    with own_llama_server(tmp_path_factory.mktemp("judge-server")) as cache:
        yield cache


@pytest.mark.server
@pytest.mark.slow
def test_real_judge_answers_both_orders_with_valid_or_coded_verdicts(judge_server):
    pair = JudgePair(
        "real",
        "대통령의 임기는 몇 년인가요?",
        "대통령의 임기는 5년이며 중임할 수 없습니다 [제70조].",
        "대통령의 임기는 4년입니다.",
        "A",
    )
    verdicts = [ask_judge(pair, "AB"), ask_judge(pair, "BA")]
    for v in verdicts:
        assert v.valid or v.code in INVALID_CODES
        if v.valid:
            assert v.slot in ("A", "B", "tie") and json.loads(v.raw)["winner"] == v.slot
        assert v.seconds > 0 and not math.isnan(v.seconds)
    report = bias_report([pair], verdicts)
    assert report.pairs == 1 and report.invalid + report.unanswered == sum(not v.valid for v in verdicts)
