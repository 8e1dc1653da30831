"""Chapter 6 page through AppTest, driven like a learner: the fresh page shows shipped results without touching the
model server; the read-only executor demonstration and the template pairs work without a model; bad questions,
unreadable uploads, absurd values in a shared link and a dead model server give translated messages and the page
keeps working; the Write-SQL button (real instruct server, slow) shows the SQL, its rows and every attempt.
"""

from __future__ import annotations

import socket

import pytest
from streamlit.testing.v1 import AppTest

import ui.i18n
from engine.core import load_precomputed
from tests.pages.conftest import ROOT, TIMEOUT, exceptions
from ui.i18n import strings

PAGE = "pages/06_text2sql.py"
BINARY = bytes(range(256)) * 64  # not a SQLite file, whatever the name says
SECTIONS = ("data", "generate", "evaluate", "finetune", "safety")


def _clean(at) -> None:
    assert not at.exception, exceptions(at)
    assert not at.error, [e.value for e in at.error]


def _warnings(at) -> list[str]:
    return [w.value for w in at.warning]


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_fresh_page_renders_every_section(open_page, lang):
    at = open_page(PAGE, lang)
    _clean(at)
    assert len(at.header) == len(SECTIONS)
    assert [h.proto.anchor for h in at.header] == list(SECTIONS)
    assert "ch06_answer" not in at.session_state  # nothing was asked: what is on show is shipped (or nothing)
    assert at.button(key="gen_run") and not at.button(key="gen_run").disabled
    for key in ("sy_run", "ev_run", "ft_run", "sf_run"):
        assert at.button(key=key) is not None
    if load_precomputed("ch06_answer") is not None:  # the judge needs an answer to judge: the shipped one
        assert at.button(key="jd_run") is not None
    for note in (c.value for c in at.caption if c.value.startswith("📦")):
        assert "python -m" in note  # a shipped result says what made it
    if lang == "ko":
        assert at.text_area(key="gen_question").value == "장르가 Rock인 트랙은 몇 개인가요?"


DANGEROUS = {
    "delete": "text2sql.exec.denied",
    "multi": "text2sql.exec.not_one_statement",
    "attach": "text2sql.exec.denied",
    "pragma": "text2sql.exec.denied",
}


def test_dangerous_sql_is_refused_and_the_file_unchanged(open_page):
    at = open_page(PAGE, "ko")
    for chip, code in DANGEROUS.items():
        at.button_group(key="sf_chip").set_value(chip).run()
        assert at.text_area(key="sf_sql").value == strings()[f"ch06.safety_sql_{chip}"]["ko"]
        at.button(key="sf_run").click().run()
        _clean(at)
        r = at.session_state["ch06_guarded"]
        assert r["error"] == code and r["detail"], (chip, r)
        assert r["before"] == r["after"]
        assert any(r["detail"] in c.value for c in at.code)  # SQLite's message, verbatim
        message = strings()[f"error.{code}"]["ko"].split("{")[0].strip()
        assert any(message in w for w in _warnings(at)), _warnings(at)
        assert any("sha256" in s.value for s in at.success)


def test_a_reading_query_runs_and_shows_rows(open_page):
    at = open_page(PAGE, "en")
    at.text_area(key="sf_sql").set_value("SELECT Name, Composer FROM Track WHERE TrackId <= 3").run()
    at.button(key="sf_run").click().run()
    _clean(at)
    r = at.session_state["ch06_guarded"]
    assert r["error"] is None and len(r["rows"]) == 3 and r["before"] == r["after"]


def test_template_pairs_are_generated_and_filtered_without_a_model(open_page):
    at = open_page(PAGE, "en")
    at.button(key="sy_run").click().run()
    _clean(at)
    pairs = at.session_state["ch06_pairs"]
    assert pairs["n"] == 20 and pairs["kept"] + sum(pairs["dropped"].values()) == 20
    assert pairs["kept"] > 0


def test_bad_questions_are_refused_with_a_message(open_page):
    at = open_page(PAGE, "en")
    for question, code, fragment in (
        ("   ", "text2sql.empty_question", ""),
        ("가" * 100_000, "text2sql.question_too_long", "100,000"),
    ):
        at.text_area(key="gen_question").set_value(question).run()
        at.button(key="gen_run").click().run()
        _clean(at)
        start = strings()[f"error.{code}"]["en"].split("{")[0].strip()  # the translated sentence, not the bare code
        assert any(start in w and fragment in w for w in _warnings(at)), _warnings(at)
        assert "ch06_answer" not in at.session_state


def test_binary_upload_is_refused_and_the_page_keeps_working(open_page):
    at = open_page(PAGE, "en")
    at.radio(key="gen_db").set_value("upload").run()
    _clean(at)
    assert at.button(key="gen_run").disabled  # nothing to ask yet
    at.file_uploader(key="gen_upload").set_value(("music.db", BINARY, "application/octet-stream")).run()
    _clean(at)
    assert any("music.db" in w for w in _warnings(at)), _warnings(at)
    assert at.button(key="gen_run").disabled
    at.radio(key="gen_db").set_value("chinook").run()  # and back: the rest of the page still works
    _clean(at)
    assert not at.button(key="gen_run").disabled


def test_a_real_sqlite_upload_is_read(open_page, tmp_path):
    import sqlite3

    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
        conn.execute("INSERT INTO item VALUES (1, 'pen', 1.5)")
    conn.close()
    at = open_page(PAGE, "en")
    at.radio(key="gen_db").set_value("upload").run()
    at.file_uploader(key="gen_upload").set_value(("shop.sqlite", path.read_bytes(), "application/octet-stream")).run()
    _clean(at)
    assert not at.button(key="gen_run").disabled
    assert any("shop.sqlite" in c.value for c in at.caption), [c.value for c in at.caption]


def test_a_spider_database_can_be_chosen(open_page):
    at = open_page(PAGE, "en")
    chip = at.button_group(key="gen_chip").options[0]  # a Chinook dev question
    at.button_group(key="gen_chip").set_value(chip).run()
    assert at.text_area(key="gen_question").value == chip
    at.radio(key="gen_db").set_value("spider").run()
    _clean(at)
    at.selectbox(key="gen_spider").set_value("concert_singer").run()
    _clean(at)
    assert not at.button(key="gen_run").disabled
    chips = at.button_group(key="gen_chip").options
    assert chips and all(c.isascii() for c in chips)  # Spider's own (English) questions for that database


def test_absurd_values_in_a_shared_link_fall_back(monkeypatch):
    monkeypatch.setattr(ui.i18n, "DEFAULT_LANG", "en")
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=TIMEOUT)
    at.session_state["lang"] = "en"
    for key, value in {
        "ev_n": "100000",
        "ft_steps": "-3",
        "sy_n": "nan",
        "gen_strategy": "drop-tables",
        "gen_db": "../../etc/passwd",
        "dt_split": "secret",
    }.items():
        at.query_params[key] = value
    at.run()
    _clean(at)
    assert at.slider(key="ev_n").value == 10
    assert at.slider(key="ft_steps").value == 10
    assert at.slider(key="sy_n").value == 20
    assert at.selectbox(key="gen_strategy").value == "few-shot+linking+repair"
    assert at.radio(key="gen_db").value == "chinook"


def test_dead_model_server_gives_a_clear_error_and_keeps_the_page(open_page, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    monkeypatch.setenv("LLMLAB_LLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
    at = open_page(PAGE, "ko")
    at.button(key="gen_run").click().run()
    assert not at.exception, exceptions(at)
    assert at.error and any(str(port) in e.value for e in at.error), [e.value for e in at.error]
    assert "ch06_answer" not in at.session_state  # nothing half-made is kept
    at.button(key="sf_run").click().run()  # the rest of the page still works
    assert not at.exception, exceptions(at)
    assert at.session_state["ch06_guarded"]["error"] == "text2sql.exec.denied"


def test_every_label_key_the_page_builds_exists():
    from engine.text2sql import STRATEGIES
    from ui.text2sql import LEVELS, slug

    keys = strings()
    expected = [f"ch06.strategy_{slug(s)}" for s in STRATEGIES] + [f"ch06.strategy_help_{slug(s)}" for s in STRATEGIES]
    expected += [f"ch06.level_{lv}" for lv in LEVELS] + [f"ch06.split_{s}" for s in ("train", "dev", "test")]
    expected += [f"ch06.err_{c}" for c in ("sql_error", "timeout", "denied", "not_one_statement", "empty")]
    expected += [f"ch06.kind_{k}" for k in ("greedy", "sample", "repair")]
    expected += [f"ch06.reason_{r}" for r in ("sql_error", "no_rows", "duplicate", "in_test", "not_korean", "unsafe")]
    expected += [f"ch06.safety_sql_{c}" for c in ("delete", "multi", "attach", "pragma", "cte")]
    expected += [f"ch06.safety_chip_{c}" for c in ("delete", "multi", "attach", "pragma", "cte")]
    expected += [f"ch06.db_{d}" for d in ("chinook", "spider", "upload")]
    missing = [k for k in expected if k not in keys]
    assert not missing, missing


@pytest.mark.slow
@pytest.mark.server
def test_write_sql_for_the_default_question(open_page):
    at = open_page(PAGE, "ko")
    at.selectbox(key="gen_strategy").set_value("zero-shot").run()
    at.button(key="gen_run").click().run()
    _clean(at)
    answer = at.session_state["ch06_answer"]
    assert answer["strategy"] == "zero-shot" and answer["db"] == "chinook"
    assert answer["attempts"] and answer["attempts"][0]["kind"] == "greedy"
    assert answer["messages"] and answer["messages"][-1]["role"] == "user"
    assert any(c.language == "sql" for c in at.code)


def _attempt(kind: str, sql: str, error: str | None = None, detail: str = "", n_rows: int = 1) -> dict:
    return {"kind": kind, "sql": sql, "error": error, "detail": detail, "n_rows": n_rows}


GOLD = "SELECT COUNT(*) FROM Track AS T1 JOIN Genre AS T2 ON T1.GenreId = T2.GenreId WHERE T2.Name = 'Rock'"
PREDICTION = {
    "strategy": "few-shot+linking+repair",
    "sql": GOLD,
    "columns": ["COUNT(*)"],
    "rows": [[1297]],
    "error": None,
    "detail": "",
    "seconds": 3.2,
    "attempts": [
        _attempt("greedy", "SELECT COUNT(*) FROM Album WHERE GenreId = 1", "text2sql.exec.sql_error", "no such column")
        | {"n_rows": 0},
        _attempt("repair", GOLD),
    ],
    "examples": [{"question": "재즈 트랙은 몇 곡인가요?", "sql": GOLD.replace("Rock", "Jazz")}],
    "tables": ["Genre", "Track"],
    "messages": [{"role": "user", "content": "### DDL:\n..."}],
    "votes": {"[((1297,), 1)]": 3, "[((0,), 1)]": 1},
}
SHIPPED = {
    "ch06_answer": {
        "question": "장르가 Rock인 트랙은 몇 개인가요?",
        "model": "qwen2.5-coder-0.5b-instruct",
        **PREDICTION,
        "zero_shot": {**PREDICTION, "strategy": "zero-shot", "sql": "SELECT x", "error": "text2sql.exec.sql_error"}
        | {"detail": "no such column: x", "rows": [], "columns": [], "votes": {}},
    },
    "ch06_strategies": {
        "set": "chinook-test",
        "n": 60,
        "model": "qwen2.5-coder-0.5b-instruct",
        "rows": [
            {
                "strategy": name,
                "ex": ex,
                "median_s": 2.5,
                "by_difficulty": {"easy": [15, 0.6], "medium": [23, 0.4], "hard": [15, 0.2], "extra": [7, 0.1]},
                "errors": {"text2sql.exec.sql_error": 12, "text2sql.exec.timeout": 1},
            }
            for name, ex in (("zero-shot", 0.2), ("few-shot+linking+repair", 0.62))
        ],
        "spider": {"n": 100, "rows": [{"strategy": "zero-shot", "ex": 0.3, "em": None, "median_s": 1.9}]},
        "questions": {
            "few-shot+linking+repair": [
                {"id": "test-001", "question": "트랙은 몇 곡?", "gold_sql": "SELECT COUNT(*) FROM Track"}
                | {"pred_sql": "SELECT COUNT(*) FROM Track", "ex": True, "em": True, "judge": None, "error": None}
                | {"detail": "", "seconds": 2.1, "difficulty": "easy", "gold_error": None}
            ]
        },
    },
    "ch06_judge": {
        "role": "instruct",
        "wrong": 20,
        "right": 20,
        "false_accepts": 1,
        "false_rejects": 0,
        "unusable": 0,
        "agreement_with_ex": 0.525,
        "records": [
            {"kind": "wrong", "question": "가장 긴 트랙 5곡은?", "gold_sql": GOLD, "pred_sql": "SELECT 1"}
            | {"ex": False, "em": False, "judge": True, "judge_raw": '{"resolve_yn": "yes"}', "judge_seconds": 0.4},
        ],
    },
    "ch06_synthetic": {
        "raw": {"template": 960, "model": 400},
        "kept": {"template": 600, "model": 80},
        "dropped": {"template": {"no_rows": 300, "in_test": 60}, "model": {"sql_error": 250, "no_rows": 70}},
        "examples": [
            {"question": "록 트랙 수는?", "sql": GOLD, "source": "template", "shape": "join2"},
            {"question": "앨범 장르는?", "sql": "SELECT GenreId FROM Album", "source": "model", "shape": ""}
            | {"reason": "sql_error", "detail": "no such column: GenreId"},
        ],
    },
    "ch06_finetune": {  # tests/bench/bench_text2sql_finetune.py
        "test_questions": 60,
        "synthetic": {"raw": 700, "filtered": 640, "dropped": {"no_rows": 60}},
        "runs": {
            "chat/base": {"role": "chat", "eval": {"ex": 0.0, "correct": 0, "n": 60}},
            "chat/tuned-filtered": {"role": "chat", "data": "filtered", "steps": 60, "losses": [2.1, 1.2, 0.8]}
            | {"seconds": 300.0, "eval": {"ex": 0.1, "correct": 6, "n": 60}},
            "chat/tuned-raw": {"role": "chat", "data": "raw", "steps": 60, "losses": [2.2, 1.4, 1.0]}
            | {"seconds": 310.0, "eval": {"ex": 0.05, "correct": 3, "n": 60}},
            "instruct/base": {"role": "instruct", "eval": {"ex": 0.2, "correct": 12, "n": 60}},
        },
    },
}


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_shipped_results_of_every_section_render(monkeypatch, tmp_path, lang):
    """The shapes the shipped files have (engine/text2sql/shipped.py, tests/bench/bench_text2sql_judge.py) drawn
    on a fresh page, before any of them is generated on the reference machine."""
    import json

    from engine.core import precomputed

    for name, data in SHIPPED.items():
        body = {"name": name, "data": data, "command": f"python -m engine x --only {name}", "made": "2026-12-01"}
        (tmp_path / f"{name}.json").write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(precomputed, "path_of", lambda name: tmp_path / f"{name}.json")
    monkeypatch.setattr(ui.i18n, "DEFAULT_LANG", lang)
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=TIMEOUT)
    at.session_state["lang"] = lang
    at.run()
    _clean(at)
    notes = [c.value for c in at.caption if c.value.startswith("📦")]
    assert len(notes) == len(SHIPPED), notes
    assert any(GOLD in c.value for c in at.code)  # the shipped SQL
    assert at.get("plotly_chart"), "no strategy chart or loss curve"
    assert at.button(key="jd_run") is not None  # the default question's gold is known: the judge can run
    if lang == "ko":
        from tests.pages.audit import audit

        english, garbled = audit(at)
        assert not english and not garbled, (english, garbled)


def test_shipped_rows_name_their_model():
    """The shipped comparison holds two models; each row and each set of shipped answers says which one."""
    from engine.core.precomputed import load_precomputed
    from ui.text2sql import model_size, row_label, shipped_answers

    data = load_precomputed("ch06_strategies").data
    assert {model_size(r["model"]) for r in data["rows"]} == {"1.5B", "0.5B"}
    assert all(row_label(r, data).endswith(model_size(r["model"])) for r in data["rows"])
    rows, label = shipped_answers(data, "few-shot+linking+repair")
    assert len(rows) == data["n"] and label.endswith("1.5B")  # the default pipeline's own answers
    rows, label = shipped_answers(data, "few-shot+linking+values+fix+repair")
    assert len(rows) == data["n"] and label.endswith("0.5B")  # measured on the 0.5B only
    assert model_size("smollm2-135m-instruct") == "135M" and model_size("gpt-4o-mini") == "gpt-4o-mini"
