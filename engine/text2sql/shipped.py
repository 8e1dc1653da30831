"""Chapter 6's shipped results (assets/precomputed/ch06_*.json, read with `engine.core.load_precomputed`), each made
once by `python -m engine text2sql-precompute --only <name>` on the reference machine:

- `ch06_answer`: the page's default question through the default strategy and through zero-shot: SQL, rows, every
  attempt, the examples and linked tables, the prompt as sent.
- `ch06_strategies`: every strategy's execution accuracy on the 60 held-out Korean Chinook questions (per
  difficulty, error codes, median seconds), and on a fixed Spider dev sample (EX and exact-set match).

Why ship them: each needs the model server, and a strategy table is ~10–30 minutes of generation on 2 cores.
"""

from __future__ import annotations

from dataclasses import asdict

from engine.core.progress import ProgressFn, null_progress

SECTIONS = ("ch06_answer", "ch06_strategies")
QUESTION = "장르가 Rock인 트랙은 몇 개인가요?"  # the page's default question (ui/strings/06_text2sql.yaml)
ROWS_SHOWN = 20
SPIDER_SAMPLE = 100  # Spider dev questions per strategy (the first 100, a fixed sample over several schemas)


def prediction_data(pred) -> dict:
    """A Prediction as the page draws it (plain JSON)."""
    result = pred.result
    return {
        "strategy": pred.strategy,
        "sql": pred.sql,
        "columns": list(result.columns) if result else [],
        "rows": [list(r) for r in (result.rows[:ROWS_SHOWN] if result else [])],
        "error": result.error if result else None,
        "detail": result.detail if result else "",
        "seconds": round(pred.seconds, 3),
        "attempts": [asdict(a) for a in pred.attempts],
        "examples": [asdict(e) for e in pred.examples],
        "tables": list(pred.tables),
        "messages": pred.messages,
        "votes": pred.votes,
    }


def answer_data(progress: ProgressFn = null_progress) -> dict:
    from engine.serving.client import model_name, resolve_endpoint
    from engine.text2sql.databases import chinook
    from engine.text2sql.strategies import DEFAULT_STRATEGY, default_role, predict

    db, role = chinook(), default_role()
    resolve_endpoint(progress, role)  # the server's start-up is not the answer's time
    progress(0.0, DEFAULT_STRATEGY)
    best = predict(db, QUESTION, DEFAULT_STRATEGY, role=role)
    progress(0.5, "zero-shot")
    zero = predict(db, QUESTION, "zero-shot", role=role)
    progress(1.0, "done")
    return {
        "question": QUESTION,
        "model": model_name(role),
        **prediction_data(best),
        "zero_shot": prediction_data(zero),
    }


def strategy_row(report, name: str, model: str) -> dict:
    """One strategy's pass over the held-out set, as the page's table reads it."""
    return {
        "strategy": name,
        "model": model,
        "ex": report.ex,
        "median_s": report.median_seconds,
        "by_difficulty": {d: [n, ex] for d, (n, ex) in report.by_difficulty().items()},
        "errors": dict(report.errors()),
    }


def row_key(row: dict, default_model: str) -> str:
    """Rows are one (strategy, model) each; rows written before the model was recorded are the file's model."""
    return f"{row['strategy']} @ {row.get('model') or default_model}"


def strategies_data(
    strategies: list[str] | None = None,
    spider: bool = True,
    progress: ProgressFn = null_progress,
    spider_limit: int = SPIDER_SAMPLE,
    spider_strategies: tuple[str, ...] = ("zero-shot", "schema-linking", "few-shot+linking+repair"),
    role: str | None = None,
) -> dict:
    from engine.serving.client import model_name
    from engine.text2sql.pipeline import evaluate_set
    from engine.text2sql.strategies import STRATEGIES, default_role

    role = role or default_role()
    model = model_name(role)
    names = strategies or list(STRATEGIES)
    rows, spider_rows, reports = [], [], {}
    for i, name in enumerate(names):
        report = evaluate_set(
            "chinook-test", name, role=role, progress=lambda f, m, i=i: progress((i + f) / len(names) / 2, m)
        )
        reports[f"{name} @ {model}"] = report.to_json()["rows"]
        rows.append(strategy_row(report, name, model))
    if spider:
        for i, name in enumerate(n for n in names if n in spider_strategies):
            report = evaluate_set(
                "spider-dev",
                name,
                role=role,
                limit=spider_limit,
                progress=lambda f, m, i=i: progress(0.5 + (i + f) / 6, m),
            )
            row = {"strategy": name, "model": model, "ex": report.ex, "em": report.em}
            spider_rows.append({**row, "median_s": report.median_seconds, "n": len(report.rows)})
    return {
        "set": "chinook-test",
        "n": len(next(iter(reports.values()))) if reports else 0,
        "model": model,  # the default pipeline's model; each row says its own
        "rows": rows,
        "questions": reports,
        "spider": {"n": spider_limit, "rows": spider_rows},
    }


def add_strategies(names: list[str], progress: ProgressFn = null_progress, role: str | None = None) -> dict:
    """The shipped comparison with `names` measured now on `role` and added (or replaced: one row per strategy and
    model); the other rows stay as they were measured (each row keeps the commit it was measured at, so the page can
    say which run a number comes from)."""
    import subprocess

    from engine.core.precomputed import load_precomputed
    from engine.serving.client import model_name
    from engine.text2sql.strategies import default_role

    old = load_precomputed("ch06_strategies")
    if old is None:
        return strategies_data(names, progress=progress, role=role)
    base = old.data
    new = strategies_data(
        names, progress=progress, spider_limit=base["spider"]["n"], spider_strategies=tuple(names), role=role
    )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    for row in [*new["rows"], *new["spider"]["rows"]]:
        row["commit"] = commit or None
    fresh = {row_key(r, new["model"]) for r in new["rows"]}
    fresh_spider = {row_key(r, new["model"]) for r in new["spider"]["rows"]}
    keep = [{"model": base["model"], **r} for r in base["rows"] if row_key(r, base["model"]) not in fresh]
    keep_spider = [
        {"model": base["model"], **r} for r in base["spider"]["rows"] if row_key(r, base["model"]) not in fresh_spider
    ]
    questions = {k: v for k, v in base["questions"].items() if k not in new["questions"]} | new["questions"]
    return {
        **base,
        "model": model_name(default_role()),  # the default pipeline's model, whichever model was added now
        "rows": keep + new["rows"],
        "questions": questions,
        "spider": {"n": base["spider"]["n"], "rows": keep_spider + new["spider"]["rows"]},
        "note": "each row is one full pass over the 60 test questions with the model it names; rows with a commit "
        "were measured at it, the others at eb20c6a (same questions, same executor)",
    }


def make(name: str, progress: ProgressFn = null_progress, add: list[str] | None = None, role: str | None = None):
    from engine.core.precomputed import save_precomputed

    if name == "ch06_answer":
        data = answer_data(progress)
    elif name == "ch06_strategies":
        data = add_strategies(add, progress, role) if add else strategies_data(progress=progress, role=role)
    else:
        raise ValueError(name)
    command = f"python -m engine text2sql-precompute --only {name}" + (f" --add {','.join(add)}" if add else "")
    command += f" --model {role}" if role and name == "ch06_strategies" else ""
    return save_precomputed(name, data, command)
