"""Question sets and one evaluation call for the page, the CLI and the benchmark.

`evaluate_set("chinook-test", "few-shot+linking+repair")` runs a strategy over a set and scores it by execution
(evaluation.evaluate). The Chinook sets are the hand-written Korean questions (questions.py); a test question's own
entry is never among its few-shot examples, because few-shot examples come from the train split only.
Spider dev questions are English over 20 other schemas, with no train split here: few-shot and the Chinook glossary
do nothing there, which is the honest picture of what those levers depend on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError

SETS = ("chinook-test", "chinook-dev", "spider-dev")


def evaluate_set(
    name: str,
    strategy: str,
    *,
    role: str | None = None,
    limit: int | None = None,
    ids: Sequence[str] | None = None,
    with_judge: bool = False,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
    on_row: Callable | None = None,
):
    """Execution accuracy (and optionally the judge) of `strategy` on the set `name`; an EvalReport."""
    from engine.text2sql.databases import chinook
    from engine.text2sql.evaluation import EvalReport, evaluate
    from engine.text2sql.strategies import default_role, predict

    if name not in SETS:
        raise InputError("input.unknown_choice", name="set", value=name, choices=", ".join(SETS))
    role = role or default_role()  # one model for the whole set
    if name.startswith("chinook"):
        from engine.text2sql.questions import chinook_questions

        questions = chinook_questions(name.split("-", 1)[1])
        if ids:
            questions = [q for q in questions if q.id in set(ids)]
        items = [(q.id, q.question, q.sql, q.difficulty) for q in questions[:limit]]
        db = chinook()
        return evaluate(
            lambda question: predict(db, question, strategy, role=role),
            items,
            db,
            with_judge=with_judge,
            progress=progress,
            should_stop=should_stop,
            on_row=on_row,
        )
    from engine.text2sql.spider import spider_database, spider_dev

    examples = spider_dev(limit)
    rows = []
    by_db: dict[str, list] = {}
    for i, ex in enumerate(examples):
        by_db.setdefault(ex.db_id, []).append((f"spider-{i:04d}", ex.question, ex.query, ex.difficulty))
    done = 0
    for db_id, items in by_db.items():
        db = spider_database(db_id)
        part = evaluate(
            lambda question, db=db: predict(db, question, strategy, role=role),
            items,
            db,
            with_judge=with_judge,
            progress=lambda f, m, n=len(items), d=done: progress((d + f * n) / len(examples), m),
            should_stop=should_stop,
            on_row=on_row,
        )
        rows.extend(part.rows)
        done += len(items)
    return EvalReport(rows)
