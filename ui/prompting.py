"""The prompt studio's page helpers (pages/96_prompting.py): the template view, the technique table, one live run."""

from __future__ import annotations

import json

import pandas as pd
import plotly.express as px
import streamlit as st

from engine.core import load_precomputed
from engine.handson import prompting
from ui import charts
from ui.i18n import maybe, t
from ui.layout import precomputed_note

PRECOMPUTED = "h6_prompting"


def technique_label(name: str) -> str:
    return maybe(f"h6.tech_{name}", name)


def show_template(view: prompting.TemplateView) -> None:
    st.code(view.text, language=None)
    c = st.columns(2)
    c[0].metric(t("h6.n_tokens"), view.n_tokens)
    c[1].metric(t("h6.n_special"), sum(view.special))
    rows = [
        (i, repr(tok)[1:-1], "✅" if sp else "")
        for i, (tok, sp) in enumerate(zip(view.tokens, view.special, strict=True))
    ]
    charts.table(rows, [t("h6.col_index"), t("h6.col_token"), t("h6.col_special")], height=260)


def shipped():
    pre = load_precomputed(PRECOMPUTED)
    if pre is not None:
        precomputed_note(pre)
    return pre


def show_table(data: dict) -> None:
    rows = data["rows"]
    st.caption(t("h6.model", role=data.get("role", "")))
    table = [
        (
            technique_label(r["technique"]),
            r["accuracy"],
            r["n"],
            r["seconds_per_item"],
            r["calls_per_item"],
            "—" if r["validity"] is None else r["validity"],
        )
        for r in rows
    ]
    charts.table(
        table,
        [
            t("h6.col_technique"),
            t("h6.col_accuracy"),
            "n",
            t("h6.col_seconds"),
            t("h6.col_calls"),
            t("h6.col_validity"),
        ],
    )
    bars = [{"technique": technique_label(r["technique"]), "accuracy": r["accuracy"]} for r in rows]
    fig = px.bar(
        bars,
        x="technique",
        y="accuracy",
        title=t("h6.acc_title"),
        text="accuracy",
        labels={"technique": t("h6.col_technique"), "accuracy": t("h6.col_accuracy")},
    )
    fig.update_yaxes(range=[0, 1])
    charts.show(st, fig, key="h6_acc")


def show_attempt(a: dict) -> None:
    ok = a["correct"]
    (st.success if ok else st.warning)(
        t(
            "h6.result",
            predicted="—" if a["predicted"] is None else a["predicted"],
            gold=a["gold"],
            calls=a["calls"],
            seconds=a["seconds"],
        ),
        icon="✅" if ok else "❌",
    )
    if a.get("valid") is not None:
        st.caption(t("h6.valid_yes") if a["valid"] else t("h6.valid_no"))
    if a.get("votes"):
        st.caption(t("h6.votes", votes=", ".join(f"{k}: {v}" for k, v in a["votes"].items())))
    if a.get("tree"):
        rows = [
            (
                n["depth"],
                " → ".join(n["steps"][-1:]) or t("h6.root"),
                n["model_score"] if n["model_score"] else "—",
                n["wrong_calcs"],
                n["score"],
                "✅" if n["kept"] else "",
            )
            for n in a["tree"]
        ]
        charts.table(
            rows,
            [
                t("h6.col_depth"),
                t("h6.col_step"),
                t("h6.col_model_score"),
                t("h6.col_wrong"),
                t("h6.col_score"),
                t("h6.col_kept"),
            ],
        )
    st.text_area(t("h6.reply"), a["reply"], height=160, disabled=True, key=f"h6_reply_{a['problem']}")


def messages_json(technique: str, question: str) -> str:
    base = "cot" if technique in ("self_consistency", "tot") else technique
    return json.dumps(prompting.messages_for(base, question), ensure_ascii=False, indent=1)


def problem_frame() -> pd.DataFrame:
    return pd.DataFrame([(p.id, p.question, p.answer) for p in prompting.problems()])
