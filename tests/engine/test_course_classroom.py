"""engine.course.classroom: the instructor's view (who is where, a live poll, a demo for everyone), on SQLite and on
a real PostgreSQL server, through the same ProgressStore the learners write to."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from engine.core.textinput import InputError
from engine.course import ProgressStore
from engine.course.classroom import class_now, demo_link, latest_demo, poll, publish_demo
from tests.engine._postgres import postgres_server


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'p.sqlite'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg").new_database()
    )
    s = ProgressStore(url)
    yield s
    s.close()


T0 = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)


def test_class_now_lists_who_is_where_most_recent_first(store):
    a, b, c = store.sign_in("민지"), store.sign_in("<b>Robert'); DROP TABLE learners;--"), store.sign_in("idle")
    now = datetime.now(timezone.utc)
    store.record_visit(a.id, "16", "s4", at=now - timedelta(minutes=5))
    store.record_visit(b.id, "09", "rag", at=now - timedelta(minutes=1))
    store.record_visit(c.id, "01", "map", at=now - timedelta(days=2))
    store.record_answer(a.id, "16", "quiz_16_s4_0", "A", True)
    store.record_answer(a.id, "16", "quiz_16_s4_1", "B", False)
    rows = class_now(store, active_minutes=60)
    assert [(r.name, r.chapter, r.section) for r in rows] == [
        ("<b>Robert'); DROP TABLE learners;--", "09", "rag"),  # stored as data, returned as typed
        ("민지", "16", "s4"),
    ]
    assert (rows[1].answers, rows[1].correct) == (2, 1) and rows[0].answers == 0
    assert rows[0].at.tzinfo is not None
    assert len(class_now(store, active_minutes=None)) == 3  # everyone, the idle learner last


def test_poll_counts_each_learners_latest_choice_once(store):
    ids = [store.sign_in(f"l{i}").id for i in range(4)]
    q = "quiz_16_why_0"
    store.record_answer(ids[0], "16", q, "커진다", False, at=T0)
    store.record_answer(ids[0], "16", q, "그대로다", True, at=T0 + timedelta(seconds=5))  # changed their mind
    store.record_answer(ids[1], "16", q, "그대로다", True, at=T0)
    store.record_answer(ids[2], "16", q, "커진다", False, at=T0)
    store.record_answer(ids[3], "16", "another", "x", True, at=T0)
    p = poll(store, q)
    assert p.counts == {"그대로다": 2, "커진다": 1} and p.total == 3
    assert p.correct == {"그대로다": True, "커진다": False}
    assert poll(store, q, since=T0 + timedelta(seconds=1)).counts == {"그대로다": 1}
    assert poll(store, "nobody_answered").total == 0


def test_a_published_demo_reaches_every_learner_and_expires(store):
    assert latest_demo(store) is None
    first = publish_demo(store, "http://127.0.0.1:8501/mamba?s4_n=16&lang=en", "S4 with N=16")
    assert first.link == "/mamba?s4_n=16&lang=en"
    second = publish_demo(store, "/rag?q=헌법", "")
    got = latest_demo(store)
    assert (got.link, got.note) == ("/rag?q=헌법", "") and got.at >= first.at
    assert second.link == got.link
    assert latest_demo(store, max_age_minutes=0) is None  # yesterday's class is over


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "javascript:alert(1)",
        "mailto:a@b",
        "/a\\b",
        "/" + "a" * 5000,
    ],
)
def test_links_that_leave_the_app_are_refused(bad):
    with pytest.raises(InputError):
        demo_link(bad)


def test_links_to_another_host_keep_only_the_path_inside_the_app():
    assert demo_link("https://evil.example/mamba?x=1") == "/mamba?x=1"
    assert demo_link("mamba") == "/mamba"
    assert demo_link("//evil.example/x") == "/x"  # protocol-relative: only the path is kept
    assert "\n" not in demo_link("/x\r\nSet-Cookie: a")  # no header splitting through a link
