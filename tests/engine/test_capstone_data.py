"""The capstone's CSV reader, held-out split, char-F1 and retrieval baseline (engine.capstone)."""

from __future__ import annotations

import pytest

from engine.capstone import char_f1, escape_cell, mean_f1, read_qa_csv, retrieval_baseline
from engine.capstone.baseline import nearest
from engine.capstone.qa_csv import MAX_BYTES, QAPair, looks_like_formula, split_heldout
from engine.capstone.scoring import normalize
from engine.core.textinput import InputError


def _csv(rows: list[tuple[str, str]], header=("question", "answer")) -> str:
    return "\n".join([",".join(header), *(f"{q},{a}" for q, a in rows)]) + "\n"


FACTS = [(f"질문 {i} 첫째", f"답 {i}") for i in range(6)] + [(f"질문 {i} 둘째", f"답 {i}") for i in range(6)]


def test_sample_splits_by_fact():
    qa = read_qa_csv("sample")
    s = qa.summary()
    assert (s["pairs"], s["train"], s["heldout"], s["facts"], s["split"]) == (102, 68, 34, 34, "by_fact")
    trained = {p.answer for p in qa.train}
    assert all(p.answer in trained for p in qa.heldout)  # every held-out question rephrases a trained fact
    assert not {p.question for p in qa.train} & {p.question for p in qa.heldout}
    again = read_qa_csv("sample")
    assert [p.question for p in again.heldout] == [p.question for p in qa.heldout]  # seeded: the same split


def test_cp949_and_korean_headers():
    text = _csv(FACTS, header=("질문", "답변"))
    utf8, cp949 = read_qa_csv(text.encode("utf-8-sig")), read_qa_csv(text.encode("cp949"))
    assert utf8.encoding == "utf-8" and cp949.encoding == "cp949"
    assert [p.question for p in utf8.pairs] == [p.question for p in cp949.pairs]
    assert utf8.columns == ("질문", "답변")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "capstone.csv_empty"),
        (b"   \n\n", "capstone.csv_empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "capstone.csv_binary"),
        (bytes(range(0x80, 0x100)) * 4, "capstone.csv_encoding"),
        ("제목,내용\n가,나\n".encode(), "capstone.csv_columns"),
        (_csv(FACTS[:3]).encode(), "capstone.csv_too_few"),
        (b"q" * (MAX_BYTES + 1), "capstone.csv_too_big"),
    ],
)
def test_bad_files_have_codes(data, code):
    with pytest.raises(InputError) as err:
        read_qa_csv(data)
    assert err.value.code == code
    assert str(err.value)  # an English sentence for the CLI


def test_missing_path():
    with pytest.raises(InputError) as err:
        read_qa_csv("/nonexistent/file.csv")
    assert err.value.code == "capstone.csv_missing"


def test_bad_rows_are_dropped_with_reasons():
    rows = [
        *FACTS,
        ("=cmd|' /C calc'!A0", "답 9"),
        ("질문 9", "@SUM(A1:A2)"),
        ("질문 10", ""),
        (FACTS[0][0], FACTS[0][1]),  # a repeated row
        ("질문 11", "가" * 700),
        ("영하 몇 도인가요?", "-5도입니다"),  # a negative number is text, not a formula
    ]
    qa = read_qa_csv(_csv(rows).encode())
    assert qa.summary()["dropped"] == {"formula": 2, "empty_cell": 1, "duplicate": 1, "too_long": 1}
    assert [d["row"] for d in qa.dropped] == [14, 15, 16, 17, 18]  # 1-based lines; the header is line 1
    assert any(p.answer == "-5도입니다" for p in qa.pairs)


def test_formula_cells():
    assert looks_like_formula("=1+1") and looks_like_formula("+82") and looks_like_formula("@x")
    assert looks_like_formula("-cmd") and not looks_like_formula("-5") and not looks_like_formula("- 항목")
    assert escape_cell("=HYPERLINK()") == "'=HYPERLINK()" and escape_cell("평범한 답") == "평범한 답"


def test_random_split_when_no_answer_repeats():
    pairs = [QAPair(f"q{i}", f"a{i}", i + 2) for i in range(20)]
    train, heldout, split = split_heldout(pairs, seed=0)
    assert split == "random" and len(heldout) == 4 and len(train) == 16


def test_char_f1():
    assert char_f1("오후 10시입니다.", "오후10시입니다") == 1.0  # spaces and punctuation do not count
    assert char_f1("abc", "xyz") == 0.0
    assert char_f1("", "답") == 0.0
    # pred 5 chars, ref 4 chars, 3 in common: P 3/5, R 3/4, F1 = 2PR/(P+R) = 2/3
    assert char_f1("가나다라마", "가나다바") == pytest.approx(2 / 3)
    assert normalize(" A, b! 가 ") == "ab가"
    assert mean_f1(["가", "나"], ["가", "다"]) == 0.5


@pytest.mark.parametrize("method", ["bm25", "embedding"])
def test_baseline_finds_the_same_question(method):
    qa = read_qa_csv("sample")
    picks = nearest(method, qa.train, [p.question for p in qa.train[:10]])
    assert picks == list(range(10))
    res = retrieval_baseline(qa.train, qa.heldout, method)
    assert len(res.rows) == len(qa.heldout) and 0.0 <= res.mean_f1 <= 1.0
    assert res.mean_f1 == pytest.approx(sum(r.f1 for r in res.rows) / len(res.rows), abs=1e-4)
