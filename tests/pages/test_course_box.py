"""ui.course and the hooks in ui.layout / ui.jobs: sign in from the sidebar box, visits and answers recorded, runs
recorded, heavy jobs queued and held to the memory ceiling, and a page that works exactly as before when the
progress database is down.

Each test points LLMLAB_DB_URL at its own SQLite file (or at a PostgreSQL port where nothing listens) and, for the
queue, LLMLAB_CACHE at a temp folder, so nothing touches a developer's cache.
"""

from __future__ import annotations

import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from engine.course import AdmissionQueue, ProgressStore
from tests.pages.conftest import exceptions

TIMEOUT = 60
NAME = "<b>민지</b> [x](javascript:alert(1)) '); DROP TABLE learners;--"


@pytest.fixture
def db(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'progress.sqlite'}"
    monkeypatch.setenv("LLMLAB_DB_URL", url)
    with ProgressStore(url) as s:
        yield s


def _box():
    from ui.course import learner_box

    learner_box()


def _chapter_with_quiz():
    import streamlit as st

    from ui.layout import chapter_header, quiz, section_header

    ch = chapter_header(st.session_state.get("chapter", "16"))
    if ch.id == "16":
        section_header(ch, "why")
        section_header(ch, "s4")
        quiz("16", "s4")


def _signed_in(fn, learner) -> AppTest:
    at = AppTest.from_function(fn, default_timeout=TIMEOUT)
    at.session_state["lang"] = "en"
    at.session_state["_course_learner"] = {"id": learner.id, "name": learner.name, "anonymous": False}
    return at


def test_sign_in_from_the_box_keeps_the_name_as_typed(db):
    at = AppTest.from_function(_box, default_timeout=TIMEOUT)
    at.session_state["lang"] = "en"
    at.run()
    at.text_input(key="_course_name").input(NAME)
    at.text_input(key="_course_pass").input("correct horse")
    next(b for b in at.button if b.label == "Sign in / resume").click().run()
    assert not at.exception, exceptions(at)
    me = at.session_state["_course_learner"]
    assert me["name"] == NAME
    assert db.sign_in(NAME, passphrase="correct horse").id == me["id"]  # stored as data, protected
    shown = " ".join(m.value for m in at.markdown)
    assert "\\<b\\>" in shown and "\\[x\\]" in shown  # markdown shows the name as text, not as a link or bold


def test_wrong_passphrase_is_a_message(db):
    db.sign_in("guarded", passphrase="right one")
    at = AppTest.from_function(_box, default_timeout=TIMEOUT)
    at.session_state["lang"] = "en"
    at.run()
    at.text_input(key="_course_name").input("guarded")
    at.text_input(key="_course_pass").input("wrong one")
    next(b for b in at.button if b.label == "Sign in / resume").click().run()
    assert not at.exception, exceptions(at)
    assert "_course_learner" not in at.session_state
    assert any("does not match" in w.value for w in at.warning)


def test_visits_and_answers_are_recorded_once(db):
    me = db.sign_in("reader")
    at = _signed_in(_chapter_with_quiz, me).run()
    assert not at.exception, exceptions(at)
    assert [(v.chapter, v.section) for v in db.visits(me.id)] == [("16", "intro"), ("16", "why"), ("16", "s4")]
    assert (db.resume_point(me.id).chapter, db.resume_point(me.id).section) == ("16", "intro")
    at.run()  # a rerun draws the sections again: no new rows
    assert len(db.visits(me.id)) == 3

    radio = at.radio(key="quiz_16_s4_0")
    radio.set_value(radio.options[0]).run()
    at.run()
    answers = db.answers(me.id)
    assert [(a.chapter, a.quiz_id, a.choice) for a in answers] == [("16", "quiz_16_s4_0", radio.options[0])]
    assert db.resume_point(me.id).section == "s4"  # answering moved the resume point into the section


def test_moving_between_chapters_moves_the_resume_point(db):
    me = db.sign_in("wanderer")
    at = _signed_in(_chapter_with_quiz, me).run()
    for chapter in ("13", "13", "16"):  # 16 -> 13, a rerun of 13, back to 16
        at.session_state["chapter"] = chapter
        at.run()
    assert not at.exception, exceptions(at)
    chapters = [v.chapter for v in db.visits(me.id) if v.section == "intro"]
    assert chapters == ["16", "13", "16"]
    assert (db.resume_point(me.id).chapter, db.resume_point(me.id).section) == ("16", "intro")


def test_nothing_is_recorded_without_signing_in(db):
    db.sign_in("someone")  # a learner exists, but this session has not signed in
    at = AppTest.from_function(_chapter_with_quiz, default_timeout=TIMEOUT)
    at.session_state["lang"] = "en"
    at.run()
    assert not at.exception, exceptions(at)
    with db.engine.connect() as conn:
        from sqlalchemy import text

        assert conn.execute(text("SELECT COUNT(*) FROM visits")).scalar_one() == 0


def test_a_database_that_is_down_does_not_break_the_page(monkeypatch):
    from tests.engine._postgres import _free_port

    monkeypatch.setenv("LLMLAB_DB_URL", f"postgresql+psycopg://nobody@127.0.0.1:{_free_port()}/gone")

    class Ghost:
        id, name = 1, "ghost"

    at = _signed_in(_chapter_with_quiz, Ghost).run()
    assert not at.exception, exceptions(at)
    assert [x.value for x in at.title]  # the chapter drew as usual
    assert len(at.toast) == 1 and "cannot be reached" in at.toast[0].value  # said once, not per section

    box = AppTest.from_function(_box, default_timeout=TIMEOUT)
    box.session_state["lang"] = "en"
    box.run()
    box.text_input(key="_course_name").input("someone")
    next(b for b in box.button if b.label == "Sign in / resume").click().run()
    assert not box.exception, exceptions(box)
    assert any("cannot be reached" in w.value for w in box.warning)


def _light_and_heavy():
    import streamlit as st

    from ui.jobs import run_and_keep

    mode = st.session_state.get("mode", "light")
    run_and_keep(
        "ch16_demo", lambda p, on_row, stop: [on_row(i) for i in range(3)], "demo", "demo_out", heavy=mode == "heavy"
    )


def test_a_finished_run_is_recorded(db, monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    me = db.sign_in("runner")
    at = _signed_in(_light_and_heavy, me).run()
    assert not at.exception, exceptions(at)
    assert at.session_state["demo_out"] == [None, None, None]
    runs = db.runs(me.id)
    assert [(r.kind, r.chapter, r.summary) for r in runs] == [
        ("ch16_demo", "16", {"status": "finished", "rows": 3, "label": "demo"})
    ]


def test_a_heavy_job_waits_for_the_machine_queue(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    queue = AdmissionQueue()
    holder = queue.enqueue("train", "someone else's run")
    queue.acquire(holder)
    seen: list[str] = []

    def release_when_someone_waits() -> None:
        for _ in range(600):
            waiting = queue.state().waiting
            if waiting:
                seen.extend(e.label for e in waiting)
                queue.release(holder)
                return
            time.sleep(0.05)
        queue.release(holder)

    helper = threading.Thread(target=release_when_someone_waits)
    helper.start()
    at = AppTest.from_function(_light_and_heavy, default_timeout=TIMEOUT)
    at.session_state["mode"] = "heavy"
    at.run()
    helper.join()
    assert not at.exception, exceptions(at)
    assert seen == ["demo"]  # the page's job stood in the queue behind the holder
    assert at.session_state["demo_out"] == [None, None, None]
    assert queue.state().holders == [] and queue.state().waiting == []


def test_the_memory_ceiling_refuses_heavy_jobs_only(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    monkeypatch.setenv("LLMLAB_MAX_RSS_MB", "1")  # this process alone is above it
    at = AppTest.from_function(_light_and_heavy, default_timeout=TIMEOUT)
    at.session_state["lang"] = "en"
    at.session_state["mode"] = "heavy"
    at.run()
    assert not at.exception, exceptions(at)
    assert "demo_out" not in at.session_state
    assert any("LLMLAB_MAX_RSS_MB" in w.value for w in at.warning)
    assert AdmissionQueue().state().holders == []  # the refused run gave its slot back

    at.session_state["mode"] = "light"  # light work never goes through admission
    at.run()
    assert not at.exception, exceptions(at)
    assert at.session_state["demo_out"] == [None, None, None]
