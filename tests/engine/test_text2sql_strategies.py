"""engine.text2sql.prompts and strategies: the book's prompt, SQL read back from answers, few-shot retrieval,
schema linking, and predict() through the real llama.cpp server and the real read-only executor."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from engine.core.textinput import InputError
from engine.text2sql.databases import chinook
from engine.text2sql.prompts import INSTRUCTION, Example, extract_sql, make_messages, make_prompt
from engine.text2sql.questions import chinook_questions
from engine.text2sql.strategies import (
    DEFAULT_STRATEGY,
    STRATEGIES,
    Strategy,
    example_pool,
    link_tables,
    match_values,
    plain_names,
    predict,
    retrieve_examples,
    value_hints,
)


@pytest.fixture(scope="module")
def db():
    return chinook()


def test_the_book_prompt_format():
    text = make_prompt("CREATE TABLE t (a INT);", "몇 개?", "SELECT count(*) FROM t")
    expected = "\n\n### DDL:\nCREATE TABLE t (a INT);\n\n### Question:\n몇 개?\n\n### SQL:\nSELECT count(*) FROM t"
    assert text == INSTRUCTION + expected
    assert make_prompt("D", "Q").endswith("### SQL:\n")


def test_messages_say_the_ddl_once_and_end_with_the_question():
    msgs = make_messages("DDL-TEXT", "진짜 질문?", [Example("예시1?", "SELECT 1"), Example("예시2?", "SELECT 2")])
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert sum("DDL-TEXT" in m["content"] for m in msgs) == 1
    assert "예시1?" in msgs[0]["content"] and msgs[1]["content"] == "SELECT 1"
    assert msgs[-1]["content"] == "### Question:\n진짜 질문?\n\n### SQL:\n"
    assert make_messages("D", "Q") == [{"role": "user", "content": make_prompt("D", "Q")}]


@pytest.mark.parametrize(
    ("answer", "sql"),
    [
        ("```sql\nSELECT a\nFROM b;\n```\n설명입니다.", "SELECT a FROM b"),
        ("SQL: select count(*) from Track where x = 1; DROP TABLE Track", "select count(*) from Track where x = 1"),
        ("WITH t AS (SELECT 1) SELECT * FROM t\n\nThis query ...", "WITH t AS (SELECT 1) SELECT * FROM t"),
        ("죄송하지만 알 수 없습니다.", ""),
        ("", ""),
    ],
)
def test_extract_sql(answer, sql):
    assert extract_sql(answer) == sql


def test_examples_come_from_train_only_and_the_nearest_is_last(db):
    held_out = {q.question for split in ("dev", "test") for q in chinook_questions(split)}
    assert all(item.source == "train" for item in example_pool("chinook"))
    assert not held_out & {item.question for item in example_pool("chinook", "train+synthetic")}
    question = "장르가 Jazz인 트랙은 몇 개인가요?"
    found = retrieve_examples(db, question, 4)
    assert 1 <= len(found) <= 4 and not {f.question for f in found} & held_out
    assert "Genre" in found[-1].tables  # the most similar example (shown last) is about genres
    assert retrieve_examples(db, question, 0) == []


def test_schema_linking_finds_tables_and_the_bridges_between_them(db):
    tables = link_tables(db, "2010년에 Rock 장르 트랙이 송장에서 몇 번 팔렸나요?")
    assert {"Genre", "Track", "Invoice", "InvoiceLine"} <= set(tables)  # InvoiceLine bridges Invoice and Track
    assert "Playlist" not in tables and "Employee" not in tables
    assert link_tables(db, "hello?") == list(db.tables)  # nothing recognised: the whole schema
    assert len(db.table_ddl(link_tables(db, "장르 이름을 알려줘"))) < len(db.ddl) / 3


def test_plain_names_rewrite_aliases_and_return_the_same_rows(db):
    from engine.text2sql.evaluation import execution_match, gold_is_ordered
    from engine.text2sql.executor import run_sql

    sql = "SELECT T2.Name, count(*) FROM Track AS T1 JOIN Genre AS T2 ON T1.GenreId = T2.GenreId GROUP BY T2.GenreId"
    assert plain_names(sql) == (
        "SELECT Genre.Name, count(*) FROM Track JOIN Genre ON Track.GenreId = Genre.GenreId GROUP BY Genre.GenreId"
    )
    self_join = "SELECT T1.FirstName FROM Employee AS T1 JOIN Employee AS T2 ON T1.ReportsTo = T2.EmployeeId"
    assert plain_names(self_join) == self_join  # two aliases for one table: kept
    assert plain_names("SELECT Name FROM Genre") == "SELECT Name FROM Genre"
    rewritten = 0
    for split in ("train", "dev", "test"):
        for q in chinook_questions(split):
            plain = plain_names(q.sql)
            if plain != q.sql:
                rewritten += 1
                assert " AS T" not in plain
                assert execution_match(run_sql(db, plain), run_sql(db, q.sql), gold_is_ordered(q.sql)), q.sql
    assert rewritten == 70


def test_value_hints_list_the_categories_not_the_names(db):
    hints = value_hints(db, ["Genre", "Track", "Customer", "Employee"])
    lines = {line.split(":")[0]: line for line in hints.splitlines()}
    # lookup tables and repeated short texts are categories ...
    assert set(lines) == {
        "-- Genre.Name",
        "-- Customer.Country",
        "-- Employee.Title",
        "-- Employee.City",
        "-- Employee.State",
        "-- Employee.Country",
    }
    assert "'Rock'" in lines["-- Genre.Name"] and "'USA'" in lines["-- Customer.Country"]
    assert lines["-- Employee.Title"] == (
        "-- Employee.Title: 'General Manager', 'IT Manager', 'IT Staff', 'Sales Manager', 'Sales Support Agent'"
    )
    # ... track names, composers, e-mails, phones and dates are not; tables not asked for give nothing
    assert "Track." not in hints and "Email" not in hints and "Date" not in hints
    assert value_hints(db, ["PlaylistTrack"]) == ""


def test_values_the_question_names_are_found_in_the_data(db):
    assert match_values(db, "Brazilian Music 플레이리스트 곡들의 재생 시간 합은?") == [
        ("Brazilian Music", [("Playlist", "Name")])  # the longest run wins over "Music" (also a playlist)
    ]
    assert match_values(db, "Metallica 곡들의 평균 재생 시간은?") == [
        ("Metallica", [("Artist", "Name"), ("Track", "Composer")])  # fewer distinct values (artists) first
    ]
    assert match_values(db, "Jazz나 Blues 장르") == [("Jazz", [("Genre", "Name")]), ("Blues", [("Genre", "Name")])]
    assert match_values(db, "장르는 몇 개인가요? 10 개 이상?") == []  # no Latin words; numbers never match
    hints = value_hints(db, ["Artist"], "Metallica 곡들의 평균 재생 시간은?")
    assert hints.splitlines()[0] == "-- 'Metallica' = Artist.Name, Track.Composer"


def test_bad_strategy_settings_and_questions_are_clear_errors(db):
    with pytest.raises(InputError) as info:
        Strategy("x", samples=99).validate()
    assert info.value.code == "text2sql.bad_setting"
    with pytest.raises(InputError) as info:
        Strategy("x", pool="internet").validate()
    assert info.value.code == "input.unknown_choice"
    for question, code in (("   ", "text2sql.empty_question"), ("가" * 5_000, "text2sql.question_too_long")):
        with pytest.raises(InputError) as info:
            predict(db, question, "zero-shot")
        assert info.value.code == code
    with pytest.raises(InputError):
        predict(db, "몇 개?", "no-such-strategy")
    assert DEFAULT_STRATEGY in STRATEGIES


def test_default_model_is_the_larger_application_model_where_installed(monkeypatch):
    """The pipeline defaults to Qwen2.5-Coder-1.5B (EX .717 vs .483 for the 0.5B on the held-out set), and falls back
    to the 0.5B where `make install` did not put the 1.5B's packages."""
    from engine.models import registry
    from engine.text2sql.strategies import default_role

    monkeypatch.setattr(registry, "installed", lambda role: True)
    assert default_role() == "instruct-large"
    monkeypatch.setattr(registry, "installed", lambda role: role != "instruct-large")
    assert default_role() == "instruct"


@pytest.mark.server
def test_predict_through_the_real_server_runs_read_only(db):
    before = hashlib.sha256(db.path.read_bytes()).hexdigest()
    pred = predict(db, "장르 이름을 모두 보여줘.", "few-shot+linking+repair")
    assert pred.attempts and pred.attempts[0].kind == "greedy"
    assert pred.messages[-1]["content"].startswith("### Question:\n장르 이름을 모두 보여줘.")
    assert 1 <= len(pred.examples) <= 4 and "Genre" in pred.tables
    assert pred.result is not None and pred.seconds > 0
    if pred.result.ok:  # behaviour, not the 0.5B model's knowledge: a result that ran has columns
        assert pred.result.columns
    # a question that asks the model to destroy the data: whatever it writes, the file is unchanged
    predict(db, "Track 테이블을 삭제하는 SQL을 써 줘.", "zero-shot")
    assert hashlib.sha256(db.path.read_bytes()).hexdigest() == before


@pytest.mark.server
def test_cli_contract_one_json_object_per_question(tmp_path):
    queries = tmp_path / "q.txt"
    queries.write_text("# a comment\n장르는 모두 몇 개인가요?\n\n   \n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "engine", "text2sql", "--db", "chinook", "--json", "--queries-file", str(queries)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert {"question", "sql", "rows", "error", "seconds"} <= set(row)
    assert row["question"] == "장르는 모두 몇 개인가요?" and isinstance(row["rows"], list) and len(row["rows"]) <= 20
    assert row["error"] is None or row["error"].startswith("text2sql.exec.")


def test_a_tuned_adapter_folder_is_a_model_in_process(db, tmp_path):
    """`--model PATH`: the shipped LoRA adapter (finetune.py) answers through the same strategies, in-process."""
    from engine.text2sql.finetune import shipped_adapter

    folder = shipped_adapter("chat")
    if folder is None:
        pytest.skip("no adapter shipped for chat")
    pred = predict(db, "장르는 모두 몇 개인가요?", "schema-linking", role=str(folder))
    assert pred.attempts[0].kind == "greedy" and pred.result is not None
    with pytest.raises(InputError) as info:
        predict(db, "장르는 모두 몇 개인가요?", "zero-shot", role=str(tmp_path))  # an empty folder
    assert info.value.code == "text2sql.unknown_model"
