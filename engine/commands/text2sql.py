"""Chapter 6 commands: `text2sql` (Korean questions → SQL → rows, one JSON object per question) and
`text2sql-eval` (execution accuracy of a strategy on the held-out Chinook questions or on Spider dev).

    python -m engine text2sql --db chinook --json --queries-file questions.txt
    python -m engine text2sql --db chinook --question "장르가 Rock인 트랙은 몇 개인가요?"
    python -m engine text2sql --db my.sqlite --strategy zero-shot --question "..."
    python -m engine text2sql-eval --set chinook-test --strategy few-shot+linking+repair [--judge] [--limit N]
    python -m engine text2sql-eval --set spider-dev --limit 100 --strategy zero-shot
    python -m engine text2sql-precompute [--only ch06_answer,ch06_strategies]

`--queries-file`: one question per line (blank lines and lines starting with # are skipped). Each line of output is
`{"question", "sql", "rows" (the first 20), "columns", "error" (a code or null), "detail", "seconds", "strategy",
"attempts"}`. A question the engine refuses (empty, too long) gets a line with `error` and the run goes on; the exit
code is then 1. `--db` is `chinook`, `spider/<db_id>`, or the path of a SQLite file (opened read-only, never
modified). `--model` is a serving role (`instruct`, default; `instruct-large`; `chat`) or the path of a LoRA adapter
or model directory trained by `text2sql-finetune` (run in-process).
"""

from __future__ import annotations

from pathlib import Path

from engine.commands._common import print_obj
from engine.core.errors import UserError

ROWS_SHOWN = 20


def _database(name: str):
    from engine.text2sql import chinook, from_path, spider_database

    if name == "chinook":
        return chinook()
    if name.startswith("spider/"):
        return spider_database(name.split("/", 1)[1])
    return from_path(Path(name))


def _questions(args) -> list[str]:
    if args.question:
        return [args.question]
    text = Path(args.queries_file).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def cmd_text2sql(args) -> int:
    from engine.text2sql import predict

    db = _database(args.db)
    failed = 0
    for question in _questions(args):
        try:
            pred = predict(db, question, args.strategy, role=args.model)
        except UserError as exc:  # one bad line does not stop the others
            failed += 1
            print_obj({"question": question, "error": exc.code, "message": str(exc)}, True)
            continue
        result = pred.result
        row = {
            "question": question,
            "sql": pred.sql,
            "columns": result.columns if result else [],
            "rows": [list(r) for r in (result.rows[:ROWS_SHOWN] if result else [])],
            "error": result.error if result else "text2sql.exec.empty",
            "detail": result.detail if result else "",
            "seconds": round(pred.seconds, 3),
            "strategy": pred.strategy,
            "attempts": len(pred.attempts),
        }
        if args.json:
            print_obj(row, True)
        else:
            print(f"{question}\n  {pred.sql or '(no SQL)'}")
            if result and result.ok:
                print(f"  {result.columns}")
                for r in result.rows[:ROWS_SHOWN]:
                    print(f"  {list(r)}")
            else:
                print(f"  error: {row['error']} {row['detail']}")
            print(f"  {pred.seconds:.1f}s, {len(pred.attempts)} attempt(s), {pred.strategy}")
    return 1 if failed else 0


def cmd_text2sql_eval(args) -> int:
    from engine.core.progress import cli_progress
    from engine.text2sql import evaluate_set

    report = evaluate_set(
        args.set, args.strategy, role=args.model, limit=args.limit, with_judge=args.judge, progress=cli_progress
    )
    summary = report.to_json()
    if args.json:
        print_obj(summary, True)
    else:
        print(
            f"{args.set} · {args.strategy} · {args.model}: EX {report.ex:.3f} over {len(report.rows)} questions, "
            f"median {report.median_seconds:.2f}s"
        )
        for level, (n, ex) in report.by_difficulty().items():
            print(f"  {level:7s} n={n:3d} EX {ex:.3f}")
        if args.judge:
            print(f"  judge agreement {report.judge_agreement:.3f}, false accepts {report.false_accepts}")
    if args.out:
        Path(args.out).write_text(__import__("json").dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


def register(sub) -> None:
    from engine.text2sql.strategies import DEFAULT_STRATEGY, STRATEGIES

    p = sub.add_parser("text2sql", help="ch.6: Korean questions -> SQL -> rows (read-only)")
    p.add_argument("--db", default="chinook", help="chinook, spider/<db_id>, or a SQLite file path")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--question")
    group.add_argument("--queries-file", help="one question per line")
    p.add_argument("--strategy", default=DEFAULT_STRATEGY, choices=list(STRATEGIES))
    p.add_argument("--model", default="instruct", help="a serving role, or a fine-tuned model/adapter directory")
    p.add_argument("--json", action="store_true", help="one JSON object per question")
    p.set_defaults(func=cmd_text2sql)

    e = sub.add_parser("text2sql-eval", help="ch.6: execution accuracy of a strategy on a question set")
    e.add_argument("--set", default="chinook-test", choices=["chinook-test", "chinook-dev", "spider-dev"])
    e.add_argument("--strategy", default=DEFAULT_STRATEGY, choices=list(STRATEGIES))
    e.add_argument("--model", default="instruct")
    e.add_argument("--limit", type=int, default=None)
    e.add_argument("--judge", action="store_true", help="also ask the LLM judge (book 6.2) and measure agreement")
    e.add_argument("--json", action="store_true")
    e.add_argument("--out", help="write the report as JSON here")
    e.set_defaults(func=cmd_text2sql_eval)
    register_precompute(sub)


def cmd_text2sql_precompute(args) -> int:
    from engine.core.progress import cli_progress
    from engine.text2sql.shipped import SECTIONS, make

    for name in args.only.split(",") if args.only else SECTIONS:
        made = make(name, cli_progress)
        print(f"wrote {name} ({made.made}, {made.machine})")
    return 0


def register_precompute(sub) -> None:
    p = sub.add_parser("text2sql-precompute", help="ch.6: the page's shipped results (assets/precomputed/ch06_*)")
    p.add_argument("--only", help="comma-separated: ch06_answer,ch06_strategies")
    p.set_defaults(func=cmd_text2sql_precompute)
