"""pages/instructor.py: the class dashboard, a live poll and a demo for every learner, read from a real progress
database (SQLite here; the PostgreSQL path of the same queries is tested in tests/engine/test_course_classroom.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from engine.course import ProgressStore, latest_demo
from tests.pages.conftest import exceptions

NAME = "<b>민지</b> [x](javascript:alert(1))"


@pytest.fixture
def db(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'progress.sqlite'}"
    monkeypatch.setenv("LLMLAB_DB_URL", url)
    with ProgressStore(url) as s:
        yield s


def test_the_dashboard_shows_who_is_where_and_the_poll(db, open_page):
    a, b = db.sign_in(NAME), db.sign_in("robert")
    now = datetime.now(timezone.utc)
    db.record_visit(a.id, "16", "s4", at=now - timedelta(minutes=2))
    db.record_visit(b.id, "02", "attention", at=now - timedelta(minutes=1))
    at = open_page("pages/instructor.py", "en")
    assert not exceptions(at), exceptions(at)
    table = at.dataframe[0].value
    assert list(table["Name"]) == ["robert", NAME]  # the name is a cell of text, exactly as typed
    assert list(table["Chapter"])[1].startswith("Ch.16")
    assert not at.error


def test_a_demo_reaches_signed_in_learners_and_bad_links_are_refused(db, open_page):
    at = open_page("pages/instructor.py", "ko")
    at.text_input(key="in_link").input("javascript:alert(1)").run()
    at.button(key="in_publish").click().run()
    assert not exceptions(at) and latest_demo(db) is None
    assert any("데모 링크" in w.value for w in at.warning)
    at.text_input(key="in_link").input("http://127.0.0.1:8501/mamba?s4_n=16").run()
    at.button(key="in_publish").click().run()
    assert latest_demo(db).link == "/mamba?s4_n=16"
    assert any("/mamba?s4_n=16" in s.value for s in at.success)


def test_the_instructor_key_guards_the_page(db, open_page, monkeypatch):
    monkeypatch.setenv("LLMLAB_INSTRUCTOR_KEY", "s3cret")
    at = open_page("pages/instructor.py", "en")
    assert not at.dataframe and not at.button
    at.text_input(key="_instr_key").input("wrong").run()
    assert any("not right" in w.value for w in at.warning) and not at.dataframe
    at.text_input(key="_instr_key").input("s3cret").run()
    assert not exceptions(at)
    assert at.button(key="in_publish")  # the class is shown now


def test_a_signed_in_learner_sees_the_demo_button(db):
    from streamlit.testing.v1 import AppTest

    from engine.course import publish_demo

    publish_demo(db, "/mamba?s4_n=16", "S4")

    def box():
        import streamlit as st

        from ui.course import learner_box

        st.session_state["lang"] = "en"
        learner_box()

    at = AppTest.from_function(box, default_timeout=60).run()
    assert not at.get("link_button")  # not signed in: nothing is read, nothing shown
    at.text_input(key="_course_name").input("minji")
    at.button[0].click().run()  # the form's submit
    buttons = at.get("link_button")
    assert buttons and buttons[0].proto.url == "/mamba?s4_n=16"
