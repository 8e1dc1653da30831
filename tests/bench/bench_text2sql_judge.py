"""Chapter 6 (6.2): how far the book's LLM judge can be trusted, measured against execution on Chinook.

40 hand-made pairs over the canonical Chinook schema, each a Korean question, a gold SQL and a predicted SQL:
20 *wrong but plausible* predictions (a missing filter, a wrong join key, LIMIT or GROUP BY missing, ASC for
DESC, COUNT for SUM, > for >=, ...) and 20 *right but differently written* ones (a JOIN for an IN subquery,
NOT IN for LEFT JOIN ... IS NULL, BETWEEN for >= AND <=, a CTE, an implicit join, columns swapped, ...).
Execution decides which is which (every wrong pair's results differ, every right pair's agree — checked here,
a pair that does not behave is reported, not silently dropped). The judge (engine.text2sql.evaluation.judge,
prompts.JUDGE_PROMPT, greedy, {"resolve_yn": "yes"|"no"}) then answers each pair:

- false accepts: "yes" on a wrong pair (what a judge-only evaluation would count as solved);
- false rejects: "no" on a right pair.

    LLMLAB_CACHE=/tmp/cache-C .venv/bin/python -m tests.bench.run_bench text2sql_judge   # bench.json + bench.md
    LLMLAB_CACHE=/tmp/cache-C .venv/bin/python -m tests.bench.bench_text2sql_judge      # rows as JSON lines

Measured (Qwen2.5-Coder-0.5B-Instruct Q4_K_M on the embedded llama.cpp server, full Chinook DDL, 2 cores shared
with other jobs, load average ~8): all 40 pairs behave as built; false accepts 1/20 (0.05: `UnitPrice >= 0.99` for
`> 0.99`), false rejects 17/20 (0.85), agreement with execution 0.55, no unusable answer, median 27 s per call,
~20 min in all. The 0.5B judge says "no" to 36 of 40 pairs. Spider's exact set match: 0.20 on the wrong pairs
(it ignores JOIN ... ON conditions, DISTINCT and values), 0.05 on the right ones.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

from tests.bench.rows import bench_row

BENCH = "text2sql_judge"

# (question, gold SQL, wrong-but-plausible prediction)
WRONG = [
    (
        "록(Rock) 장르의 트랙은 몇 곡인가요?",
        "SELECT COUNT(*) FROM Track AS t JOIN Genre AS g ON t.GenreId = g.GenreId WHERE g.Name = 'Rock'",
        "SELECT COUNT(*) FROM Track",
    ),
    (
        "가장 긴 트랙 5곡의 이름을 알려 주세요.",
        "SELECT Name FROM Track ORDER BY Milliseconds DESC LIMIT 5",
        "SELECT Name FROM Track ORDER BY Milliseconds DESC",
    ),
    (
        "앨범 'Let There Be Rock'을 낸 아티스트의 이름은?",
        "SELECT ar.Name FROM Album AS al JOIN Artist AS ar ON al.ArtistId = ar.ArtistId "
        "WHERE al.Title = 'Let There Be Rock'",
        "SELECT ar.Name FROM Album AS al JOIN Artist AS ar ON al.AlbumId = ar.ArtistId "
        "WHERE al.Title = 'Let There Be Rock'",
    ),
    (
        "고객이 가장 많은 나라는 어디인가요?",
        "SELECT Country FROM Customer GROUP BY Country ORDER BY COUNT(*) DESC LIMIT 1",
        "SELECT Country FROM Customer GROUP BY Country ORDER BY COUNT(*) ASC LIMIT 1",
    ),
    (
        "가장 짧은 트랙의 이름은?",
        "SELECT Name FROM Track ORDER BY Milliseconds ASC LIMIT 1",
        "SELECT Name FROM Track ORDER BY Milliseconds DESC LIMIT 1",
    ),
    (
        "청구서가 발행된 나라는 모두 몇 곳인가요?",
        "SELECT COUNT(DISTINCT BillingCountry) FROM Invoice",
        "SELECT COUNT(BillingCountry) FROM Invoice",
    ),
    (
        "2009년 매출 합계는 얼마인가요?",
        "SELECT SUM(Total) FROM Invoice WHERE strftime('%Y', InvoiceDate) = '2009'",
        "SELECT COUNT(Total) FROM Invoice WHERE strftime('%Y', InvoiceDate) = '2009'",
    ),
    (
        "2009년에 발행된 청구서는 몇 건인가요?",
        "SELECT COUNT(*) FROM Invoice WHERE strftime('%Y', InvoiceDate) = '2009'",
        "SELECT COUNT(*) FROM Invoice WHERE InvoiceDate > '2009-01-01'",
    ),
    (
        "직함이 'Sales Support Agent'인 직원의 이름과 성은?",
        "SELECT FirstName, LastName FROM Employee WHERE Title = 'Sales Support Agent'",
        "SELECT FirstName, LastName FROM Employee",
    ),
    (
        "가격이 0.99달러보다 비싼 트랙은 몇 곡인가요?",
        "SELECT COUNT(*) FROM Track WHERE UnitPrice > 0.99",
        "SELECT COUNT(*) FROM Track WHERE UnitPrice >= 0.99",
    ),
    (
        "미디어 타입별 트랙 수를 알려 주세요.",
        "SELECT m.Name, COUNT(*) FROM Track AS t JOIN MediaType AS m ON t.MediaTypeId = m.MediaTypeId GROUP BY m.Name",
        "SELECT m.Name, COUNT(*) FROM Track AS t JOIN Genre AS m ON t.GenreId = m.GenreId GROUP BY m.Name",
    ),
    (
        "장르별 트랙 수를 알려 주세요.",
        "SELECT g.Name, COUNT(*) FROM Track AS t JOIN Genre AS g ON t.GenreId = g.GenreId GROUP BY g.Name",
        "SELECT g.Name, COUNT(*) FROM Track AS t JOIN Genre AS g ON t.GenreId = g.GenreId",
    ),
    (
        "트랙이 100곡보다 많은 장르의 이름은?",
        "SELECT g.Name FROM Track AS t JOIN Genre AS g ON t.GenreId = g.GenreId GROUP BY g.Name HAVING COUNT(*) > 100",
        "SELECT g.Name FROM Track AS t JOIN Genre AS g ON t.GenreId = g.GenreId GROUP BY g.Name",
    ),
    (
        "캐나다나 미국에 사는 고객은 몇 명인가요?",
        "SELECT COUNT(*) FROM Customer WHERE Country = 'Canada' OR Country = 'USA'",
        "SELECT COUNT(*) FROM Customer WHERE Country = 'Canada' AND Country = 'USA'",
    ),
    (
        "제목에 'Love'가 들어간 트랙은 몇 곡인가요?",
        "SELECT COUNT(*) FROM Track WHERE Name LIKE '%Love%'",
        "SELECT COUNT(*) FROM Track WHERE Name = 'Love'",
    ),
    (
        "Jane Peacock이 담당하는 고객은 몇 명인가요?",
        "SELECT COUNT(*) FROM Customer AS c JOIN Employee AS e ON c.SupportRepId = e.EmployeeId "
        "WHERE e.FirstName = 'Jane' AND e.LastName = 'Peacock'",
        "SELECT COUNT(*) FROM Customer AS c JOIN Employee AS e ON c.CustomerId = e.EmployeeId "
        "WHERE e.FirstName = 'Jane' AND e.LastName = 'Peacock'",
    ),
    (
        "이름이 'Music'인 플레이리스트에 담긴 트랙은 몇 곡인가요?",
        "SELECT COUNT(*) FROM PlaylistTrack AS pt JOIN Playlist AS p ON pt.PlaylistId = p.PlaylistId "
        "WHERE p.Name = 'Music'",
        "SELECT COUNT(*) FROM Playlist WHERE Name = 'Music'",
    ),
    (
        "청구서 한 건의 평균 금액은 얼마인가요?",
        "SELECT AVG(Total) FROM Invoice",
        "SELECT SUM(Total) FROM Invoice",
    ),
    (
        "고객이 사는 나라의 목록을 중복 없이 보여 주세요.",
        "SELECT DISTINCT Country FROM Customer",
        "SELECT Country FROM Customer",
    ),
    (
        "아티스트 AC/DC의 앨범 제목은?",
        "SELECT al.Title FROM Album AS al JOIN Artist AS ar ON al.ArtistId = ar.ArtistId WHERE ar.Name = 'AC/DC'",
        "SELECT al.Title FROM Album AS al JOIN Artist AS ar ON al.ArtistId = ar.ArtistId",
    ),
]

# (question, gold SQL, right prediction written differently)
RIGHT = [
    ("트랙은 모두 몇 곡인가요?", "SELECT COUNT(*) FROM Track", "SELECT COUNT(TrackId) FROM Track"),
    (
        "록(Rock) 장르의 트랙은 몇 곡인가요?",
        "SELECT COUNT(*) FROM Track AS t JOIN Genre AS g ON t.GenreId = g.GenreId WHERE g.Name = 'Rock'",
        "SELECT COUNT(*) FROM Track WHERE GenreId IN (SELECT GenreId FROM Genre WHERE Name = 'Rock')",
    ),
    (
        "앨범 'Let There Be Rock'을 낸 아티스트의 이름은?",
        "SELECT ar.Name FROM Album AS al JOIN Artist AS ar ON al.ArtistId = ar.ArtistId "
        "WHERE al.Title = 'Let There Be Rock'",
        "SELECT Artist.Name FROM Artist JOIN Album ON Artist.ArtistId = Album.ArtistId "
        "WHERE Album.Title = 'Let There Be Rock'",
    ),
    (
        "앨범이 하나도 없는 아티스트는 몇 명인가요?",
        "SELECT COUNT(*) FROM Artist WHERE ArtistId NOT IN (SELECT ArtistId FROM Album)",
        "SELECT COUNT(*) FROM Artist AS a LEFT JOIN Album AS al ON a.ArtistId = al.ArtistId WHERE al.AlbumId IS NULL",
    ),
    (
        "가장 긴 트랙의 이름은?",
        "SELECT Name FROM Track ORDER BY Milliseconds DESC LIMIT 1",
        "SELECT Name FROM Track WHERE Milliseconds = (SELECT MAX(Milliseconds) FROM Track)",
    ),
    (
        "가격이 1달러에서 2달러 사이인 트랙은 몇 곡인가요?",
        "SELECT COUNT(*) FROM Track WHERE UnitPrice BETWEEN 1 AND 2",
        "SELECT COUNT(*) FROM Track WHERE UnitPrice >= 1 AND UnitPrice <= 2",
    ),
    (
        "장르별 트랙 수를 알려 주세요.",
        "SELECT g.Name, COUNT(*) FROM Track AS t JOIN Genre AS g ON t.GenreId = g.GenreId GROUP BY g.Name",
        "SELECT COUNT(*) AS tracks, g.Name FROM Genre AS g JOIN Track AS t ON g.GenreId = t.GenreId GROUP BY g.GenreId",
    ),
    (
        "2009년에 발행된 청구서는 몇 건인가요?",
        "SELECT COUNT(*) FROM Invoice WHERE strftime('%Y', InvoiceDate) = '2009'",
        "SELECT COUNT(*) FROM Invoice WHERE InvoiceDate LIKE '2009%'",
    ),
    (
        "캐나다나 미국에 사는 고객은 몇 명인가요?",
        "SELECT COUNT(*) FROM Customer WHERE Country = 'Canada' OR Country = 'USA'",
        "SELECT COUNT(*) FROM Customer WHERE Country IN ('USA', 'Canada')",
    ),
    (
        "트랙이 100곡보다 많은 장르의 이름은?",
        "SELECT g.Name FROM Track AS t JOIN Genre AS g ON t.GenreId = g.GenreId GROUP BY g.Name HAVING COUNT(*) > 100",
        "SELECT Name FROM (SELECT g.Name AS Name, COUNT(*) AS n FROM Genre AS g JOIN Track AS t "
        "ON t.GenreId = g.GenreId GROUP BY g.Name) WHERE n > 100",
    ),
    (
        "재즈(Jazz) 트랙의 이름을 알려 주세요.",
        "SELECT t.Name FROM Track AS t JOIN Genre AS g ON t.GenreId = g.GenreId WHERE g.Name = 'Jazz'",
        "WITH jazz AS (SELECT GenreId FROM Genre WHERE Name = 'Jazz') "
        "SELECT Track.Name FROM Track JOIN jazz ON Track.GenreId = jazz.GenreId",
    ),
    (
        "청구서 한 건의 평균 금액은 얼마인가요?",
        "SELECT AVG(Total) FROM Invoice",
        "SELECT SUM(Total) / COUNT(*) FROM Invoice",
    ),
    (
        "고객이 사는 나라의 목록을 중복 없이 보여 주세요.",
        "SELECT DISTINCT Country FROM Customer",
        "SELECT Country FROM Customer GROUP BY Country",
    ),
    (
        "청구서가 한 건이라도 있는 고객은 몇 명인가요?",
        "SELECT COUNT(DISTINCT CustomerId) FROM Invoice",
        "SELECT COUNT(*) FROM Customer AS c "
        "WHERE EXISTS (SELECT 1 FROM Invoice AS i WHERE i.CustomerId = c.CustomerId)",
    ),
    (
        "아티스트 AC/DC의 앨범 제목은?",
        "SELECT al.Title FROM Album AS al JOIN Artist AS ar ON al.ArtistId = ar.ArtistId WHERE ar.Name = 'AC/DC'",
        "SELECT Album.Title FROM Album, Artist WHERE Album.ArtistId = Artist.ArtistId AND Artist.Name = 'AC/DC'",
    ),
    (
        "제목에 'Love'가 들어간 트랙은 몇 곡인가요?",
        "SELECT COUNT(*) FROM Track WHERE Name LIKE '%Love%'",
        "SELECT COUNT(*) FROM Track WHERE instr(lower(Name), 'love') > 0",
    ),
    (
        "Nancy Edwards에게 직접 보고하는 직원의 이름은?",
        "SELECT e.FirstName, e.LastName FROM Employee AS e JOIN Employee AS m ON e.ReportsTo = m.EmployeeId "
        "WHERE m.FirstName = 'Nancy' AND m.LastName = 'Edwards'",
        "SELECT FirstName, LastName FROM Employee WHERE ReportsTo = "
        "(SELECT EmployeeId FROM Employee WHERE FirstName = 'Nancy' AND LastName = 'Edwards')",
    ),
    (
        "가장 긴 트랙의 길이는 몇 분인가요?",
        "SELECT MAX(Milliseconds) / 60000.0 FROM Track",
        "SELECT MAX(Milliseconds) / 1000.0 / 60 FROM Track",
    ),
    (
        "가장 큰 청구서 금액은 얼마인가요?",
        "SELECT MAX(Total) FROM Invoice",
        "SELECT Total FROM Invoice ORDER BY Total DESC LIMIT 1",
    ),
    (
        "Jane Peacock이 담당하는 고객은 몇 명인가요?",
        "SELECT COUNT(*) FROM Customer AS c JOIN Employee AS e ON c.SupportRepId = e.EmployeeId "
        "WHERE e.FirstName = 'Jane' AND e.LastName = 'Peacock'",
        "SELECT COUNT(CustomerId) FROM Customer WHERE SupportRepId IN "
        "(SELECT EmployeeId FROM Employee WHERE LastName = 'Peacock')",
    ),
]


def _judge_patiently(question: str, ddl: str, gold_sql: str, pred_sql: str, role: str):
    """One judge call; a request that timed out on the busy machine (the client waits 120 s) is asked again once,
    since a timeout says nothing about the judge."""
    from engine.serving.client import ModelServerError
    from engine.text2sql.evaluation import judge

    try:
        return judge(question, ddl, gold_sql, pred_sql, role=role)
    except ModelServerError as exc:
        if exc.code != "server.connection_lost":
            raise
        print(f"[{BENCH}] retrying after: {exc}", file=sys.stderr, flush=True)
        return judge(question, ddl, gold_sql, pred_sql, role=role)


def measure(role: str = "instruct") -> dict:
    """Execute every pair, ask the judge, and count. Returns the summary and one record per pair."""
    from engine.text2sql.databases import chinook
    from engine.text2sql.evaluation import exact_set_match, execution_match, gold_is_ordered
    from engine.text2sql.executor import run_sql

    db = chinook()
    records = []
    for kind, pairs in (("wrong", WRONG), ("right", RIGHT)):
        for k, (question, gold_sql, pred_sql) in enumerate(pairs):
            print(f"[{BENCH}] {kind} {k + 1}/{len(pairs)}", file=sys.stderr, flush=True)
            gold, pred = run_sql(db, gold_sql), run_sql(db, pred_sql)
            ex = execution_match(pred, gold, gold_is_ordered(gold_sql))
            verdict = _judge_patiently(question, db.ddl, gold_sql, pred_sql, role)
            records.append(
                {
                    "kind": kind,
                    "question": question,
                    "gold_sql": gold_sql,
                    "pred_sql": pred_sql,
                    "gold_ok": gold.ok,
                    "ex": ex,
                    "em": exact_set_match(gold_sql, pred_sql, db),
                    "judge": verdict.yes,
                    "judge_raw": verdict.raw,
                    "judge_seconds": round(verdict.seconds, 3),
                }
            )
    wrong = [r for r in records if r["kind"] == "wrong"]
    right = [r for r in records if r["kind"] == "right"]
    return {
        "role": role,
        "pairs_behaving": sum(r["gold_ok"] and r["ex"] == (r["kind"] == "right") for r in records),
        "wrong": len(wrong),
        "right": len(right),
        "false_accepts": sum(r["judge"] is True for r in wrong),
        "false_rejects": sum(r["judge"] is False for r in right),
        "unusable": sum(r["judge"] is None for r in records),
        "agreement_with_ex": sum(r["judge"] == r["ex"] for r in records) / len(records),
        "em_on_right": sum(bool(r["em"]) for r in right) / len(right),
        "em_on_wrong": sum(bool(r["em"]) for r in wrong) / len(wrong),
        "median_judge_seconds": statistics.median(r["judge_seconds"] for r in records),
        "records": records,
    }


def run() -> list[dict]:
    start = time.perf_counter()
    m = measure()
    return to_rows(m, time.perf_counter() - start)


def to_rows(m: dict, seconds: float) -> list[dict]:
    n = len(m["records"])
    extra = {"reference": "execution match on Chinook"}
    return [
        bench_row(
            BENCH,
            f"pairs whose execution result behaves as built (of {n})",
            m["pairs_behaving"],
            "pairs",
            goal=f"= {n}",
            ok=m["pairs_behaving"] == n,
        ),
        bench_row(
            BENCH,
            f"judge false accept rate (yes on {m['wrong']} wrong pairs)",
            m["false_accepts"] / m["wrong"],
            "fraction",
            **extra,
            pairs=[r["pred_sql"] for r in m["records"] if r["kind"] == "wrong" and r["judge"] is True],
        ),
        bench_row(
            BENCH,
            f"judge false reject rate (no on {m['right']} right pairs)",
            m["false_rejects"] / m["right"],
            "fraction",
            **extra,
            pairs=[r["pred_sql"] for r in m["records"] if r["kind"] == "right" and r["judge"] is False],
        ),
        bench_row(BENCH, "judge agreement with execution match", m["agreement_with_ex"], "fraction", **extra),
        bench_row(BENCH, "judge unusable answers", m["unusable"], "answers"),
        bench_row(BENCH, "Spider exact set match on the right pairs", m["em_on_right"], "fraction"),
        bench_row(BENCH, "Spider exact set match on the wrong pairs", m["em_on_wrong"], "fraction"),
        bench_row(BENCH, "judge median seconds per pair", m["median_judge_seconds"], "s"),
        bench_row(BENCH, "total seconds", seconds, "s", digits=1),
    ]


if __name__ == "__main__":
    result = measure()
    for record in result.pop("records"):
        print(json.dumps(record, ensure_ascii=False), flush=True)
    print(json.dumps(result, ensure_ascii=False), flush=True)
