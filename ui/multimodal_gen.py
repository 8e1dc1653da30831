"""Chapter 14's generation sections (pages/14_multimodal.py calls `diffusion_section` and `llava_section`):
DDPM from scratch (schedules, the forward process, a 2-D toy trained live, the shipped class-conditional UNet with
classifier-free guidance) and a LLaVA-style model (the splice of image vectors into the token sequence, the same
merge as transformers', caption accuracy against chance).

A fresh page shows the shipped results (assets/precomputed/ch14_diffusion*.json, ch14_llava.json); training and
sampling run only behind buttons, as stoppable jobs (ui.jobs).
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine.core import load_precomputed
from ui import charts
from ui.cache import cached
from ui.i18n import lang, t
from ui.jobs import last_job, run_and_keep
from ui.layout import friendly_errors, notice, precomputed_note, quiz, section_header
from ui.state import clamped, param

SS = st.session_state
SCHEDULE_COLORS = {"linear": "#1f77b4", "cosine": "#d62728"}
TOYS = ("moons", "swiss_roll", "ring")
SCHEDULES = ("linear", "cosine")
TOY_SECONDS = 30  # a page run of the 2-D toy trains at most this long
LLAVA_SECONDS = 60
GUIDANCE_STEPS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)


def fmt(value, digits: int = 3) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


def shipped(name: str):
    pre = load_precomputed(name)
    if pre is not None:
        precomputed_note(pre)
    return pre


def class_names() -> tuple[str, ...]:
    from engine.multimodal import FASHION

    return FASHION.names("ko" if lang() == "ko" else "en")


def image_row(images: list, pad: int = 2) -> np.ndarray:
    """uint8 images (each 28×28 nested lists) side by side with a white gap: one array for st.image."""
    arrs = [np.asarray(im, dtype=np.uint8) for im in images]
    h = max(a.shape[0] for a in arrs)
    gap = np.full((h, pad), 255, dtype=np.uint8)
    parts = []
    for a in arrs:
        parts += [a, gap]
    return np.concatenate(parts[:-1], axis=1)


def image_grid(rows: list[list]) -> np.ndarray:
    """Rows of images -> one array (rows separated by a white line)."""
    lines = [image_row(r) for r in rows]
    w = max(x.shape[1] for x in lines)
    out = []
    for x in lines:
        out += [np.pad(x, ((0, 0), (0, w - x.shape[1])), constant_values=255), np.full((2, w), 255, np.uint8)]
    return np.concatenate(out[:-1], axis=0)


def loss_chart(where, rows: list[dict], title: str, key: str = "loss_smooth", name: str = "") -> None:
    fig = charts.axes(title, t("ch14.diffusion_axis_step"), t("ch14.diffusion_axis_loss"), log_y=True)
    pts = [(r["step"], r.get(key, r.get("loss"))) for r in rows if isinstance(r.get(key, r.get("loss")), int | float)]
    fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines", name=name or "loss"))
    charts.show(where, fig)


def scatter(where, series: dict[str, list], title: str, height: int = 300) -> None:
    """2-D points: {name: [[x, y], ...]}."""
    fig = charts.axes(title, "x₁", "x₂", height=height)
    for name, pts in series.items():
        fig.add_trace(
            go.Scattergl(
                x=[p[0] for p in pts],
                y=[p[1] for p in pts],
                mode="markers",
                name=name,
                marker={"size": 3, "opacity": 0.6},
            )
        )
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    charts.show(where, fig)


# -- 14.3 diffusion ------------------------------------------------------------------------------------------------


def schedule_chart(where, curves: dict) -> None:
    fig = charts.axes(t("ch14.diffusion_schedule_title"), "t", "ᾱ_t")
    for name in SCHEDULES:
        c = curves[name]
        fig.add_trace(
            go.Scatter(
                x=c["t"],
                y=c["alpha_bar"],
                mode="lines",
                name=t(f"ch14.diffusion_sched_{name}"),
                line={"color": SCHEDULE_COLORS[name]},
            )
        )
    charts.show(where, fig)


def schedule_curves() -> dict:
    from engine.multimodal import compare_schedules

    return cached(("ch14", "schedules"), lambda p: compare_schedules(1000), t("ch14.diffusion_computing"))


def forward_view(dataset: str, schedule: str) -> list[dict]:
    from engine.multimodal import forward_strip

    return cached(
        ("ch14", "forward", dataset, schedule),
        lambda p: forward_strip(dataset, schedule, 100),
        t("ch14.diffusion_computing"),
    )


def strip_scatter(frames: list[dict], label_key: str) -> None:
    cols = st.columns(len(frames))
    for col, frame in zip(cols, frames, strict=True):
        fig = go.Figure(
            go.Scattergl(
                x=[p[0] for p in frame["points"]], y=[p[1] for p in frame["points"]], mode="markers", marker={"size": 2}
            )
        )
        label = t(label_key, t=frame["t"]) if frame["t"] >= 0 else t("ch14.diffusion_final")
        fig.update_layout(title=label, height=180, margin={"l": 0, "r": 0, "t": 30, "b": 0}, showlegend=False)
        fig.update_xaxes(range=[-3.5, 3.5], showticklabels=False)
        fig.update_yaxes(range=[-3.5, 3.5], showticklabels=False, scaleanchor="x")
        charts.show(col, fig)


def toy_result_view(res: dict) -> None:
    c1, c2 = st.columns(2)
    loss_chart(c1, res["rows"], t("ch14.diffusion_toy_loss"))
    scatter(
        c2,
        {t("ch14.diffusion_real"): res["data"], t("ch14.diffusion_generated"): res["samples"]},
        t("ch14.diffusion_toy_samples"),
    )
    st.caption(
        t(
            "ch14.diffusion_toy_caption",
            seconds=fmt(res["seconds"], 1),
            steps=res["trained_steps"],
            dist=fmt(res["nearest_distance"]),
            floor=fmt(res["data_nearest_distance"]),
        )
    )
    strip_scatter(res["strip"], "ch14.diffusion_strip_t")


def toy_compare_table(compare: dict) -> None:
    rows = []
    for name, run in compare["runs"].items():
        rows.append(
            [
                t(f"ch14.diffusion_sched_{name}"),
                fmt(run["alpha_bar_last"], 5),
                run["trained_steps"],
                fmt(run["seconds"], 1),
                fmt((run["rows"] or [{}])[-1].get("loss_smooth"), 4),
                fmt(run["nearest_distance"]),
                fmt(run["data_nearest_distance"]),
            ]
        )
    charts.table(
        rows,
        [
            t("ch14.diffusion_col_schedule"),
            "ᾱ_T",
            t("ch14.diffusion_col_steps"),
            t("ch14.diffusion_col_seconds"),
            t("ch14.diffusion_col_loss"),
            t("ch14.diffusion_col_dist"),
            t("ch14.diffusion_col_floor"),
        ],
    )


def live_toy(dataset: str, schedule: str, steps: int, progress, on_row, should_stop) -> dict:
    from engine.multimodal import ToyConfig, train_toy

    cfg = ToyConfig(dataset=dataset, schedule=schedule, steps=steps, max_seconds=float(TOY_SECONDS))
    return train_toy(cfg, progress, on_row, should_stop).to_json()


def fashion_unet():
    from engine.multimodal import load_fashion_unet

    return cached(("ch14", "fashion_unet"), lambda p: load_fashion_unet(), t("ch14.diffusion_loading_unet"))


def live_sample(label: int, guidance: float, seed: int, progress, on_row, should_stop) -> dict:
    from engine.multimodal import generate

    return generate(
        fashion_unet(), [label] * 4, guidance, seed=seed, keep=8, progress=progress, should_stop=should_stop
    )


def strip_view(res: dict, row: int = 0) -> None:
    """The denoising steps of one sample: x_t along the reverse process, and the network's guess x̂_0 at each t."""
    frames = res["strip"]
    st.image(
        image_row([f["images"][row] for f in frames]),
        width=min(900, 70 * len(frames)),
        caption=t(
            "ch14.diffusion_strip_caption", steps=", ".join(str(f["t"]) if f["t"] >= 0 else "x₀" for f in frames)
        ),
    )
    if res.get("x0_strip"):
        st.image(
            image_row([f["images"][row] for f in res["x0_strip"]]),
            width=min(900, 70 * len(frames)),
            caption=t("ch14.diffusion_x0_caption"),
        )


def guidance_view(rows: list[dict]) -> None:
    names = class_names()
    table = []
    for row in rows:
        labels = row["labels"]
        first = [row["images"][i] for i in range(len(labels)) if i == 0 or labels[i] != labels[i - 1]]
        st.image(
            image_row(first),
            width=min(900, 60 * len(first)),
            caption=t("ch14.diffusion_guidance_row", s=fmt(row["guidance"], 1)),
        )
        table.append(
            [
                fmt(row["guidance"], 1),
                fmt(row.get("class_accuracy")),
                fmt(row.get("mean")),
                fmt(row["diversity"]),
                fmt(row["seconds"], 1),
            ]
        )
    st.caption(" · ".join(f"{i}: {n}" for i, n in enumerate(names)))
    charts.table(
        table,
        [
            t("ch14.diffusion_col_guidance"),
            t("ch14.diffusion_col_class_acc"),
            t("ch14.diffusion_col_mean"),
            t("ch14.diffusion_col_diversity"),
            t("ch14.diffusion_col_seconds"),
        ],
    )


def diffusion_section(ch) -> None:
    section_header(ch, "diffusion")
    # noise schedules
    st.subheader(t("ch14.diffusion_schedules"))
    curves = schedule_curves()
    c1, c2 = st.columns([2, 1])
    schedule_chart(c1, curves)
    c2.metric(
        t("ch14.diffusion_noise_only", name=t("ch14.diffusion_sched_linear")),
        f"{100 * curves['linear']['noise_only_fraction']:.0f}%",
    )
    c2.metric(
        t("ch14.diffusion_noise_only", name=t("ch14.diffusion_sched_cosine")),
        f"{100 * curves['cosine']['noise_only_fraction']:.0f}%",
    )
    # the forward process on a toy set
    st.subheader(t("ch14.diffusion_forward"))
    param("df_toy", "moons", str, choices=TOYS)
    param("df_sched", "linear", str, choices=SCHEDULES)
    c1, c2 = st.columns(2)
    c1.radio(
        t("ch14.diffusion_toy"),
        list(TOYS),
        key="df_toy",
        horizontal=True,
        format_func=lambda k: t(f"ch14.diffusion_toy_{k}"),
    )
    c2.radio(
        t("ch14.diffusion_schedule"),
        list(SCHEDULES),
        key="df_sched",
        horizontal=True,
        format_func=lambda k: t(f"ch14.diffusion_sched_{k}"),
    )
    frames = forward_view(SS["df_toy"], SS["df_sched"])
    strip_scatter(frames, "ch14.diffusion_strip_t")
    st.caption(t("ch14.diffusion_forward_caption"))
    # the 2-D toy: shipped comparison, then a live run
    st.subheader(t("ch14.diffusion_toy_train"))
    pre = shipped("ch14_diffusion_toy")
    if pre:
        toy_compare_table(pre.data["compare"])
        runs = pre.data["compare"]["runs"]
        c1, c2 = st.columns(2)
        for col, name in ((c1, "linear"), (c2, "cosine")):
            scatter(
                col,
                {t("ch14.diffusion_real"): runs[name]["data"], t("ch14.diffusion_generated"): runs[name]["samples"]},
                t("ch14.diffusion_samples_of", name=t(f"ch14.diffusion_sched_{name}")),
            )
    clamped("df_steps", 2000, 200, 6000, int)
    st.slider(
        t("ch14.diffusion_train_steps"),
        200,
        6000,
        key="df_steps",
        step=100,
        help=t("ch14.diffusion_train_steps_help", seconds=TOY_SECONDS),
    )
    if st.button(t("ch14.diffusion_toy_run"), key="df_run", type="primary"):
        toy, sched, steps = SS["df_toy"], SS["df_sched"], SS["df_steps"]
        run_and_keep(
            "ch14_toy",
            lambda p, r, s: live_toy(toy, sched, steps, p, r, s),
            t("ch14.diffusion_training"),
            "ch14_toy_result",
        )
    state = last_job("ch14_toy")
    if SS.get("ch14_toy_result"):
        toy_result_view(SS["ch14_toy_result"])
    elif state.rows:
        loss_chart(st, state.rows, t("ch14.diffusion_toy_loss"))
    st.code("python -m engine diffusion --dataset toy2d --json", language="bash")
    # the UNet on Fashion-MNIST with classifier-free guidance
    st.subheader(t("ch14.diffusion_unet"))
    pre = shipped("ch14_diffusion")
    if pre:
        train = pre.data.get("train") or {}
        st.caption(
            t(
                "ch14.diffusion_unet_trained",
                steps=train.get("trained_steps", "—"),
                seconds=fmt(train.get("seconds"), 0),
                loss=fmt(train.get("final_loss"), 4),
            )
        )
        strip_view(pre.data["strip"])
        st.markdown(t("ch14.diffusion_guidance_intro"))
        guidance_view(pre.data["guidance"])
        st.caption(t("ch14.diffusion_classifier_note", acc=fmt(pre.data.get("classifier_test_accuracy"))))
    else:
        st.info(t("ch14.diffusion_no_unet"), icon="📦")
    names = class_names()
    param("df_label", 0, int, choices=tuple(range(10)))
    param("df_guidance", 3.0, float, choices=GUIDANCE_STEPS)
    clamped("df_seed", 0, 0, 9999, int)
    c1, c2, c3 = st.columns(3)
    c1.selectbox(t("ch14.diffusion_class"), list(range(10)), key="df_label", format_func=lambda i: names[i])
    c2.select_slider(
        t("ch14.diffusion_guidance"), list(GUIDANCE_STEPS), key="df_guidance", help=t("ch14.diffusion_guidance_help")
    )
    c3.number_input(t("ch14.diffusion_seed"), 0, 9999, key="df_seed")
    if st.button(t("ch14.diffusion_sample_run"), key="df_sample"):
        label, g, seed = SS["df_label"], SS["df_guidance"], SS["df_seed"]
        run_and_keep(
            "ch14_sample",
            lambda p, r, s: live_sample(label, g, seed, p, r, s),
            t("ch14.diffusion_sampling"),
            "ch14_sample_result",
        )
    if SS.get("ch14_sample_result"):
        res = SS["ch14_sample_result"]
        st.image(
            image_row(res["images"]),
            width=280,
            caption=t(
                "ch14.diffusion_sample_caption",
                name=names[res["labels"][0]],
                s=fmt(res["guidance"], 1),
                seconds=fmt(res["seconds"], 1),
            ),
        )
        strip_view(res)
    st.code(pre.command if pre else "python -m engine diffusion --dataset fashion --save-precomputed", language="bash")
    notice("common.notice", t("ch14.diffusion_notice"))
    quiz("14", "diffusion")


# -- 14.4 LLaVA ----------------------------------------------------------------------------------------------------


def llava_check() -> dict:
    from engine.multimodal import compare_with_transformers

    return cached(("ch14", "llava_check"), lambda p: compare_with_transformers().to_json(), t("ch14.llava_checking"))


def splice_table(rows: list[dict]) -> None:
    table = [
        [
            r["position"],
            r["token"],
            t(f"ch14.llava_kind_{r['kind']}"),
            r["source"],
            fmt(r["norm"], 2),
            ", ".join(fmt(v, 3) for v in r["head"]),
        ]
        for r in rows
    ]
    charts.table(
        table,
        [
            t("ch14.llava_col_pos"),
            t("ch14.llava_col_token"),
            t("ch14.llava_col_kind"),
            t("ch14.llava_col_source"),
            "‖v‖",
            t("ch14.llava_col_head"),
        ],
    )


def llava_result_view(res: dict) -> None:
    names = class_names()
    c1, c2, c3 = st.columns(3)
    c1.metric(
        t("ch14.llava_accuracy"),
        f"{100 * res['caption_accuracy']:.1f}%",
        delta=f"{res['caption_accuracy'] / res['chance']:.1f}× {t('ch14.llava_chance_short')}",
    )
    c2.metric(t("ch14.llava_chance"), f"{100 * res['chance']:.0f}%")
    c3.metric(t("ch14.llava_train_seconds"), fmt(res["train_seconds"], 1))
    from engine.multimodal.llava import question_text

    question = question_text(res.get("config", {}).get("lang", "en")).strip()
    note = "ch14.llava_metric_note_first_token" if res.get("metric") == "first_token" else "ch14.llava_metric_note"
    st.caption(t(note, n=res["eval_images"], question=question))
    c1, c2 = st.columns(2)
    fig = charts.axes(t("ch14.llava_loss_title"), t("ch14.diffusion_axis_step"), t("ch14.diffusion_axis_loss"))
    for stage in (1, 2):
        pts = [r for r in res["rows"] if r["stage"] == stage]
        fig.add_trace(
            go.Scatter(
                x=[r["step"] for r in pts],
                y=[r["loss"] for r in pts],
                mode="lines+markers",
                name=t(f"ch14.llava_stage{stage}"),
            )
        )
    charts.show(c1, fig)
    charts.show(c2, charts.heatmap(res["confusion"], list(names), list(names), title=t("ch14.llava_confusion")))
    cols = st.columns(max(1, len(res["examples"])))
    for col, ex in zip(cols, res["examples"], strict=False):
        col.image(np.asarray(ex["image"], dtype=np.uint8), width=84, caption=names[ex["label"]])
        col.caption(
            t("ch14.llava_example", chosen=names[ex["chosen"]], p=fmt(max(ex["probs"]), 2), greedy=ex["greedy"] or "∅")
        )
    with st.expander(t("ch14.llava_splice_title")):
        st.caption(t("ch14.llava_splice_caption"))
        splice_table(res["splice"])


def live_llava(progress, on_row, should_stop) -> dict:
    from engine.multimodal import LlavaConfig, train_llava
    from ui.cache import causal_lm

    lm = causal_lm("chat", t("ch14.llava_loading_lm"))  # the app's shared copy (frozen here, never changed)
    res, _ = train_llava(LlavaConfig(max_seconds=float(LLAVA_SECONDS)), progress, on_row, should_stop, lm=lm)
    return res.to_json()


def llava_section(ch) -> None:
    section_header(ch, "llava")
    st.subheader(t("ch14.llava_same_title"))
    with friendly_errors():
        chk = llava_check()
        c1, c2, c3 = st.columns(3)
        c1.metric(t("ch14.llava_image_tokens"), chk["image_tokens"])
        c2.metric(t("ch14.llava_embeds_diff"), f"{chk['inputs_embeds_max_diff']:.1e}")
        c3.metric(t("ch14.llava_logits_diff"), f"{chk['logits_max_diff']:.1e}")
        st.caption(t("ch14.llava_same_caption", version=chk["transformers_version"]))
    st.code("python -m engine llava-check --json", language="bash")
    st.subheader(t("ch14.llava_trained_title"))
    pre = shipped("ch14_llava")
    if pre:
        llava_result_view(pre.data)
    else:
        st.info(t("ch14.llava_none"), icon="📦")
    st.subheader(t("ch14.llava_live_title"))
    st.caption(t("ch14.llava_live_help", seconds=LLAVA_SECONDS))
    if st.button(t("ch14.llava_run"), key="lv_run", type="primary"):
        run_and_keep("ch14_llava", live_llava, t("ch14.llava_training"), "ch14_llava_result")
    state = last_job("ch14_llava")
    if SS.get("ch14_llava_result"):
        llava_result_view(SS["ch14_llava_result"])
    elif state.rows:
        loss_chart(st, state.rows, t("ch14.llava_loss_title"), key="loss")
    st.code(pre.command if pre else "python -m engine llava --json", language="bash")
    notice("common.notice", t("ch14.llava_notice"))
    quiz("14", "llava")
