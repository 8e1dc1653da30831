"""engine/core/corpus.py: the Constitution split into articles, and a learner's own file with clear errors."""

from __future__ import annotations

import pytest

from engine.core.corpus import (
    CONSTITUTION,
    CorpusSpec,
    corpus_spec,
    decode_text_file,
    documents_corpus,
    load_constitution,
    load_corpus,
    load_kobill,
    load_text_file,
)
from engine.core.textinput import InputError


def test_constitution_ids_and_count():
    docs = load_constitution()
    ids = [d.doc_id for d in docs]
    assert ids[:130] == [f"제{i}조" for i in range(1, 131)]
    assert ids[130:] == [f"부칙 제{i}조" for i in range(1, 7)]
    assert len(set(ids)) == len(ids) == 136
    by_id = {d.doc_id: d for d in docs}
    assert by_id["제70조"].text == "대통령의 임기는 5년으로 하며, 중임할 수 없다."
    assert by_id["제1조"].meta["chapter"] == "제1장 총강"
    assert "제4관 감사원" in by_id["제97조"].title
    assert not any("제2관" in d.text for d in docs)  # sub-section headings are not article text
    assert all(d.text.strip() for d in docs)


def test_kobill_loads_passages():
    docs = load_kobill()
    assert len(docs) > 50 and all(d.text for d in docs)


def test_user_file_paragraphs_and_articles(tmp_path):
    plain = tmp_path / "notes.txt"
    plain.write_text("첫 문단입니다.\n\n둘째 문단입니다.\n", encoding="utf-8")
    assert [d.text for d in load_text_file(plain)] == ["첫 문단입니다.", "둘째 문단입니다."]
    law = tmp_path / "law.txt"
    law.write_text("제1조 목적을 정한다.\n제2조 정의를 정한다.\n", encoding="utf-8")
    assert [d.doc_id for d in load_text_file(law)] == ["제1조", "제2조"]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        (b"\xff\xfe\xfa\xfb" * 10, "not valid"),
    ],
)
def test_bad_files_give_clear_messages(data, message):
    with pytest.raises(InputError, match=message):
        decode_text_file(data, "upload.txt")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_text_file(tmp_path / "nope.txt")


def test_corpus_specs_by_name(tmp_path):
    assert corpus_spec("constitution") is CONSTITUTION and corpus_spec(CONSTITUTION) is CONSTITUTION
    assert CONSTITUTION.language == "ko" and CONSTITUTION.expansion_questions.is_file()
    assert CONSTITUTION.dev_questions.is_file()
    assert [d.doc_id for d in load_corpus("constitution")] == [d.doc_id for d in load_constitution()]
    notes = tmp_path / "notes.txt"
    notes.write_text("첫 문단입니다.\n\n둘째 문단입니다.\n", encoding="utf-8")
    spec = corpus_spec(str(notes))
    assert spec.id == str(notes) and spec.expansion_questions is None and spec.dev_questions is None
    assert len(spec.documents()) == 2
    with pytest.raises(ValueError, match="unknown corpus"):
        corpus_spec("no-such-corpus")


def test_uploaded_document_set_is_a_corpus_spec():
    spec = documents_corpus("my-notes", [("a", " 첫 문서 "), ("b", "둘째 문서")], language="ko")
    assert isinstance(spec, CorpusSpec) and spec.id == "my-notes" and spec.expansion_questions is None
    docs = spec.documents()
    assert [(d.doc_id, d.title, d.text) for d in docs] == [("a", "a", "첫 문서"), ("b", "b", "둘째 문서")]
    docs.clear()  # callers get their own list
    assert len(spec.documents()) == 2


@pytest.mark.parametrize(
    "documents, message",
    [
        ([], "no documents"),
        ([("a", "x"), ("a", "y")], "used twice"),
        ([("a", "   ")], "empty"),
        ([("", "x")], "no id"),
    ],
)
def test_uploaded_document_set_refuses_bad_input(documents, message):
    with pytest.raises(InputError, match=message):
        documents_corpus("upload", documents)
