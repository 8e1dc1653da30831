"""Chapter 6's page helpers (pages/06_text2sql.py): the database choice, the answer view (SQL, rows, attempts,
votes, examples, prompt), the strategy and judge tables, the fine-tuning curves and the read-only demonstration.

An answer is drawn from one plain dict, whichever made it: the shipped run (assets/precomputed/ch06_answer.json,
engine.text2sql.shipped.prediction_data's shape) or a run in this session (`answer_view`), so a fresh page and a
page after a click look the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections import Counter

import streamlit as st

from engine.core import load_precomputed
from engine.text2sql import (
    chinook,
    chinook_questions,
    execution_match,
    filter_pairs,
    open_upload,
    run_sql,
    spider_database,
    spider_db_ids,
    spider_dev,
    template_pairs,
)
from ui import charts
from ui.cache import cached
from ui.errors import translated
from ui.i18n import maybe, t
from ui.layout import precomputed_note

SS = st.session_state
ROWS_SHOWN = 100  # result rows drawn on the page (the executor fetches up to 1,000)
LEVELS = ("easy", "medium", "hard", "extra")  # Spider's hardness levels, easiest first


def slug(name: str) -> str:
    """A strategy name as a strings key part: "few-shot+linking" -> "few_shot_linking"."""
    return name.replace("+", "_").replace("-", "_")


def strategy_label(name: str) -> str:
    return maybe(f"ch06.strategy_{slug(name)}", name)


def level_label(level: str) -> str:
    return maybe(f"ch06.level_{level}", level)


def code_label(code: str | None) -> str:
    """A short label for an executor error code ("text2sql.exec.sql_error" -> "SQL 오류"); "—" for none."""
    if not code:
        return "—"
    return maybe(f"ch06.err_{code.rsplit('.', 1)[-1]}", code)


def shipped_note(name: str):
    """The shipped result `name`, labelled; None when there is none."""
    pre = load_precomputed(name)
    if pre is not None:
        precomputed_note(pre)
    return pre


# -- databases ---------------------------------------------------------------------------------------------------
def database(choice: str, spider_id: str | None):
    """The chosen database (None while an upload is missing or refused: the refusal is shown by the caller)."""
    if choice == "chinook":
        return chinook()
    if choice == "spider":
        return cached(("ch06", "spider", spider_id), lambda p: spider_database(spider_id), t("ch06.building_spider"))
    upload = SS.get("gen_upload")
    if upload is None:
        st.info(t("ch06.upload_first"), icon="🗄️")
        return None
    opened = SS.setdefault("ch06_uploads", {})
    if upload.file_id not in opened:  # validated once per file, not on every rerun
        opened[upload.file_id] = open_upload(upload.name, upload.getvalue())
    SS["ch06_upload_db"] = opened[upload.file_id]
    st.caption(t("ch06.upload_ready", name=upload.name, tables=len(opened[upload.file_id].tables)))
    return opened[upload.file_id]


def database_of(view: dict):
    """The Database an answer view was made on (for the judge: its DDL and execution)."""
    name = view.get("db", "chinook")
    if name == "chinook":
        return chinook()
    if name.startswith("spider/"):
        return spider_database(name.split("/", 1)[1])
    return SS.get("ch06_upload_db")


def row_counts(db) -> dict[str, int]:
    from engine.text2sql.databases import row_counts as counts

    return cached(("ch06", "row_counts", str(db.path)), lambda p: counts(db), t("ch06.counting"))


def show_schema(db) -> None:
    counts = row_counts(db)
    rows = [[name, counts.get(name, 0), len(cols), ", ".join(cols)] for name, cols in db.tables.items()]
    cols = [t("ch06.col_table"), t("ch06.col_rows"), t("ch06.col_n_columns"), t("ch06.col_columns")]
    charts.table(rows, cols)
    st.caption(t("ch06.schema_caption", tables=len(rows), columns=sum(r[2] for r in rows), chars=len(db.ddl)))
    with st.expander(t("ch06.ddl_title")):
        st.code(db.ddl, language="sql")


# -- data ----------------------------------------------------------------------------------------------------------
def split_counts() -> None:
    rows = []
    for split in ("train", "dev", "test"):
        qs = chinook_questions(split)
        by = Counter(q.difficulty for q in qs)
        rows.append([t(f"ch06.split_{split}"), len(qs), *(by.get(level, 0) for level in LEVELS)])
    charts.table(rows, [t("ch06.col_split"), t("ch06.col_n"), *(level_label(level) for level in LEVELS)])


def show_questions(split: str, levels: list[str]) -> None:
    qs = [q for q in chinook_questions(split) if not levels or q.difficulty in levels]
    rows = [[q.id, level_label(q.difficulty), q.question, q.sql, ", ".join(q.tables)] for q in qs]
    cols = [t("ch06.col_id"), t("ch06.col_level"), t("ch06.col_question"), t("ch06.col_gold"), t("ch06.col_tables")]
    charts.table(rows, cols, height=320)
    st.caption(t("ch06.questions_caption", n=len(rows)))


def spider_numbers() -> None:
    examples = spider_dev()
    by = Counter(e.difficulty for e in examples)
    cols = st.columns(2 + len(LEVELS))
    cols[0].metric(t("ch06.spider_questions"), f"{len(examples):,}")
    cols[1].metric(t("ch06.spider_schemas"), len(spider_db_ids()))
    for col, level in zip(cols[2:], LEVELS, strict=True):
        col.metric(level_label(level), f"{by.get(level, 0):,}")
    per_db = Counter(e.db_id for e in examples)
    with st.expander(t("ch06.spider_per_db")):
        charts.table([[db_id, n] for db_id, n in per_db.most_common()], [t("ch06.col_db"), t("ch06.col_n")])


def synthetic_counts(data: dict) -> None:
    """The shipped synthetic set: raw, kept and dropped (by reason) per source."""
    dropped = data.get("dropped") or {}
    reasons = sorted({r for by in dropped.values() for r in by})
    sources = sorted(set(data.get("raw") or {}) | set(data.get("kept") or {}) | set(dropped))
    rows = [
        [
            maybe(f"ch06.source_{s}", s),
            (data.get("raw") or {}).get(s, "—"),
            (data.get("kept") or {}).get(s, 0),
            *(dropped.get(s, {}).get(r, 0) for r in reasons),
        ]
        for s in sources
    ]
    cols = [t("ch06.col_source"), t("ch06.col_raw"), t("ch06.col_kept")]
    cols += [maybe(f"ch06.reason_{r}", r) for r in reasons]
    charts.table(rows, cols)


def pair_rows(items: list[dict]) -> None:
    rows = [
        [
            maybe(f"ch06.source_{p.get('source', '')}", p.get("source", "")),
            p["question"],
            p["sql"],
            maybe(f"ch06.reason_{p['reason']}", p["reason"]) if p.get("reason") else t("ch06.kept"),
            p.get("detail") or "—",
        ]
        for p in items
    ]
    cols = [t("ch06.col_source"), t("ch06.col_question"), t("ch06.col_sql"), t("ch06.col_verdict")]
    charts.table(rows, [*cols, t("ch06.col_detail")])


def live_pairs(n: int, seed: int) -> dict:
    """`n` template pairs over Chinook, filtered by execution with the held-out results excluded."""
    db = chinook()
    held = [q.sql for split in ("dev", "test") for q in chinook_questions(split)]
    pairs = template_pairs(db, n, seed=seed)
    kept, dropped = filter_pairs(pairs, db, held)
    rows = [dataclasses.asdict(p) for p in kept]
    rows += [dataclasses.asdict(d.pair) | {"reason": d.reason, "detail": d.detail} for d in dropped]
    return {"n": n, "kept": len(kept), "dropped": dict(Counter(d.reason for d in dropped)), "rows": rows}


# -- one answer ----------------------------------------------------------------------------------------------------
def answer_view(pred, question: str, db) -> dict:
    """A Prediction in the shipped answer's shape (plus the database it was made on)."""
    from engine.serving.client import model_name
    from engine.text2sql.shipped import prediction_data
    from engine.text2sql.strategies import default_role

    view = prediction_data(pred)
    view["rows"] = [list(r) for r in (pred.result.rows[:ROWS_SHOWN] if pred.result else [])]
    view["truncated"] = bool(pred.result and (pred.result.truncated or len(pred.result.rows) > ROWS_SHOWN))
    return {"question": question, "model": model_name(default_role()), "db": db.name, **view}


def cell(value):
    """A result value as a learner reads it: NULL for SQL's NULL, a size for a blob, floats rounded."""
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return t("ch06.blob", n=len(value))
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else str(value)
    return value


def result_table(columns: list[str], rows: list) -> None:
    """Rows under their SQL column names (made unique: `SELECT a.Name, b.Name` has two "Name")."""
    seen: Counter = Counter()
    names = []
    for c in columns or [f"#{i + 1}" for i in range(len(rows[0]) if rows else 0)]:
        seen[c] += 1
        names.append(c if seen[c] == 1 else f"{c} ({seen[c]})")
    if not names:
        st.caption(t("ch06.no_columns"))
        return
    charts.table([[cell(v) for v in r] for r in rows[:ROWS_SHOWN]], names)


def show_answer(view: dict) -> None:
    st.caption(t("ch06.answer_for", question=view["question"], strategy=strategy_label(view["strategy"])))
    st.code(view["sql"] or "-- " + t("ch06.no_sql"), language="sql")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(t("ch06.result"), t("ch06.ran") if not view.get("error") else code_label(view["error"]))
    m2.metric(t("ch06.n_rows"), len(view.get("rows") or []))
    m3.metric(t("ch06.attempts"), len(view.get("attempts") or []))
    m4.metric(t("ch06.seconds"), f"{view.get('seconds', 0):.1f} s")
    if view.get("error"):
        st.warning(translated(view["error"], {"detail": view.get("detail", "")}) or view["error"], icon="⚠️")
    elif view.get("rows"):
        result_table(view.get("columns") or [], view["rows"])
        if view.get("truncated"):
            st.caption(t("ch06.rows_cut", n=ROWS_SHOWN))
    else:
        st.info(t("ch06.no_rows"))
    st.caption(t("ch06.model_note", model=view.get("model", "—"), db=view.get("db", "chinook")))
    attempts_table(view.get("attempts") or [])
    if view.get("votes"):
        votes_table(view["votes"])
    context(view)


def attempts_table(attempts: list[dict]) -> None:
    if not attempts:
        return
    st.markdown(f"**{t('ch06.attempts_title')}**")
    rows = [
        [
            i + 1,
            maybe(f"ch06.kind_{a['kind']}", a["kind"]),
            a["sql"] or "—",
            code_label(a["error"]),
            a["detail"] or "—",
            a["n_rows"],
        ]
        for i, a in enumerate(attempts)
    ]
    cols = [t("ch06.col_step"), t("ch06.col_kind"), t("ch06.col_sql"), t("ch06.col_error"), t("ch06.col_detail")]
    charts.table(rows, [*cols, t("ch06.col_rows")])
    st.caption(t("ch06.attempts_caption"))


def votes_table(votes: dict) -> None:
    st.markdown(f"**{t('ch06.votes_title')}**")
    rows = [[i + 1, n, sig if len(sig) <= 120 else sig[:120] + "…"] for i, (sig, n) in enumerate(votes.items())]
    charts.table(rows, [t("ch06.col_rank"), t("ch06.col_votes"), t("ch06.col_result_sig")])


def context(view: dict) -> None:
    examples, tables = view.get("examples") or [], view.get("tables") or []
    with st.expander(t("ch06.context_title", examples=len(examples), tables=len(tables))):
        st.caption(t("ch06.linked_tables", tables=", ".join(tables) or "—"))
        if examples:
            charts.table([[e["question"], e["sql"]] for e in examples], [t("ch06.col_question"), t("ch06.col_sql")])
        else:
            st.caption(t("ch06.no_examples"))
    with st.expander(t("ch06.prompt_title", turns=len(view.get("messages") or []))):
        for m in view.get("messages") or []:
            st.caption(m["role"])
            st.code(m["content"], language=None, wrap_lines=True)


# -- strategies and the judge -------------------------------------------------------------------------------------
def model_size(model: str) -> str:
    """ "qwen2.5-coder-1.5b-instruct" -> "1.5B": the part of a model name that tells two sizes of one family apart."""
    m = re.search(r"(\d+(?:\.\d+)?)([bm])(?:-|$)", model.lower())
    return f"{m.group(1)}{m.group(2).upper()}" if m else model


def row_models(data: dict) -> list[str]:
    """The models the shipped rows were measured on, the default pipeline's first."""
    rows = [*data["rows"], *((data.get("spider") or {}).get("rows") or [])]
    return list(dict.fromkeys([data["model"], *(r.get("model") or data["model"] for r in rows)]))


def row_label(row: dict, data: dict) -> str:
    """A strategy, and the model size when the shipped rows were measured on more than one model."""
    label = strategy_label(row["strategy"])
    return f"{label} · {model_size(row.get('model') or data['model'])}" if len(row_models(data)) > 1 else label


def shipped_answers(data: dict, strategy: str) -> tuple[list[dict], str]:
    """The shipped per-question answers of `strategy` and the label to show them under: on the default pipeline's
    model where that run was shipped (the key "strategy @ model"), else on the model of the older rows (the bare
    strategy name, kept from before the rows named their model, when the file had one model)."""
    questions = data.get("questions") or {}
    if rows := questions.get(f"{strategy} @ {data['model']}"):
        return rows, row_label({"strategy": strategy, "model": data["model"]}, data)
    others = (r.get("model") for r in data["rows"] if r["strategy"] == strategy and r.get("model") != data["model"])
    older = next(others, None)
    return questions.get(strategy) or [], row_label({"strategy": strategy, "model": older or data["model"]}, data)


def show_strategies(data: dict) -> None:
    bars = [{"strategy": row_label(r, data), "ex": r["ex"], "set": t("ch06.set_chinook")} for r in data["rows"]]
    spider = (data.get("spider") or {}).get("rows") or []
    bars += [{"strategy": row_label(r, data), "ex": r["ex"], "set": t("ch06.set_spider")} for r in spider]
    labels = {"strategy": t("ch06.axis_strategy"), "ex": t("ch06.axis_ex"), "set": t("ch06.legend_set")}
    fig = charts.grouped_bars(
        bars, "strategy", "ex", "set", t("ch06.strategies_title", model=", ".join(row_models(data))), False, labels
    )
    fig.update_traces(texttemplate="%{y:.2f}")
    fig.update_yaxes(range=[0, 1])
    charts.show(st, fig)
    rows = []
    for r in data["rows"]:
        by = r.get("by_difficulty") or {}
        levels = [f"{by[lv][1]:.2f} ({by[lv][0]})" if lv in by else "—" for lv in LEVELS]
        errors = ", ".join(f"{code_label(c)} {n}" for c, n in (r.get("errors") or {}).items()) or "—"
        rows.append([row_label(r, data), f"{r['ex']:.3f}", *levels, f"{r['median_s']:.1f}", errors])
    cols = [t("ch06.col_strategy"), "EX", *(level_label(lv) for lv in LEVELS), t("ch06.col_median_s")]
    charts.table(rows, [*cols, t("ch06.col_errors")])
    st.caption(t("ch06.strategies_caption", n=data["n"]))
    if spider:
        rows = [
            [
                row_label(r, data),
                f"{r['ex']:.3f}",
                "—" if r.get("em") is None else f"{r['em']:.3f}",
                f"{r['median_s']:.1f}",
            ]
            for r in spider
        ]
        charts.table(rows, [t("ch06.col_strategy"), "EX", "EM", t("ch06.col_median_s")])
        st.caption(t("ch06.spider_caption", n=data["spider"].get("n", len(spider))))


def eval_rows(rows: list[dict]) -> None:
    table = [
        [
            r["id"],
            level_label(r["difficulty"]),
            r["question"],
            r["gold_sql"],
            r["pred_sql"] or "—",
            "✅" if r["ex"] else "❌",
            code_label(r["error"]),
            r["detail"] or "—",
            f"{r['seconds']:.1f}",
        ]
        for r in rows
    ]
    cols = [t("ch06.col_id"), t("ch06.col_level"), t("ch06.col_question"), t("ch06.col_gold"), t("ch06.col_pred")]
    charts.table(table, [*cols, "EX", t("ch06.col_error"), t("ch06.col_detail"), t("ch06.col_seconds")])


def show_eval(rows: list[dict], planned: int) -> None:
    n = len(rows)
    ex = sum(r["ex"] for r in rows) / n if n else 0.0
    seconds = sorted(r["seconds"] for r in rows)
    c1, c2, c3 = st.columns(3)
    c1.metric(t("ch06.eval_done"), f"{n} / {planned}")
    c2.metric("EX", f"{ex:.2f}")
    c3.metric(t("ch06.col_median_s"), f"{seconds[n // 2]:.1f} s" if n else "—")
    eval_rows(rows)


def show_judge(data: dict) -> None:
    records = data.get("records") or []
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(t("ch06.judge_agreement"), f"{data['agreement_with_ex']:.2f}")
    c2.metric(t("ch06.judge_false_accepts"), f"{data['false_accepts']} / {data['wrong']}")
    c3.metric(t("ch06.judge_false_rejects"), f"{data['false_rejects']} / {data['right']}")
    c4.metric(t("ch06.judge_unusable"), data.get("unusable", 0))
    st.caption(t("ch06.judge_caption", model=data.get("role", "instruct"), n=len(records)))
    wrong = [r for r in records if r["kind"] == "wrong" and r["judge"] is True]
    if wrong:
        st.markdown(f"**{t('ch06.false_accepts_title')}**")
        rows = [[r["question"], r["gold_sql"], r["pred_sql"]] for r in wrong]
        charts.table(rows, [t("ch06.col_question"), t("ch06.col_gold"), t("ch06.col_pred")])


def judge_one(view: dict, gold_sql: str) -> dict:
    """The book's judge and execution on the same (question, gold, prediction)."""
    from engine.text2sql import judge
    from engine.text2sql.evaluation import gold_is_ordered

    db = database_of(view)
    if db is None:
        return {}
    verdict = judge(view["question"], db.ddl, gold_sql, view["sql"])
    ex = execution_match(run_sql(db, view["sql"]), run_sql(db, gold_sql), gold_is_ordered(gold_sql))
    return {"question": view["question"], "yes": verdict.yes, "raw": verdict.raw, "s": verdict.seconds, "ex": ex}


def show_judged(r: dict) -> None:
    said = {True: t("ch06.yes"), False: t("ch06.no"), None: t("ch06.unusable")}[r["yes"]]
    c1, c2, c3 = st.columns(3)
    c1.metric(t("ch06.judge_says"), said)
    c2.metric(t("ch06.execution_says"), t("ch06.match") if r["ex"] else t("ch06.mismatch"))
    c3.metric(t("ch06.agree"), t("ch06.yes") if r["yes"] == r["ex"] else t("ch06.no"))
    st.caption(t("ch06.judge_raw", raw=r["raw"] or "—", s=r["s"]))


def known_gold(question: str) -> str | None:
    """The gold SQL of a hand-written Chinook question (or of the page's default question), if it is one."""
    if question.strip() == t("ch06.default_question"):
        return t("ch06.default_gold")
    for split in ("train", "dev", "test"):
        for q in chinook_questions(split):
            if q.question == question.strip():
                return q.sql
    return None


# -- fine-tuning -------------------------------------------------------------------------------------------------
def loss_chart(rows: list[dict], title: str) -> None:
    labels = {"step": t("ch06.axis_step"), "loss": t("ch06.axis_loss"), "run": t("ch06.legend_run")}
    charts.show(st, charts.line(rows, "step", "loss", "run", title, labels=labels))


def streaming(slot, on_row):
    """on_row for a training run that also redraws the loss curve in `slot` after every step."""
    rows: list[dict] = []

    def report(row: dict) -> None:
        on_row(row)
        if row.get("kind", "train") == "train" and isinstance(row.get("loss"), int | float):
            rows.append(row)
            with slot.container():
                show_loss_rows(rows)

    return report


def show_loss_rows(rows: list[dict]) -> None:
    """The loss of the steps finished so far (a live run, or one stopped half-way)."""
    points = [
        {"step": r.get("step", i + 1), "loss": r["loss"], "run": t("ch06.ft_live_run")}
        for i, r in enumerate(x for x in rows if isinstance(x.get("loss"), int | float))
    ]
    if points:
        loss_chart(points, t("ch06.ft_live_title", steps=len(points)))


def show_finetune_shipped(data: dict) -> None:
    """The shipped runs (tests/bench/bench_text2sql_finetune.py): {"runs": {"chat/base": {"role", "eval"},
    "chat/tuned-filtered": {"role", "data", "steps", "losses", "seconds", "eval": {"ex", "correct", "n", ...}},
    ...}, "synthetic": {"raw", "filtered", "dropped"}, "test_questions", "prompt"}."""
    runs = data.get("runs") or {}
    curves = [
        {"step": i + 1, "loss": v, "run": run_label(r)}
        for r in runs.values()
        for i, v in enumerate(r.get("losses") or [])
    ]
    if curves:
        loss_chart(curves, t("ch06.ft_shipped_title"))
    bars, rows = [], []
    for role in ("chat", "instruct", "base-ko"):
        keys = ("base", "tuned-filtered", "tuned-raw", "tuned-handwritten")
        base, tuned, raw, hand = (runs.get(f"{role}/{k}") for k in keys)
        if not (base or tuned):
            continue
        model = maybe(f"ch06.ft_model_{role}", role)
        for kind, run in (("base", base), ("filtered", tuned), ("raw", raw), ("handwritten", hand)):
            if run and run.get("eval"):
                bars.append({"model": model, "ex": run["eval"]["ex"], "kind": t(f"ch06.ft_kind_{kind}")})
        trained = [r for r in (tuned, raw, hand) if r]  # steps and seconds of each tuned run, in the columns' order
        rows.append(
            [
                model,
                ex_of(base),
                ex_of(tuned),
                ex_of(raw),
                ex_of(hand),
                " / ".join(str(r.get("steps", "—")) for r in trained) or "—",
                " / ".join(fmt(r.get("seconds"), 0) for r in trained) or "—",
            ]
        )
    if bars:
        labels = {"model": t("ch06.axis_model"), "ex": t("ch06.axis_ex"), "kind": t("ch06.legend_kind")}
        fig = charts.grouped_bars(bars, "model", "ex", "kind", t("ch06.ft_ex_title"), False, labels)
        fig.update_traces(texttemplate="%{y:.2f}")
        fig.update_yaxes(range=[0, 1])
        charts.show(st, fig)
    if rows:
        cols = [t("ch06.col_model"), t("ch06.col_base_ex"), t("ch06.col_tuned_ex"), t("ch06.col_raw_ex")]
        cols.append(t("ch06.col_handwritten_ex"))
        charts.table(rows, [*cols, t("ch06.col_steps"), t("ch06.col_train_s")])
    syn = data.get("synthetic") or {}
    st.caption(
        t(
            "ch06.ft_shipped_caption",
            n=data.get("test_questions", "—"),
            raw=syn.get("raw", "—"),
            filtered=syn.get("filtered", "—"),
        )
    )


def ex_of(run: dict | None) -> str:
    """ "0.233 (14/60)" for a run's evaluation, "—" when there is none."""
    ev = (run or {}).get("eval")
    return f"{ev['ex']:.3f} ({ev.get('correct', '—')}/{ev.get('n', '—')})" if ev else "—"


def run_label(run: dict) -> str:
    name = maybe(f"ch06.ft_model_{run.get('role', '')}", str(run.get("role", "")))
    data = maybe(f"ch06.ft_data_{run.get('data', '')}", str(run.get("data", "")))
    return f"{name} · {data}" if run.get("data") else name


def fmt(value, digits: int = 2) -> str:
    return "—" if not isinstance(value, int | float) or math.isnan(value) else f"{value:.{digits}f}"


def finetune_live(steps: int, progress, on_row, should_stop) -> dict:
    """A short LoRA run of the `chat` model (SmolLM2-135M) on the shipped synthetic pairs (schema-linked DDL, as
    the shipped runs), then base vs tuned greedy SQL on three dev questions (the base answers come from the same
    model with its adapter switched off)."""
    from engine.llmops import log_adapter
    from engine.text2sql.finetune import FinetuneSettings, generate_sqls, linked_ddl, score, train_lora

    db = chinook()
    pairs, _ = finetune_pairs()
    triples = [(linked_ddl(db, sql), q, sql) for q, sql in pairs]
    result = train_lora(triples, FinetuneSettings(role="chat", steps=steps), progress, should_stop, on_row)
    log_adapter(result.model)  # into the tracked run, when the page tracks it (the adapter: a few MB)
    items = [(q.id, q.question, q.sql, linked_ddl(db, q.sql)) for q in chinook_questions("dev")[:3]]
    prompts = [(ddl, q) for _, q, _, ddl in items]
    progress(0.95, t("ch06.ft_answering"))
    with result.model.disable_adapter():
        base = score(db, items, generate_sqls(result.model, result.tokenizer, prompts, chat=result.chat))
    tuned = score(db, items, generate_sqls(result.model, result.tokenizer, prompts, chat=result.chat))
    return {
        "steps": steps,
        "losses": result.losses,
        "status": result.log.status,
        "message": result.log.message,
        "seconds": result.seconds,
        "trainable": result.trainable,
        "total": result.total,
        "examples": result.examples,
        "answers": [
            {"question": b.question, "gold": b.gold_sql, "base": b.pred_sql, "base_ex": b.ex, "tuned": u.pred_sql}
            | {"tuned_ex": u.ex}
            for b, u in zip(base, tuned, strict=True)
        ],
    }


def finetune_pairs() -> tuple[list[tuple[str, str]], str]:
    """The (question, SQL) pairs `finetune_live` trains on, and where they come from."""
    from engine.text2sql import shipped_synthetic

    try:
        return [(p.question, p.sql) for p in shipped_synthetic()], "engine.text2sql.shipped_synthetic()"
    except FileNotFoundError:  # the shipped set is not there yet: fresh template pairs, filtered the same way
        pairs = [(r["question"], r["sql"]) for r in live_pairs(300, 0)["rows"] if "reason" not in r]
        return pairs, "engine.text2sql template pairs (live_pairs(300, seed=0), filtered)"


def finetune_track(steps: int):
    """What the live LoRA run logs to MLflow (llmlab-ch06): the settings, the loss per step, the pairs' version and
    the adapter (saved by `finetune_live` while the model exists)."""
    from engine.llmops import dataset_version
    from engine.text2sql.finetune import FinetuneSettings
    from ui.tracking import Track

    def data():
        pairs, source = finetune_pairs()
        return dataset_version("chinook_synthetic", pairs, source)

    params = {"model": "chat", **dataclasses.asdict(FinetuneSettings(role="chat", steps=steps))}
    return Track(
        "ch06", "text2sql lora", params, dataset=data, status=lambda r: r["status"], command="pages/06_text2sql.py"
    )


def show_finetune_live(run: dict) -> None:
    rows = [{"step": i + 1, "loss": v, "run": t("ch06.ft_live_run")} for i, v in enumerate(run["losses"])]
    if rows:
        loss_chart(rows, t("ch06.ft_live_title", steps=len(rows)))
    st.caption(
        t(
            "ch06.ft_live_caption",
            trainable=f"{run['trainable']:,}",
            total=f"{run['total']:,}",
            s=run["seconds"],
            examples=f"{run['examples']:,}",
        )
    )
    table = [
        [
            a["question"],
            a["gold"],
            a["base"] or "—",
            "✅" if a["base_ex"] else "❌",
            a["tuned"] or "—",
            "✅" if a["tuned_ex"] else "❌",
        ]
        for a in run["answers"]
    ]
    cols = [t("ch06.col_question"), t("ch06.col_gold"), t("ch06.col_base"), t("ch06.col_base_ex")]
    charts.table(table, [*cols, t("ch06.col_tuned"), t("ch06.col_tuned_ex")])


# -- safety ------------------------------------------------------------------------------------------------------
def file_sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_guarded(sql: str) -> dict:
    """Run `sql` on Chinook through the read-only executor, hashing the file before and after."""
    db = chinook()
    before = file_sha256(db.path)
    res = run_sql(db, sql)
    after = file_sha256(db.path)
    rows = [list(r) for r in res.rows[:ROWS_SHOWN]]
    return {
        "sql": sql,
        "error": res.error,
        "detail": res.detail,
        "seconds": res.seconds,
        "columns": res.columns,
        "rows": rows,
        "before": before,
        "after": after,
        "path": str(db.path),
    }


def show_guarded(r: dict) -> None:
    if r["error"]:
        st.warning(translated(r["error"], {"detail": r["detail"]}) or r["error"], icon="🛡️")
        st.caption(t("ch06.sqlite_detail"))
        st.code(r["detail"] or "—", language=None, wrap_lines=True)
    else:
        st.success(t("ch06.safety_ran", n=len(r["rows"]), s=r["seconds"]))
        result_table(r["columns"], r["rows"])
    same = r["before"] == r["after"]
    rows = [[t("ch06.before"), r["before"]], [t("ch06.after"), r["after"]]]
    charts.table(rows, [t("ch06.col_when"), "sha256"])
    (st.success if same else st.error)(t("ch06.unchanged" if same else "ch06.changed", path=r["path"]))
