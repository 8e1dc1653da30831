"""Synthetic Korean question/SQL pairs over a database (book 6.1.3): templates, the model, and the filter.

The book makes fine-tuning data by asking a large model to write (question, SQL) pairs from the DDL, then keeps
only what runs. Two sources here, side by side, because they fail differently:

- **templates** (`template_pairs`): hand-written Korean question patterns, each with its SQL, filled with values
  read from the database itself (artist names, genres, countries, years, employees, playlists...). 38 templates in
  17 SQL shapes (filter, count, aggregate, distinct, LIKE, NULL test, BETWEEN, IN, dates, group by, order/limit,
  joins of 2-4 tables, self-join, having, subqueries), one to three phrasings each. Always correct SQL, but
  repetitive: a model trained only on them learns the templates.
- **the model** (`model_pairs`): the `instruct` model (Qwen2.5-Coder-0.5B) writes one pair per call from a few
  tables' DDL, a handful of real values and two template examples, through a JSON schema
  (engine.serving.structured_chat). Varied, but a 0.5B model invents columns, copies its examples, echoes its
  instructions or answers in English: about one pair in five survives the filter.

`filter_pairs` is the book's cleaning step made explicit: a pair is kept only if its SQL runs (read-only,
executor.run_sql) and returns rows, and it is not a duplicate; each drop says why ("sql_error", "no_rows",
"duplicate", "not_korean", "unsafe", "timeout", "in_test"), plus two checks a run cannot make: a value the SQL
filters on must appear in the question ("value_not_in_question": the model asked "고객의 이름, 성과를 알려주세요"
and filtered `City = 'Porto'`), and the question must not echo the prompt ("not_a_question"). "in_test" is
leakage control: a pair whose SQL equals a held-out gold query, or whose result from the same tables equals a
held-out gold result, is dropped, so a tuned model cannot have seen the answer.

The shipped set (assets/text2sql/chinook_synthetic.jsonl, `python -m engine.text2sql.synthetic --out ...`,
held-out = the test and dev splits of chinook_ko.yaml, 90 gold queries), measured on 2 cores shared with four
other model processes:
- templates: 960 drawn → 753 pass (dropped: 156 duplicate, 42 in_test, 9 no_rows) → the first 600 shipped;
  join2 161, filter 103, join3 83, in 43, subquery 38, date 33, like 24, count 22, aggregate 21, null 20,
  distinct 18, having 9, between 8, order_limit 6, group_order 5, group 4, self_join 2.
- model: 28 calls in 15 minutes (32 s a call with one server thread) → 6 shipped (21 %); dropped: 6 sql_error
  (`no such column: ArtistId` on Track), 6 duplicate (a copied example), 3 not_a_question, 3
  value_not_in_question, 2 in_test, 1 not_korean, 1 no_rows.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.core.assets import asset
from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.text2sql.databases import Database, connect_readonly, quote_name
from engine.text2sql.executor import run_sql

SHIPPED = asset("text2sql", "chinook_synthetic.jsonl")
MAX_PAIRS = 5000  # per call: a teaching set, not a corpus

_HANGUL = re.compile(r"[\uac00-\ud7a3]")


@dataclass(frozen=True)
class SyntheticPair:
    question: str  # Korean
    sql: str  # SQLite, one statement, no trailing `;`
    source: str  # "template" or "model"
    shape: str = ""  # the template's SQL shape ("filter", "join2", "having", ...); "" for model pairs


@dataclass(frozen=True)
class Dropped:
    pair: SyntheticPair
    reason: str  # "sql_error", "no_rows", "duplicate", "in_test", "not_korean", "unsafe", "timeout", "empty",
    #              "value_not_in_question", "not_a_question"
    detail: str = ""  # SQLite's message for sql_error/unsafe/timeout


# ---------------------------------------------------------------------------------------------- values
# Korean names for the countries in Chinook; a question says "브라질(Brazil)" or "'Brazil'" (the stored value).
COUNTRY_KO = {
    "Argentina": "아르헨티나",
    "Australia": "호주",
    "Austria": "오스트리아",
    "Belgium": "벨기에",
    "Brazil": "브라질",
    "Canada": "캐나다",
    "Chile": "칠레",
    "Czech Republic": "체코",
    "Denmark": "덴마크",
    "Finland": "핀란드",
    "France": "프랑스",
    "Germany": "독일",
    "Hungary": "헝가리",
    "India": "인도",
    "Ireland": "아일랜드",
    "Italy": "이탈리아",
    "Netherlands": "네덜란드",
    "Norway": "노르웨이",
    "Poland": "폴란드",
    "Portugal": "포르투갈",
    "Spain": "스페인",
    "Sweden": "스웨덴",
    "USA": "미국",
    "United Kingdom": "영국",
}
_WORDS = ("Love", "Blue", "Night", "Man", "Day", "Heart", "Life", "World", "Time", "Song", "Girl", "Fire", "Dream")


@dataclass
class _Values:
    """Real values of a Chinook-shaped database, read once (lists of strings/ints)."""

    genres: list[str]
    artists: list[str]  # with at least one album
    albums: list[str]  # with at least one track
    countries: list[str]  # customers' countries
    cities: list[str]
    years: list[str]
    media: list[str]
    playlists: list[str]
    employees: list[tuple[str, str]]  # (FirstName, LastName)
    managers: list[tuple[str, str]]  # employees someone reports to
    reps: list[tuple[str, str]]  # support reps (have customers)
    titles: list[str]
    composers: list[str]  # at least 3 tracks


def _values(db: Database) -> _Values:
    def col(sql: str) -> list:
        with contextlib.closing(connect_readonly(db.path)) as conn:
            return [r[0] if len(r) == 1 else tuple(r) for r in conn.execute(sql)]

    def clean(items: list) -> list:  # a value with a quote makes an awkward question; skip those
        return [v for v in items if v is not None and "'" not in str(v)]

    return _Values(
        genres=clean(col("SELECT Name FROM Genre ORDER BY GenreId")),
        artists=clean(col("SELECT DISTINCT T1.Name FROM Artist T1 JOIN Album T2 ON T1.ArtistId = T2.ArtistId")),
        albums=clean(col("SELECT DISTINCT T1.Title FROM Album T1 JOIN Track T2 ON T1.AlbumId = T2.AlbumId")),
        countries=clean(col("SELECT DISTINCT Country FROM Customer ORDER BY Country")),
        cities=clean(col("SELECT DISTINCT City FROM Customer ORDER BY City")),
        years=clean(col("SELECT DISTINCT strftime('%Y', InvoiceDate) FROM Invoice ORDER BY 1")),
        media=clean(col("SELECT Name FROM MediaType ORDER BY MediaTypeId")),
        playlists=clean(col("SELECT DISTINCT Name FROM Playlist ORDER BY PlaylistId")),
        employees=col("SELECT FirstName, LastName FROM Employee ORDER BY EmployeeId"),
        managers=col(
            "SELECT DISTINCT T2.FirstName, T2.LastName FROM Employee T1 JOIN Employee T2 "
            "ON T1.ReportsTo = T2.EmployeeId"
        ),
        reps=col(
            "SELECT DISTINCT T1.FirstName, T1.LastName FROM Employee T1 JOIN Customer T2 "
            "ON T1.EmployeeId = T2.SupportRepId"
        ),
        titles=clean(col("SELECT DISTINCT Title FROM Employee ORDER BY EmployeeId")),
        composers=clean(
            col("SELECT Composer FROM Track WHERE Composer IS NOT NULL GROUP BY Composer HAVING count(*) >= 3")
        ),
    )


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


# ---------------------------------------------------------------------------------------------- templates
@dataclass(frozen=True)
class Template:
    shape: str  # the SQL shape, for the mix report
    questions: tuple[str, ...]  # Korean phrasings; {slots} filled from the database
    sql: str  # the SQL with the same {slots} ({x_sql} = the value quoted for SQL)
    slots: tuple[str, ...] = field(default=())


def _slot_value(slot: str, v: _Values, rng: random.Random) -> dict[str, str]:
    """One slot's values: the text the question shows and the text the SQL uses."""
    if slot == "genre":
        g = rng.choice(v.genres)
        return {"genre": g, "genre_sql": _sql_text(g)}
    if slot == "genre2":
        a, b = rng.sample(v.genres, 2)
        return {"genre": a, "genre_sql": _sql_text(a), "genre_b": b, "genre_b_sql": _sql_text(b)}
    if slot == "artist":
        a = rng.choice(v.artists)
        return {"artist": a, "artist_sql": _sql_text(a)}
    if slot == "album":
        a = rng.choice(v.albums)
        return {"album": a, "album_sql": _sql_text(a)}
    if slot == "country":
        c = rng.choice(v.countries)
        shown = f"{COUNTRY_KO[c]}({c})" if c in COUNTRY_KO and rng.random() < 0.6 else f"'{c}'"
        return {"country": shown, "country_sql": _sql_text(c)}
    if slot == "city":
        c = rng.choice(v.cities)
        return {"city": c, "city_sql": _sql_text(c)}
    if slot == "year":
        y = rng.choice(v.years)
        return {"year": y, "year_sql": y}
    if slot == "month":
        m = rng.randint(1, 12)
        return {"month": str(m), "month_sql": f"{m:02d}"}
    if slot == "media":
        m = rng.choice(v.media)
        return {"media": m, "media_sql": _sql_text(m)}
    if slot == "playlist":
        p = rng.choice(v.playlists)
        return {"playlist": p, "playlist_sql": _sql_text(p)}
    if slot in ("employee", "manager", "rep"):
        first, last = rng.choice({"employee": v.employees, "manager": v.managers, "rep": v.reps}[slot])
        return {slot: f"{first} {last}", f"{slot}_first_sql": _sql_text(first), f"{slot}_last_sql": _sql_text(last)}
    if slot == "title":
        t = rng.choice(v.titles)
        return {"title": t, "title_sql": _sql_text(t)}
    if slot == "composer":
        c = rng.choice(v.composers)
        return {"composer": c, "composer_sql": _sql_text(c)}
    if slot == "n":
        n = rng.choice([3, 5, 10])
        return {"n": str(n)}
    if slot == "k":
        return {"k": str(rng.choice([5, 10, 15, 20, 30]))}
    if slot == "minutes":
        m = rng.choice([2, 3, 4, 5, 6, 7, 8, 10])
        return {"minutes": str(m), "ms": str(m * 60_000), "minutes2": str(m + 2), "ms2": str((m + 2) * 60_000)}
    if slot == "amount":
        a = rng.choice([5, 8, 10, 13, 15, 20])
        return {"amount": str(a)}
    if slot == "word":
        w = rng.choice(_WORDS)
        return {"word": w, "word_sql": w}
    raise ValueError(f"unknown slot {slot!r}")


_T1_TRACK_GENRE = "Track AS T1 JOIN Genre AS T2 ON T1.GenreId = T2.GenreId"
_ARTIST_ALBUM = "Artist AS T1 JOIN Album AS T2 ON T1.ArtistId = T2.ArtistId"
_ARTIST_TRACK = "Artist AS T1 JOIN Album AS T2 ON T1.ArtistId = T2.ArtistId JOIN Track AS T3 ON T2.AlbumId = T3.AlbumId"
_YEAR = "strftime('%Y', InvoiceDate) = '{year_sql}'"

TEMPLATES: tuple[Template, ...] = (
    # filter / count / aggregate on one table
    Template(
        "count",
        ("{country}에 사는 고객은 몇 명인가요?", "{country} 고객 수를 알려줘."),
        "SELECT count(*) FROM Customer WHERE Country = '{country_sql}'",
        ("country",),
    ),
    Template(
        "filter",
        ("{country}에 사는 고객의 이름과 성을 보여줘.", "{country} 고객들의 이름과 성은?"),
        "SELECT FirstName, LastName FROM Customer WHERE Country = '{country_sql}'",
        ("country",),
    ),
    Template(
        "filter",
        ("'{city}'에 사는 고객의 이름, 성, 이메일을 알려주세요.",),
        "SELECT FirstName, LastName, Email FROM Customer WHERE City = '{city_sql}'",
        ("city",),
    ),
    Template(
        "distinct",
        ("{country} 고객들이 사는 도시를 중복 없이 보여줘.",),
        "SELECT DISTINCT City FROM Customer WHERE Country = '{country_sql}'",
        ("country",),
    ),
    Template(
        "filter",
        ("재생 시간이 {minutes}분({ms}밀리초)보다 긴 트랙은 몇 곡이야?", "{minutes}분 넘는 트랙 수를 세어 줘."),
        "SELECT count(*) FROM Track WHERE Milliseconds > {ms}",
        ("minutes",),
    ),
    Template(
        "between",
        ("길이가 {minutes}분에서 {minutes2}분 사이인 트랙은 몇 곡인가요?",),
        "SELECT count(*) FROM Track WHERE Milliseconds BETWEEN {ms} AND {ms2}",
        ("minutes",),
    ),
    Template(
        "like",
        ("제목에 '{word}' 단어가 들어간 트랙의 이름을 보여줘.", "이름에 '{word}' 단어가 포함된 트랙은?"),
        "SELECT Name FROM Track WHERE Name LIKE '%{word_sql}%'",
        ("word",),
    ),
    Template(
        "like",
        ("이름에 '{word}' 단어가 들어간 트랙은 몇 곡인가요?",),
        "SELECT count(*) FROM Track WHERE Name LIKE '%{word_sql}%'",
        ("word",),
    ),
    Template(
        "filter",
        ("작곡가가 '{composer}'인 트랙의 이름을 알려줘.", "'{composer}' 작곡의 곡 목록을 보여주세요."),
        "SELECT Name FROM Track WHERE Composer = '{composer_sql}'",
        ("composer",),
    ),
    Template(
        "aggregate",
        ("{year}년 전체 매출 합계는 얼마인가요?", "{year}년에 발행된 송장 금액의 합은?"),
        f"SELECT sum(Total) FROM Invoice WHERE {_YEAR}",
        ("year",),
    ),
    Template(
        "aggregate",
        ("{year}년에 발행된 송장은 몇 건이야?",),
        f"SELECT count(*) FROM Invoice WHERE {_YEAR}",
        ("year",),
    ),
    Template(
        "date",
        ("{year}년 {month}월에 발행된 송장 수는?",),
        "SELECT count(*) FROM Invoice WHERE strftime('%Y-%m', InvoiceDate) = '{year_sql}-{month_sql}'",
        ("year", "month"),
    ),
    Template(
        "aggregate",
        ("청구 국가가 {country}인 송장의 평균 금액은?", "{country} 청구 송장들의 평균 금액을 알려줘."),
        "SELECT avg(Total) FROM Invoice WHERE BillingCountry = '{country_sql}'",
        ("country",),
    ),
    Template(
        "filter",
        ("금액이 {amount}달러 이상인 송장의 번호와 금액을 보여줘.",),
        "SELECT InvoiceId, Total FROM Invoice WHERE Total >= {amount}",
        ("amount",),
    ),
    Template(
        "null",
        ("회사(Company) 정보가 없는 {country} 고객은 몇 명인가요?",),
        "SELECT count(*) FROM Customer WHERE Company IS NULL AND Country = '{country_sql}'",
        ("country",),
    ),
    Template(
        "filter",
        ("직함이 '{title}'인 직원의 이름과 성은?",),
        "SELECT FirstName, LastName FROM Employee WHERE Title = '{title_sql}'",
        ("title",),
    ),
    # order / limit
    Template(
        "order_limit",
        ("가장 긴 트랙 {n}곡의 이름과 재생 시간(밀리초)을 알려줘.", "재생 시간이 가장 긴 곡 {n}개는?"),
        "SELECT Name, Milliseconds FROM Track ORDER BY Milliseconds DESC LIMIT {n}",
        ("n",),
    ),
    Template(
        "order_limit",
        ("금액이 가장 큰 송장 {n}건의 번호와 금액을 보여줘.",),
        "SELECT InvoiceId, Total FROM Invoice ORDER BY Total DESC LIMIT {n}",
        ("n",),
    ),
    # joins of two tables
    Template(
        "join2",
        ("'{genre}' 장르 트랙은 몇 곡인가요?", "장르가 '{genre}'인 곡의 수를 알려줘."),
        f"SELECT count(*) FROM {_T1_TRACK_GENRE} WHERE T2.Name = '{{genre_sql}}'",
        ("genre",),
    ),
    Template(
        "join2",
        ("'{genre}' 장르 트랙의 평균 재생 시간(밀리초)은?",),
        f"SELECT avg(T1.Milliseconds) FROM {_T1_TRACK_GENRE} WHERE T2.Name = '{{genre_sql}}'",
        ("genre",),
    ),
    Template(
        "in",
        ("'{genre}' 또는 '{genre_b}' 장르에 속한 트랙은 모두 몇 곡이야?",),
        f"SELECT count(*) FROM {_T1_TRACK_GENRE} WHERE T2.Name IN ('{{genre_sql}}', '{{genre_b_sql}}')",
        ("genre2",),
    ),
    Template(
        "join2",
        ("아티스트 '{artist}'의 앨범 제목을 모두 보여줘.", "'{artist}' 앨범들의 제목은?"),
        f"SELECT T2.Title FROM {_ARTIST_ALBUM} WHERE T1.Name = '{{artist_sql}}'",
        ("artist",),
    ),
    Template(
        "join2",
        ("앨범 '{album}'에 수록된 트랙의 이름을 알려줘.", "'{album}' 앨범의 곡 목록은?"),
        "SELECT T2.Name FROM Album AS T1 JOIN Track AS T2 ON T1.AlbumId = T2.AlbumId WHERE T1.Title = '{album_sql}'",
        ("album",),
    ),
    Template(
        "join2",
        ("'{media}' 형식인 트랙은 몇 곡이야?",),
        "SELECT count(*) FROM Track AS T1 JOIN MediaType AS T2 ON T1.MediaTypeId = T2.MediaTypeId "
        "WHERE T2.Name = '{media_sql}'",
        ("media",),
    ),
    Template(
        "join2",
        ("'{playlist}' 재생목록에 들어 있는 트랙은 몇 곡인가요?",),
        "SELECT count(*) FROM Playlist AS T1 JOIN PlaylistTrack AS T2 ON T1.PlaylistId = T2.PlaylistId "
        "WHERE T1.Name = '{playlist_sql}'",
        ("playlist",),
    ),
    Template(
        "join2",
        ("직원 {rep}이(가) 담당하는 고객의 이름과 성을 보여줘.", "{rep} 직원이 맡은 고객은 누구야? 이름과 성으로."),
        "SELECT T2.FirstName, T2.LastName FROM Employee AS T1 JOIN Customer AS T2 ON T1.EmployeeId = T2.SupportRepId "
        "WHERE T1.FirstName = '{rep_first_sql}' AND T1.LastName = '{rep_last_sql}'",
        ("rep",),
    ),
    Template(
        "self_join",
        ("{manager}에게 보고하는 직원의 이름과 성은?",),
        "SELECT T1.FirstName, T1.LastName FROM Employee AS T1 JOIN Employee AS T2 ON T1.ReportsTo = T2.EmployeeId "
        "WHERE T2.FirstName = '{manager_first_sql}' AND T2.LastName = '{manager_last_sql}'",
        ("manager",),
    ),
    Template(
        "join2",
        ("{country} 고객들이 지출한 금액의 합계는?",),
        "SELECT sum(T2.Total) FROM Customer AS T1 JOIN Invoice AS T2 ON T1.CustomerId = T2.CustomerId "
        "WHERE T1.Country = '{country_sql}'",
        ("country",),
    ),
    # joins of three or more tables
    Template(
        "join3",
        ("아티스트 '{artist}'의 트랙은 모두 몇 곡인가요?", "'{artist}'의 곡 수를 알려줘."),
        f"SELECT count(*) FROM {_ARTIST_TRACK} WHERE T1.Name = '{{artist_sql}}'",
        ("artist",),
    ),
    Template(
        "join3",
        ("'{genre}' 장르의 곡을 낸 아티스트 이름을 중복 없이 보여줘.",),
        f"SELECT DISTINCT T1.Name FROM {_ARTIST_TRACK} JOIN Genre AS T4 ON T3.GenreId = T4.GenreId "
        "WHERE T4.Name = '{genre_sql}'",
        ("genre",),
    ),
    Template(
        "join3",
        ("'{genre}' 장르 트랙의 판매 수량 합계는?",),
        "SELECT sum(T1.Quantity) FROM InvoiceLine AS T1 JOIN Track AS T2 ON T1.TrackId = T2.TrackId "
        "JOIN Genre AS T3 ON T2.GenreId = T3.GenreId WHERE T3.Name = '{genre_sql}'",
        ("genre",),
    ),
    # group by / having / order by an aggregate
    Template(
        "group_order",
        ("매출 합계가 가장 큰 청구 국가 {n}곳과 그 합계를 보여줘.",),
        "SELECT BillingCountry, sum(Total) FROM Invoice GROUP BY BillingCountry ORDER BY sum(Total) DESC LIMIT {n}",
        ("n",),
    ),
    Template(
        "group_order",
        ("앨범이 가장 많은 아티스트 {n}명의 이름과 앨범 수는?",),
        f"SELECT T1.Name, count(*) FROM {_ARTIST_ALBUM} GROUP BY T1.ArtistId ORDER BY count(*) DESC LIMIT {{n}}",
        ("n",),
    ),
    Template(
        "having",
        ("트랙이 {k}곡 이상인 장르의 이름을 보여줘.",),
        f"SELECT T2.Name FROM {_T1_TRACK_GENRE} GROUP BY T2.GenreId HAVING count(*) >= {{k}}",
        ("k",),
    ),
    Template(
        "having",
        ("트랙이 {k}곡 넘게 수록된 앨범의 제목은?",),
        "SELECT T1.Title FROM Album AS T1 JOIN Track AS T2 ON T1.AlbumId = T2.AlbumId GROUP BY T1.AlbumId "
        "HAVING count(*) > {k}",
        ("k",),
    ),
    Template(
        "group",
        ("{year}년 월별 송장 수를 알려줘.",),
        f"SELECT strftime('%m', InvoiceDate), count(*) FROM Invoice WHERE {_YEAR} GROUP BY strftime('%m', InvoiceDate)",
        ("year",),
    ),
    # subqueries
    Template(
        "subquery",
        ("'{genre}' 장르에서 평균보다 긴 트랙의 이름은?",),
        f"SELECT T1.Name FROM {_T1_TRACK_GENRE} WHERE T2.Name = '{{genre_sql}}' AND T1.Milliseconds > "
        "(SELECT avg(Milliseconds) FROM Track)",
        ("genre",),
    ),
    Template(
        "subquery",
        ("한 번도 팔리지 않은 '{genre}' 장르 트랙은 몇 곡인가요?",),
        f"SELECT count(*) FROM {_T1_TRACK_GENRE} WHERE T2.Name = '{{genre_sql}}' AND T1.TrackId NOT IN "
        "(SELECT TrackId FROM InvoiceLine)",
        ("genre",),
    ),
)


def _fill(template: Template, values: _Values, rng: random.Random) -> SyntheticPair:
    slots: dict[str, str] = {}
    for slot in template.slots:
        slots.update(_slot_value(slot, values, rng))
    question = rng.choice(template.questions).format(**slots)
    return SyntheticPair(question, template.sql.format(**slots), "template", template.shape)


def _check_count(n: int) -> None:
    if not 1 <= n <= MAX_PAIRS:
        raise InputError("text2sql.synthetic.bad_count", limit=MAX_PAIRS, value=n)


def template_pairs(db: Database, n: int, seed: int = 0) -> list[SyntheticPair]:
    """`n` distinct template pairs (fewer only if the templates run out of distinct fillings), round-robin over
    the templates so every SQL shape appears. Filled from the database's own values; not yet executed."""
    _check_count(n)
    rng = random.Random(seed)
    values = _values(db)
    pairs: list[SyntheticPair] = []
    seen: set[str] = set()
    order = list(TEMPLATES)
    misses = 0
    while len(pairs) < n and misses < 50 * len(order):
        rng.shuffle(order)
        for template in order:
            pair = _fill(template, values, rng)
            if pair.question in seen:
                misses += 1
                continue
            seen.add(pair.question)
            pairs.append(pair)
            if len(pairs) == n:
                break
    return pairs


# ---------------------------------------------------------------------------------------------- the model
# Table groups the model writes about, one group per call: a short DDL keeps the prompt small (a 0.5B model on
# 2 cores reads ~600 prompt tokens for the whole Chinook DDL, ~150 for two tables) and spreads the topics.
TABLE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("Track", "Genre"),
    ("Artist", "Album"),
    ("Customer",),
    ("Customer", "Invoice"),
    ("Artist", "Album", "Track"),
    ("Employee",),
    ("Employee", "Customer"),
    ("Invoice",),
    ("InvoiceLine", "Track"),
    ("Playlist", "PlaylistTrack", "Track"),
    ("Track", "MediaType"),
    ("Album", "Track"),
)
_VALUE_COLUMNS = {  # a few real values per table, so the model's filters can match rows
    "Genre": "Name",
    "Artist": "Name",
    "Album": "Title",
    "Customer": "Country",
    "Invoice": "BillingCountry",
    "Employee": "Title",
    "Playlist": "Name",
    "MediaType": "Name",
    "Track": "Composer",
}
MODEL_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "sql": {"type": "string"}},
    "required": ["question", "sql"],
}
MODEL_PROMPT = (
    "아래 SQLite 테이블에 대해 사람이 실제로 물어볼 만한 한국어 질문 하나와, 그 질문에 답하는 SQLite SQL을 "
    "JSON으로 쓰세요. 질문은 반드시 한국어로 쓰고, 값은 '실제 값'에 있는 것만 쓰세요. 예시를 베끼지 말고, 예시와 "
    "다른 종류의 질문(개수, 합계, 평균, 정렬, 그룹별 집계, 조인)을 만드세요.\n\n"
    "### DDL:\n{ddl}\n\n### 실제 값:\n{values}\n\n### 예시:\n{example}\n\n"
    '답: {{"question": "...", "sql": "..."}}'
)


def _sample_values(db: Database, tables: Sequence[str], rng: random.Random, k: int = 6) -> str:
    lines = []
    with contextlib.closing(connect_readonly(db.path)) as conn:
        for table in tables:
            column = _VALUE_COLUMNS.get(table)
            if not column or column not in db.tables.get(table, []):
                continue
            c, t = quote_name(column), quote_name(table)
            found = [r[0] for r in conn.execute(f"SELECT DISTINCT {c} FROM {t} WHERE {c} IS NOT NULL")]
            picked = rng.sample(found, min(k, len(found)))
            lines.append(f"{table}.{column}: " + ", ".join(f"'{v}'" for v in picked))
    return "\n".join(lines) or "(없음)"


def model_prompt(db: Database, tables: Sequence[str], examples: Sequence[SyntheticPair], rng: random.Random) -> str:
    """The user turn asking the model for one pair about `tables` (shown on the page as what the model saw)."""
    shown = "\n".join(json.dumps({"question": e.question, "sql": e.sql}, ensure_ascii=False) for e in examples)
    return MODEL_PROMPT.format(ddl=db.table_ddl(tables), values=_sample_values(db, tables, rng), example=shown)


def model_pairs(
    db: Database,
    n: int,
    role: str = "instruct",
    seed: int = 0,
    progress: ProgressFn = null_progress,
    *,
    time_budget_s: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    temperature: float = 0.8,
) -> list[SyntheticPair]:
    """Up to `n` pairs written by the model, one per call (unfiltered: run `filter_pairs` next).

    Each call shows one table group's DDL, a few real values and two template pairs of the same tables as
    examples; the JSON schema makes the answer parseable. Stops early at `time_budget_s` or when `should_stop()`
    says so (the pairs so far are returned). A call whose answer is not usable JSON is skipped."""
    from engine.serving import ModelServerError, structured_chat  # the serving stack only when a model is asked

    _check_count(n)
    rng = random.Random(seed)
    examples = template_pairs(db, 200, seed=seed)
    groups = [g for g in TABLE_GROUPS if all(t in db.tables for t in g)] or [tuple(db.tables)[:3]]
    started = time.monotonic()
    pairs: list[SyntheticPair] = []
    for i in range(n):
        if should_stop and should_stop():
            break
        if time_budget_s is not None and time.monotonic() - started > time_budget_s:
            break
        tables = groups[i % len(groups)]
        used = [e for e in examples if _tables_of(e.sql) and _tables_of(e.sql) <= set(tables)] or examples
        prompt = model_prompt(db, tables, rng.sample(used, min(2, len(used))), rng)
        try:
            answer = structured_chat(
                [{"role": "user", "content": prompt}],
                MODEL_SCHEMA,
                name="pair",
                max_tokens=160,
                temperature=temperature,
                role=role,
            )
        except ModelServerError as exc:
            if exc.code == "server.bad_json":  # cut off by max_tokens: skip this call
                answer = None
            elif pairs:  # the server stopped answering (a timeout on a busy machine): keep what was made
                break
            else:
                raise
        if isinstance(answer, dict):
            question = str(answer.get("question", "")).strip()
            sql = _clean_sql(str(answer.get("sql", "")))
            pairs.append(SyntheticPair(question, sql, "model"))
        progress((i + 1) / n, f"{i + 1}/{n} model calls, {len(pairs)} pairs")
    return pairs


def _tables_of(sql: str) -> set[str]:
    return set(re.findall(r"\b(?:FROM|JOIN)\s+([A-Za-z_]+)", sql, re.I))


def _tables_key(sql: str) -> frozenset[str]:
    return frozenset(t.lower() for t in _tables_of(sql))


def _clean_sql(sql: str) -> str:
    """One line, no trailing `;` (a model often ends with one; the executor would run it, but dedup should not
    see `... ;` and `...` as different)."""
    return " ".join(sql.split()).rstrip(";").strip()


# ---------------------------------------------------------------------------------------------- the filter
def _result_key(rows: list[tuple]) -> tuple:
    """A result as an order-free, rounding-tolerant value, for comparing with held-out gold results."""

    def norm(v):
        return round(v, 6) if isinstance(v, float) else v

    return tuple(sorted((tuple(norm(v) for v in r) for r in rows), key=repr))


def _is_empty(rows: list[tuple]) -> bool:
    """No rows, or one row of only NULL/0 (`sum` over nothing, `count` of nothing): a filter that matched
    nothing, which as training data would teach a wrong value."""
    return not rows or (len(rows) == 1 and all(v is None or v == 0 for v in rows[0]))


def filter_pairs(
    pairs: Sequence[SyntheticPair],
    db: Database,
    exclude_sql: Sequence[str] = (),
    *,
    timeout_s: float = 2.0,
    progress: ProgressFn = null_progress,
) -> tuple[list[SyntheticPair], list[Dropped]]:
    """Keep pairs whose SQL runs and returns rows; drop the rest, each with a reason.

    `exclude_sql` are held-out gold queries: a pair with the same SQL (whitespace/case-insensitive) or the same
    result (as a bag of rows) is dropped as "in_test"."""
    held_sql: set[str] = set()
    held_results: set[tuple] = set()  # (tables read, result): the same answer from the same tables
    for sql in exclude_sql:
        held_sql.add(_norm_sql(sql))
        gold = run_sql(db, sql, timeout_s=timeout_s, max_rows=10_000)
        if gold.ok and not _is_empty(gold.rows):
            held_results.add((_tables_key(sql), _result_key(gold.rows)))
    kept: list[SyntheticPair] = []
    dropped: list[Dropped] = []
    seen_sql: set[str] = set()
    seen_q: set[str] = set()
    for i, pair in enumerate(pairs):
        progress((i + 1) / max(1, len(pairs)), f"checked {i + 1}/{len(pairs)}")
        question, sql = pair.question.strip(), _clean_sql(pair.sql)
        if not question or not sql:
            dropped.append(Dropped(pair, "empty"))
            continue
        if not _HANGUL.search(question):
            dropped.append(Dropped(pair, "not_korean"))
            continue
        if any(marker in question for marker in _PROMPT_ECHO):
            dropped.append(Dropped(pair, "not_a_question"))
            continue
        missing = _values_not_in_question(question, sql)
        if missing:
            dropped.append(Dropped(pair, "value_not_in_question", ", ".join(missing)))
            continue
        key = _norm_sql(sql)
        if key in seen_sql or question in seen_q:
            dropped.append(Dropped(pair, "duplicate"))
            continue
        result = run_sql(db, sql, timeout_s=timeout_s, max_rows=1000)
        if not result.ok:
            reason = {
                "text2sql.exec.timeout": "timeout",
                "text2sql.exec.denied": "unsafe",
                "text2sql.exec.not_one_statement": "unsafe",
            }.get(result.error or "", "sql_error")
            dropped.append(Dropped(pair, reason, result.detail))
            continue
        if _is_empty(result.rows):
            dropped.append(Dropped(pair, "no_rows"))
            continue
        if key in held_sql or (_tables_key(sql), _result_key(result.rows)) in held_results:
            dropped.append(Dropped(pair, "in_test"))
            continue
        seen_sql.add(key)
        seen_q.add(question)
        kept.append(SyntheticPair(question, sql, pair.source, pair.shape))
    return kept, dropped


# Phrases of the generation prompt: a question that contains one is the model echoing its instructions.
_PROMPT_ECHO = ("JSON", "SQLite", "SQL을", "질문 하나", "답변을 제공", "실제 값")
_LITERAL = re.compile(r"'((?:[^']|'')*)'")


def _values_not_in_question(question: str, sql: str) -> list[str]:
    """String values the SQL filters on that the question never mentions.

    A pair that runs can still be wrong: the model wrote "고객의 이름을 알려주세요" with `WHERE City = 'Porto'`.
    Every quoted value must appear in the question (case-insensitive; a country may appear in Korean, 브라질 for
    'Brazil'). Dates, numbers and strftime formats are exempt ('2010-07' is asked as "2010년 7월"), and a LIKE
    pattern is checked without its % signs."""
    asked = question.lower()
    missing = []
    for raw in _LITERAL.findall(sql):
        if re.fullmatch(r"(%[A-Za-z][\s:./-]?)+", raw):  # a strftime format: '%Y', '%Y-%m'
            continue
        value = raw.replace("''", "'").strip("%").strip()
        if not value or re.fullmatch(r"[\d\s:./-]+", value):
            continue
        if value.lower() in asked or COUNTRY_KO.get(value, "\0") in question:
            continue
        missing.append(value)
    return missing


def _norm_sql(sql: str) -> str:
    return " ".join(sql.lower().replace('"', "'").split()).rstrip(";").strip()


def drop_counts(dropped: Sequence[Dropped]) -> dict[str, dict[str, int]]:
    """source -> reason -> count (for the page's table and the CLI summary)."""
    out: dict[str, Counter] = {}
    for d in dropped:
        out.setdefault(d.pair.source, Counter())[d.reason] += 1
    return {source: dict(counter.most_common()) for source, counter in out.items()}


# ---------------------------------------------------------------------------------------------- the shipped set
def read_pairs(path: Path) -> list[SyntheticPair]:
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            pairs.append(SyntheticPair(item["question"], item["sql"], item["source"], item.get("shape", "")))
    return pairs


def write_pairs(pairs: Sequence[SyntheticPair], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for p in pairs:
            row = {"question": p.question, "sql": p.sql, "source": p.source}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def shipped_synthetic() -> list[SyntheticPair]:
    """The shipped Chinook set: template and model pairs that passed `filter_pairs`, held-out results excluded."""
    return read_pairs(SHIPPED)


def held_out_sql(splits: Sequence[str] = ("test", "dev")) -> list[str]:
    """Gold SQL of the held-out Chinook questions (engine.text2sql.questions), [] if that set is not there."""
    try:
        from engine.text2sql.questions import chinook_questions
    except ImportError:
        return []
    out: list[str] = []
    for split in splits:
        with contextlib.suppress(FileNotFoundError, ValueError):
            out.extend(q.sql for q in chinook_questions(split))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Write the shipped set: template pairs, then model pairs for a time budget, filtered, held-out excluded."""
    from engine.core.progress import cli_progress
    from engine.text2sql.databases import chinook

    parser = argparse.ArgumentParser(prog="python -m engine.text2sql.synthetic", description=main.__doc__)
    parser.add_argument("--out", type=Path, default=SHIPPED)
    parser.add_argument("--templates", type=int, default=600, help="template pairs to keep")
    parser.add_argument("--model-calls", type=int, default=400, help="at most this many model calls")
    parser.add_argument("--model-minutes", type=float, default=15.0, help="time budget for model calls")
    parser.add_argument("--role", default="instruct")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exclude", default="test,dev", help="held-out splits whose results are excluded")
    parser.add_argument("--save-precomputed", action="store_true", help="also write assets/precomputed/ch06_synthetic")
    args = parser.parse_args(argv)

    db = chinook()
    exclude = held_out_sql([s for s in args.exclude.split(",") if s]) if args.exclude else []
    print(f"excluding {len(exclude)} held-out gold queries ({args.exclude or 'none'})", file=sys.stderr)
    # Ask for more raw template pairs than needed: some fillings return no rows or collide with held-out results.
    raw_templates = template_pairs(db, min(MAX_PAIRS, int(args.templates * 1.6)), seed=args.seed)
    kept_t, dropped_t = filter_pairs(raw_templates, db, exclude)
    kept_t = kept_t[: args.templates]
    raw_model: list[SyntheticPair] = []
    started = time.monotonic()
    if args.model_calls > 0 and args.model_minutes > 0:
        raw_model = model_pairs(
            db,
            args.model_calls,
            role=args.role,
            seed=args.seed,
            progress=cli_progress,
            time_budget_s=args.model_minutes * 60,
        )
    model_s = time.monotonic() - started
    kept, dropped = filter_pairs([*kept_t, *raw_model], db, exclude)
    write_pairs(kept, args.out)
    counts = Counter(p.source for p in kept)
    summary = {
        "kept": dict(counts),
        "raw": {"template": len(raw_templates), "model": len(raw_model)},
        "dropped": drop_counts([*dropped_t, *dropped]),
        "model_seconds": round(model_s, 1),
        "shapes": dict(Counter(p.shape for p in kept if p.source == "template").most_common()),
        "excluded_gold": len(exclude),
    }
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    examples = [asdict(d.pair) | {"reason": d.reason, "detail": d.detail} for d in dropped if d.pair.source == "model"]
    print(json.dumps(examples[:10], ensure_ascii=False, indent=1), file=sys.stderr)
    if args.save_precomputed:
        from engine.core.precomputed import save_precomputed

        shown = [asdict(p) for source in ("template", "model") for p in [k for k in kept if k.source == source][:8]]
        by_reason: dict[str, int] = {}
        for d in [*dropped_t, *dropped]:  # up to 3 examples of each reason, model pairs first
            if by_reason.get(d.reason, 0) < 3 and (d.pair.source == "model" or d.reason != "duplicate"):
                by_reason[d.reason] = by_reason.get(d.reason, 0) + 1
                shown.append(asdict(d.pair) | {"reason": d.reason, "detail": d.detail})
        command = "python -m engine.text2sql.synthetic " + " ".join(argv if argv is not None else sys.argv[1:])
        save_precomputed("ch06_synthetic", summary | {"examples": shown}, command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
