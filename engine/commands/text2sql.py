"""Chapter 6 commands: `text2sql` (Korean questions → SQL → rows, one JSON object per question) and
`text2sql-eval` (execution accuracy of a strategy on the held-out Chinook questions or on Spider dev).

    python -m engine text2sql --db chinook --json --queries-file questions.txt
    python -m engine text2sql --db chinook --question "장르가 Rock인 트랙은 몇 개인가요?"
    python -m engine text2sql --db my.sqlite --strategy zero-shot --question "..."
    python -m engine text2sql-eval --set chinook-test --strategy few-shot+linking+repair [--judge] [--limit N]
    python -m engine text2sql-eval --set spider-dev --limit 100 --strategy zero-shot
    python -m engine text2sql-precompute [--only ch06_answer,ch06_strategies]
    python -m engine text2sql-finetune --model chat --steps 20 [--out DIR] [--track] --json

`--queries-file`: one question per line (blank lines and lines starting with # are skipped). Each line of output is
`{"question", "sql", "rows" (the first 20), "columns", "error" (a code or null), "detail", "seconds", "strategy",
"attempts"}`. A question the engine refuses (empty, too long) gets a line with `error` and the run goes on; the exit
code is then 1. `--db` is `chinook`, `spider/<db_id>`, or the path of a SQLite file (opened read-only, never
modified). `--model` is a serving role (`instruct`, default; `instruct-large`; `chat`) or the path of a LoRA adapter
or model directory trained by `text2sql-finetune` (run in-process), or a registered model, e.g.
`models:/text2sql-chat@champion` (chapter 13's registry: the version that alias points at now).

`text2sql-finetune` is the page's LoRA run from the command line (book 6.3: the shipped synthetic pairs with
schema-linked DDL, engine.text2sql.finetune.train_lora): one JSON line per step, then a summary; `--out` keeps the
adapter; `--track` logs the run to MLflow (llmlab-ch06, the adapter as the artifact `adapter`, ready for
`python -m engine register-model --run <run_id> --name text2sql-chat`) and adds `run_id` and `tracking_uri`.
"""

from __future__ import annotations

import sys
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
    from engine.text2sql.strategies import default_role

    args.model = args.model or default_role()
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
    p.add_argument(
        "--model",
        default=None,
        help="a serving role, a fine-tuned model/adapter directory, or a registered model (models:/NAME@champion); "
        "default: instruct-large (Qwen2.5-Coder-1.5B) where installed, else instruct",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per question")
    p.set_defaults(func=cmd_text2sql)

    e = sub.add_parser("text2sql-eval", help="ch.6: execution accuracy of a strategy on a question set")
    e.add_argument("--set", default="chinook-test", choices=["chinook-test", "chinook-dev", "spider-dev"])
    e.add_argument("--strategy", default=DEFAULT_STRATEGY, choices=list(STRATEGIES))
    e.add_argument("--model", default=None, help="as for text2sql (default: instruct-large where installed)")
    e.add_argument("--limit", type=int, default=None)
    e.add_argument("--judge", action="store_true", help="also ask the LLM judge (book 6.2) and measure agreement")
    e.add_argument("--json", action="store_true")
    e.add_argument("--out", help="write the report as JSON here")
    e.set_defaults(func=cmd_text2sql_eval)
    register_precompute(sub)
    register_finetune(sub)


def cmd_text2sql_finetune(args) -> int:
    import tempfile
    from dataclasses import asdict

    from engine.commands._common import progress_for
    from engine.core.textinput import InputError
    from engine.llmops.tracking import dataset_version, track_run
    from engine.models.registry import ROLES
    from engine.text2sql import chinook, shipped_synthetic
    from engine.text2sql.finetune import FinetuneSettings, linked_ddl, save_adapter, train_lora

    given = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "lora_r": args.lora_r}
    given |= {"lora_alpha": args.lora_alpha, "seed": args.seed}
    settings = FinetuneSettings(role=args.model, **{k: v for k, v in given.items() if v is not None})
    settings.validate()
    if args.pairs < 0:
        raise InputError("input.too_small", name="--pairs", limit=0, value=args.pairs)
    db = chinook()
    pairs = shipped_synthetic()[: args.pairs] if args.pairs else shipped_synthetic()
    triples = [(linked_ddl(db, p.sql), p.question, p.sql) for p in pairs]  # as the page's live run
    params = asdict(settings) | {"pairs": len(triples)}
    name = f"text2sql-finetune {args.model}"
    tracked = track_run("ch06", name, params, enabled=args.track, command="python -m engine text2sql-finetune")

    def emit(row: dict) -> None:
        if args.json:
            print_obj({k: v for k, v in row.items() if isinstance(v, int | float | str)} | tracked.fields(), True)

    with tracked, tempfile.TemporaryDirectory(prefix="llmlab-t2s-adapter-") as tmp:
        if args.track:
            source = "assets/text2sql/chinook_synthetic.jsonl, finetune.linked_ddl(db, sql)"
            tracked.log_dataset(dataset_version("chinook_synthetic", triples, source))
        result = train_lora(triples, settings, progress_for(args.json), on_row=tracked.tee(emit))
        out = Path(args.out) if args.out else Path(tmp) / "adapter"
        if args.out or args.track:
            save_adapter(result.model, out, ROLES[args.model].hub_id)
        if args.track:
            tracked.set_status(result.log.status)
            tracked.log_artifacts(out, "adapter")
    summary = {
        "kind": "summary",
        "model": args.model,
        "steps": len(result.losses),
        "loss_first": result.losses[0] if result.losses else None,
        "loss_last": result.losses[-1] if result.losses else None,
        "trainable": result.trainable,
        "total": result.total,
        "examples": result.examples,
        "seconds": round(result.seconds, 2),
        "status": result.log.status,
        "adapter_dir": str(Path(args.out).absolute()) if args.out else None,
        **tracked.fields(),
    }
    print_obj(summary, args.json)
    if result.log.message:
        print(result.log.message, file=sys.stderr)
    if tracked.warning_message:
        print(f"tracking: {tracked.warning_message}", file=sys.stderr)
    return 1 if result.log.status == "diverged" else 0


def register_finetune(sub) -> None:
    # defaults None: FinetuneSettings' own (its module imports torch, too slow for building the parser)
    f = sub.add_parser("text2sql-finetune", help="ch.6: LoRA SFT of a small model on the synthetic pairs (book 6.3)")
    f.add_argument("--model", default="chat", help="the base model role: chat (default), instruct, base-ko")
    f.add_argument("--steps", type=int, default=None, help="optimizer steps (default 20)")
    f.add_argument("--batch", type=int, default=None, help="examples per step (default 2)")
    f.add_argument("--lr", type=float, default=None, help="learning rate (default 2e-3)")
    f.add_argument("--lora-r", type=int, default=None, help="LoRA rank (default 16)")
    f.add_argument("--lora-alpha", type=int, default=None, help="LoRA alpha (default 32)")
    f.add_argument("--seed", type=int, default=None, help="default 0")
    f.add_argument("--pairs", type=int, default=0, help="use the first N shipped pairs (default all)")
    f.add_argument("--out", default=None, help="save the adapter in this folder")
    f.add_argument("--json", action="store_true", help="one JSON object per step, then a summary")
    f.add_argument("--track", action="store_true", help="log the run to MLflow (llmlab-ch06); adds run_id to the JSON")
    f.set_defaults(func=cmd_text2sql_finetune)


def cmd_text2sql_precompute(args) -> int:
    from engine.core.progress import cli_progress
    from engine.text2sql.shipped import SECTIONS, make

    for name in args.only.split(",") if args.only else SECTIONS:
        add = args.add.split(",") if args.add and name == "ch06_strategies" else None
        made = make(name, cli_progress, add=add, role=args.model)
        print(f"wrote {name} ({made.made}, {made.machine})")
    return 0


def register_precompute(sub) -> None:
    p = sub.add_parser("text2sql-precompute", help="ch.6: the page's shipped results (assets/precomputed/ch06_*)")
    p.add_argument("--only", help="comma-separated: ch06_answer,ch06_strategies")
    p.add_argument("--add", help="ch06_strategies: measure only these strategies and add them to the shipped rows")
    p.add_argument("--model", default=None, help="ch06_strategies: the serving role (default: as text2sql)")
    p.set_defaults(func=cmd_text2sql_precompute)
