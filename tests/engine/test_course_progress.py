"""engine.course.progress: learner progress through SQLAlchemy, on SQLite and on a real PostgreSQL server.

Every store test runs twice: on a SQLite file in a temp folder, and on a fresh database of a throw-away PostgreSQL
cluster (tests/engine/_postgres.py: Debian's postgresql, started once for this module). The PostgreSQL half is
skipped, with the reason, only where the server binaries are missing.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, inspect, text

from engine.course import (
    Base,
    LearnerError,
    ProgressStore,
    ProgressUnavailable,
    ResumePoint,
    default_db_url,
    verify_passphrase,
)
from tests.engine import _course_workers as workers
from tests.engine._postgres import postgres_server

# separate processes, each with its own store or queue object, as two Streamlit servers would have; fork (where the
# platform has it) because a spawned child re-imports SQLAlchemy and pytest: seconds each on a loaded 2-core machine
SPAWN = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'progress.sqlite'}"
    return request.getfixturevalue("pg").new_database()


@pytest.fixture
def store(url):
    s = ProgressStore(url)
    yield s
    s.close()


# ---------------------------------------------------------------------------------------------------- schema


def test_migrated_schema_equals_the_metadata(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store.anonymous()  # first use runs the migrations
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        tables = set(inspect(conn).get_table_names())
    assert diff == []
    assert version == "0002"  # the newest migration (0002: the instructor's demos)
    assert tables == {"alembic_version", "learners", "visits", "answers", "runs", "demos"}


def test_migration_is_idempotent(url):
    for _ in range(2):  # a second store (a restart) finds the schema at head and changes nothing
        with ProgressStore(url) as s:
            s.sign_in("민지")
    with ProgressStore(url) as s:
        assert s.sign_in("민지").id == 1


# ---------------------------------------------------------------------------------------------------- learners


def test_round_trip(store):
    me = store.sign_in("민지")
    assert (me.name, me.anonymous, me.protected) == ("민지", False, False)
    t0 = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)
    store.record_visit(me.id, "16", "s4", at=t0)
    store.record_visit(me.id, "16", "hippo", at=t0 + timedelta(minutes=1))
    store.record_visit(me.id, "16", "s4", at=t0 + timedelta(minutes=2))
    store.record_answer(me.id, "16", "q1", choice="B", correct=False, at=t0)
    store.record_answer(me.id, "16", "q1", choice="C", correct=True, at=t0 + timedelta(seconds=5))
    store.record_run(me.id, "train", {"loss": 0.41, "steps": 200, "arch": "mamba"}, chapter="16", at=t0)

    p = store.progress(me.id)
    assert p.learner == me
    assert [(v.chapter, v.section) for v in p.visits] == [("16", "s4"), ("16", "hippo"), ("16", "s4")]
    assert p.visited == {"16": ["s4", "hippo"]}
    assert p.visits[1].at == t0 + timedelta(minutes=1)  # times come back as UTC-aware datetimes, exactly
    assert [(a.choice, a.correct) for a in p.answers] == [("B", False), ("C", True)]
    assert p.latest_answers[("16", "q1")].choice == "C"
    assert [(r.kind, r.summary, r.chapter) for r in p.runs] == [
        ("train", {"loss": 0.41, "steps": 200, "arch": "mamba"}, "16")
    ]
    assert p.resume == ResumePoint("16", "s4", t0 + timedelta(minutes=2))


def test_sign_in_finds_the_same_learner_whatever_the_case(store):
    a = store.sign_in("Minji Kim")
    b = store.sign_in("  minji KIM ")
    assert a.id == b.id and b.name == "Minji Kim"  # the name as first typed


def test_anonymous_learners_are_distinct_and_resumable(store):
    a, b = store.anonymous(), store.anonymous()
    assert a.id != b.id and a.anonymous and a.name.startswith("anon-")
    assert store.sign_in(a.name).id == a.id  # typing the anonymous id resumes it


NASTY = [
    "Robert'); DROP TABLE learners;--",
    "x' OR '1'='1",
    "<script>alert('hi')</script>",
    '<img src=x onerror="alert(1)">',
    "%s %(name)s {0} $1 ?",
    '김민지 & <b>굵게</b> "따옴표"',
    "😀 emoji ∑",
]


def test_names_with_sql_or_html_are_stored_as_data(store):
    learners = [store.sign_in(name) for name in NASTY]
    assert [x.name for x in learners] == NASTY  # unchanged, character for character
    assert len({x.id for x in learners}) == len(NASTY)
    me = learners[0]
    store.record_visit(me.id, "'; DELETE FROM visits;--", "<b>sec</b>")
    store.record_answer(me.id, "16", "q' OR 1=1 --", choice="<script>x</script>", correct=True)
    store.record_run(me.id, "train", {"note": "'); DROP TABLE runs;--", "html": "<i>x</i>"})
    p = store.progress(me.id)
    assert (p.visits[0].chapter, p.visits[0].section) == ("'; DELETE FROM visits;--", "<b>sec</b>")
    assert (p.answers[0].quiz_id, p.answers[0].choice) == ("q' OR 1=1 --", "<script>x</script>")
    assert p.runs[0].summary == {"note": "'); DROP TABLE runs;--", "html": "<i>x</i>"}
    with store.engine.connect() as conn:  # every table is still there, with every row
        assert conn.execute(text("SELECT COUNT(*) FROM learners")).scalar_one() == len(NASTY)
        assert conn.execute(text("SELECT COUNT(*) FROM visits")).scalar_one() == 1


def test_no_cross_learner_leaks(store):
    a, b = store.sign_in("a"), store.sign_in("b")
    store.record_visit(a.id, "1", "a-only")
    store.record_answer(a.id, "1", "qa", "x", True)
    store.record_run(a.id, "train", {"who": "a"})
    store.record_visit(b.id, "2", "b-only")
    pa, pb = store.progress(a.id), store.progress(b.id)
    assert [v.section for v in pa.visits] == ["a-only"] and [v.section for v in pb.visits] == ["b-only"]
    assert pb.answers == [] and pb.runs == []
    assert pa.resume.section == "a-only" and pb.resume.section == "b-only"


# ---------------------------------------------------------------------------------------------------- passphrases


def test_passphrase_is_stored_only_as_a_salted_hash(store):
    me = store.sign_in("보호된 학습자", passphrase="correct horse")
    assert me.protected
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT passphrase_hash FROM learners WHERE id = :i"), {"i": me.id}).scalar_one()
        dump = " ".join(str(v) for row in conn.execute(text("SELECT * FROM learners")) for v in row)
    assert "correct horse" not in dump
    assert stored.startswith("scrypt$16384$8$1$") and verify_passphrase("correct horse", stored)
    assert not verify_passphrase("wrong horse", stored)

    with pytest.raises(LearnerError) as need:
        store.sign_in("보호된 학습자")
    assert need.value.code == "course.passphrase_required"
    with pytest.raises(LearnerError) as wrong:
        store.sign_in("보호된 학습자", passphrase="wrong horse")
    assert wrong.value.code == "course.wrong_passphrase"
    assert store.sign_in("보호된 학습자", passphrase="correct horse").id == me.id

    other = store.sign_in("second", passphrase="correct horse")  # same passphrase, different salt, different hash
    with store.engine.connect() as conn:
        again = conn.execute(text("SELECT passphrase_hash FROM learners WHERE id = :i"), {"i": other.id}).scalar_one()
    assert again != stored


def test_set_passphrase_needs_the_current_one(store):
    me = store.sign_in("open")
    assert store.set_passphrase(me.id, "first pass").protected
    with pytest.raises(LearnerError) as wrong:
        store.set_passphrase(me.id, "second pass", current="nope")
    assert wrong.value.code == "course.wrong_passphrase"
    store.set_passphrase(me.id, "second pass", current="first pass")
    assert store.sign_in("open", passphrase="second pass").id == me.id


# ---------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("", "course.bad_name"),
        ("   ", "course.bad_name"),
        ("a\nb", "course.bad_name"),
        ("x" * 65, "course.bad_name"),
        (None, "course.bad_name"),
        ("a\x00b", "course.bad_name"),
    ],
)
def test_bad_names_are_refused_with_a_code(tmp_path, name, code):
    with ProgressStore(f"sqlite:///{tmp_path / 'p.sqlite'}") as s, pytest.raises(LearnerError) as err:
        s.sign_in(name)
    assert err.value.code == code


def test_bad_records_are_refused_with_a_code(store):
    me = store.sign_in("x")
    cases = [
        (lambda: store.sign_in("y", passphrase="abc"), "course.bad_passphrase"),
        (lambda: store.record_visit(me.id, "", "s"), "course.bad_field"),
        (lambda: store.record_visit(me.id, "16", "a\nb"), "course.bad_field"),
        (lambda: store.record_run(me.id, "train", {"big": "x" * 5000}), "course.summary_too_large"),
        (lambda: store.record_run(me.id, "train", {"nan": float("nan")}), "course.summary_not_json"),
        (lambda: store.record_run(me.id, "train", ["not", "a", "dict"]), "course.summary_not_json"),
        (lambda: store.record_visit(10_000, "16", "s"), "course.unknown_learner"),
        (lambda: store.progress(10_000), "course.unknown_learner"),
    ]
    for call, code in cases:
        with pytest.raises(LearnerError) as err:
            call()
        assert err.value.code == code
    assert store.progress(me.id).visits == [] and store.progress(me.id).runs == []  # nothing half-written


# ---------------------------------------------------------------------------------------------------- concurrency


def test_two_tabs_in_two_processes_lose_nothing(url):
    with ProgressStore(url) as s:  # migrate first, as the app's first page view does
        me = s.sign_in("둘 탭")
    start = SPAWN.Event()
    tabs = [SPAWN.Process(target=workers.write_progress, args=(url, "둘 탭", tag, 15, start)) for tag in "ab"]
    for tab in tabs:
        tab.start()
    start.set()
    for tab in tabs:
        tab.join(120)
    assert [tab.exitcode for tab in tabs] == [0, 0]
    with ProgressStore(url) as s:
        p = s.progress(me.id)
    assert sorted(v.section for v in p.visits) == sorted(f"{t}-{i}" for t in "ab" for i in range(15))
    assert len(p.answers) == 30
    assert p.resume is not None and p.resume.at == max(v.at for v in p.visits)


def test_two_sessions_in_one_process_share_a_store(store):
    me = store.sign_in("threads")
    errors: list[BaseException] = []

    def tab(tag: str) -> None:
        try:
            for i in range(10):
                store.record_visit(me.id, "5", f"{tag}{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=tab, args=(t,)) for t in "xyz"]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(store.visits(me.id)) == 30


def test_first_sign_in_from_two_tabs_makes_one_learner(url):
    start = SPAWN.Event()
    tabs = [SPAWN.Process(target=workers.write_progress, args=(url, "new at once", t, 1, start)) for t in "ab"]
    for tab in tabs:
        tab.start()
    start.set()
    for tab in tabs:
        tab.join(120)
    assert [tab.exitcode for tab in tabs] == [0, 0]
    with ProgressStore(url) as s, s.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM learners")).scalar_one() == 1
        assert conn.execute(text("SELECT COUNT(*) FROM visits")).scalar_one() == 2


def test_resume_point_only_moves_forward(store):
    me = store.sign_in("forward")
    t0 = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)
    store.record_visit(me.id, "16", "new", at=t0 + timedelta(seconds=30))
    store.record_visit(me.id, "3", "old", at=t0)  # a stale tab reports an older visit afterwards
    assert store.resume_point(me.id) == ResumePoint("16", "new", t0 + timedelta(seconds=30))
    assert len(store.visits(me.id)) == 2  # the visit itself is kept
    store.record_visit(me.id, "16", "drawn", at=t0 + timedelta(minutes=5), resume=False)
    assert store.resume_point(me.id).section == "new"  # a visit without resume leaves it where it was
    assert len(store.visits(me.id)) == 3


# ---------------------------------------------------------------------------------------- restarts and outages


def test_progress_survives_an_app_restart(url):
    writer = SPAWN.Process(target=workers.write_then_exit, args=(url, "재시작"))
    writer.start()
    writer.join(120)
    assert writer.exitcode == 0
    with ProgressStore(url) as fresh:  # a new process's store: nothing shared but the database
        me = fresh.sign_in("재시작", passphrase="correct horse")
        p = fresh.progress(me.id)
    assert p.visited == {"13": ["tracking"], "16": ["mamba"]}
    assert [(a.quiz_id, a.choice, a.correct) for a in p.answers] == [("q1", "B", True)]
    assert p.runs[0].summary == {"loss": 0.5, "steps": 20}
    assert (p.resume.chapter, p.resume.section) == ("16", "mamba")


def test_default_url_is_sqlite_under_the_cache_unless_set(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    monkeypatch.delenv("LLMLAB_DB_URL", raising=False)
    assert default_db_url() == f"sqlite:///{tmp_path / 'course' / 'progress.sqlite'}"
    with ProgressStore() as s:
        s.sign_in("default")
    assert (tmp_path / "course" / "progress.sqlite").is_file()
    monkeypatch.setenv("LLMLAB_DB_URL", "postgresql+psycopg://u@db.example/llmlab")
    assert default_db_url() == "postgresql+psycopg://u@db.example/llmlab"


def test_sqlite_that_cannot_be_opened_is_a_typed_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ProgressUnavailable) as err:
        ProgressStore(f"sqlite:///{blocker / 'progress.sqlite'}").sign_in("x")
    assert err.value.code == "course.db_unavailable"


def test_postgresql_that_is_down_is_a_typed_error_without_the_password():
    from tests.engine._postgres import _free_port

    store = ProgressStore(f"postgresql+psycopg://learner:s3cret@127.0.0.1:{_free_port()}/llmlab")
    assert "s3cret" not in store.url
    with pytest.raises(ProgressUnavailable) as err:
        store.sign_in("x")
    assert err.value.code == "course.db_unavailable"
    assert "s3cret" not in str(err.value) and "127.0.0.1" in str(err.value)
    store.close()


def test_postgresql_going_down_and_coming_back(pg):
    url = pg.new_database()
    store = ProgressStore(url)
    me = store.sign_in("outage")
    store.record_visit(me.id, "9", "before")
    pg.stop()
    try:
        with pytest.raises(ProgressUnavailable) as err:
            store.record_visit(me.id, "9", "during")
        assert err.value.code == "course.db_unavailable"
    finally:
        pg.start()
    store.record_visit(me.id, "9", "after")  # the pool replaces the dead connections
    assert [v.section for v in store.visits(me.id)] == ["before", "after"]
    store.close()


def test_unknown_driver_is_a_typed_error():
    with pytest.raises(ProgressUnavailable) as err:
        ProgressStore("nosuchdb://x/y")
    assert err.value.code == "course.db_unavailable"


def test_raw_engine_sees_the_same_rows(store):
    """The store writes ordinary rows: another tool (an instructor's SQL client) reads them without the app."""
    me = store.sign_in("plain")
    store.record_visit(me.id, "2", "attention")
    engine = create_engine(store.engine.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT chapter, section FROM visits WHERE learner_id = :i"), {"i": me.id}).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [("2", "attention")]
