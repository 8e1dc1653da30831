"""The capstone page through AppTest: a fresh page shows the shipped run; bad CSV uploads get the translated message
and lose nothing; a CP949 upload is read; the REST API section starts a real API (FastAPI over llama.cpp, the
untuned base model) and the page's HTTP calls get 200, 401, 413 and 422 — the calls a learner makes with the buttons."""

from __future__ import annotations

import pytest

from engine.core import load_precomputed
from tests.pages.conftest import clean, message_start, warnings_of

PAGE = "pages/99_capstone.py"
FACTS = "".join(f"질문 {i} 첫째,답 {i}\n질문 {i} 둘째,답 {i}\n" for i in range(6))


class Upload:
    """What st.file_uploader hands the page (the page reads .getvalue())."""

    def __init__(self, data: bytes):
        self.data = data

    def getvalue(self) -> bytes:
        return self.data


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_fresh_page_shows_the_shipped_run(open_page, lang):
    at = open_page(PAGE, lang)
    clean(at)
    assert [h.proto.anchor for h in at.header] == ["data", "train", "serve"]
    shipped = load_precomputed("hc_capstone")
    if shipped is None:
        pytest.skip("no shipped assets/precomputed/hc_capstone.json")
    metrics = {m.label: m.value for m in at.metric}
    assert len(metrics) >= 12  # data (4) + run results (8)
    assert len(at.get("plotly_chart")) == 1  # the loss curve
    answers = at.dataframe[-1].value
    assert len(answers) == shipped.data["summary"].get("heldout", len(shipped.data["answers"]))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "capstone.csv_empty"),
        (b"\x00\x01\x02binary", "capstone.csv_binary"),
        ("제목,내용\n가,나\n".encode(), "capstone.csv_columns"),
        (("question,answer\n=cmd|' /C calc'!A0,답\n" + FACTS[:40]).encode(), "capstone.csv_too_few"),
    ],
)
def test_bad_uploads_are_messages(open_page, monkeypatch, data, code):
    import streamlit as st

    # AppTest cannot fill a file uploader: the page's st.file_uploader returns the file a learner would upload
    monkeypatch.setattr(st, "file_uploader", lambda *a, **k: Upload(data))
    at = open_page(PAGE, "ko")
    at.radio(key="hc_source").set_value("upload").run()
    clean(at)
    assert any(w.startswith(message_start(code, "ko")) for w in warnings_of(at)), warnings_of(at)
    assert not at.exception


def test_cp949_upload_is_read(monkeypatch):
    import ui.capstone as view

    text = "질문,답변\n" + FACTS
    source, qa = view.dataset("upload", Upload(text.encode("cp949")))
    assert qa.encoding == "cp949" and len(qa.pairs) == 12 and isinstance(source, bytes)


@pytest.mark.server
def test_api_section_calls_a_real_api(open_page):
    at = open_page(PAGE, "en")
    at.button(key="hc_api_start").click().run()
    clean(at)
    try:
        assert any("Running at http://127.0.0.1:" in c.value for c in at.caption)
        at.text_area(key="hc_q").set_value("What is 2+2?")
        for button, status in [
            ("hc_call", "200"),
            ("hc_call_nt", "401"),
            ("hc_call_big", "413"),
            ("hc_call_bad", "422"),
        ]:
            at.button(key=button).click().run()
            clean(at)
            shown = [m.value for m in at.success] + warnings_of(at)
            assert any(s.startswith(status) for s in shown), (button, shown)
        at.run()  # a rerun (a new script thread): the API is still there
        assert any("Running at" in c.value for c in at.caption)
    finally:
        at.button(key="hc_api_stop").click().run()
    assert not any("Running at" in c.value for c in at.caption)
