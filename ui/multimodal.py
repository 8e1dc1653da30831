"""Chapter 14's page helpers (pages/14_multimodal.py): CLIP training (loss curve, similarity heatmap), zero-shot
(prompts, ensembling, held-out classes, the logit scale), the real CLIP through transformers, and text -> image
search. Diffusion and LLaVA helpers are D's, in ui/multimodal_gen.py.

Every result is drawn from one plain dict, whichever made it: the shipped run (assets/precomputed/ch14_clip.json)
or a run in this session, so a fresh page and a page after a click look the same.
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
from ui.layout import precomputed_note

SS = st.session_state
PREVIEW = 84  # 28x28 images are shown 3x, nearest-neighbour (a browser's smoothing would blur them)


# -- small things --------------------------------------------------------------------------------------------------
def pct(value) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "—"
    return f"{100 * value:.1f}%"


def num(value, digits: int = 3) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


def big(image) -> np.ndarray:
    """(28, 28) uint8 -> (84, 84): each pixel a 3x3 block."""
    a = np.asarray(image, dtype=np.uint8)
    return np.kron(a, np.ones((3, 3), dtype=np.uint8))


def shipped():
    """The shipped CLIP run (labelled), or None."""
    pre = load_precomputed("ch14_clip")
    if pre is not None:
        precomputed_note(pre)
    return pre


def class_names(result: dict) -> list[str]:
    return result["classes_ko"] if lang() == "ko" else result["classes_en"]


# -- CLIP training -------------------------------------------------------------------------------------------------
METRICS = (
    ("zero_shot_accuracy", "ch14.m_zero_shot", "ch14.m_zero_shot_help"),
    ("seen_class_accuracy", "ch14.m_seen", None),
    ("heldout_class_accuracy", "ch14.m_heldout", "ch14.m_heldout_help"),
    ("text_to_image_recall_at_10", "ch14.m_recall", "ch14.m_recall_help"),
    ("baseline_logreg_accuracy", "ch14.m_baseline", "ch14.m_baseline_help"),
)


def metrics_row(values: dict) -> None:
    """One metric per figure the run has (a run without held-out classes has no held-out accuracy)."""
    shown = [(k, label, hint) for k, label, hint in METRICS if isinstance(values.get(k), int | float)]
    for col, (k, label, hint) in zip(st.columns(len(shown) or 1), shown, strict=False):
        col.metric(t(label), pct(values[k]), help=t(hint) if hint else None)


def train_facts(result: dict) -> None:
    names = class_names(result)
    st.caption(
        t(
            "ch14.train_facts",
            seconds=num(result.get("seconds"), 1),
            cpu=num(result.get("cpu_seconds"), 1),
            steps=f"{result.get('steps', 0):,}",
            scale=num((result.get("metrics") or {}).get("logit_scale"), 1),
            held=", ".join(names[i] for i in result.get("holdout", [])) or "—",
        )
    )


def shipped_values(data: dict) -> dict:
    """The shipped file's headline figures: the main run, and the held-out run's split."""
    s = data["summary"]
    held = s.get("heldout_run") or {}
    return {
        "zero_shot_accuracy": s.get("zero_shot_accuracy"),
        "seen_class_accuracy": held.get("seen_class_accuracy"),
        "heldout_class_accuracy": held.get("heldout_class_accuracy"),
        "text_to_image_recall_at_10": s.get("text_to_image_recall_at_10"),
        "baseline_logreg_accuracy": s.get("baseline_logreg_accuracy"),
    }


def loss_chart(curves: dict[str, list[dict]]) -> None:
    fig = charts.axes(t("ch14.loss_title"), t("ch14.axis_step"), t("ch14.axis_loss"))
    for name, rows in curves.items():
        if rows:
            fig.add_trace(go.Scatter(x=[r["step"] for r in rows], y=[r["loss"] for r in rows], name=name))
    charts.show(st, fig)


def scale_chart(rows: list[dict]) -> None:
    fig = charts.axes(t("ch14.scale_title"), t("ch14.axis_step"), t("ch14.axis_scale"), height=260)
    fig.add_trace(go.Scatter(x=[r["step"] for r in rows], y=[r["scale"] for r in rows], name=t("ch14.axis_scale")))
    charts.show(st, fig)


def heatmap(result: dict) -> None:
    """The CLIP paper's figure: one test image per class (rows) x each class's caption (columns), cosines."""
    hm = result.get("heatmap") or {}
    if not hm:
        return
    code = "ko" if lang() == "ko" else "en"
    caps = hm.get(f"captions_{code}") or []
    cos = np.asarray(hm["cosine"][code])
    cols = st.columns(len(hm["images"]))
    for col, im, label in zip(cols, hm["images"], hm["labels"], strict=True):
        col.image(big(im), caption=class_names(result)[label], width=PREVIEW)
    fig = charts.axes(t("ch14.heatmap_title"), t("ch14.axis_caption"), t("ch14.axis_image"), height=460)
    rows = [f"{i + 1}. {class_names(result)[c]}" for i, c in enumerate(hm["labels"])]
    fig.add_trace(
        go.Heatmap(
            z=cos,
            x=caps,
            y=rows,
            colorscale="Viridis",
            text=np.round(cos, 2),
            texttemplate="%{text}",
            colorbar={"title": {"text": "cos"}},
        )
    )
    fig.update_yaxes(autorange="reversed")
    charts.show(st, fig)


LIVE_EVAL = 2000
TRAIN_OVERRIDES: dict = {}  # tests shrink the live run (steps, data) here; the page never sets it


def train_live(seconds: float, holdout: tuple[str, ...], caption_lang: str, progress, on_row, should_stop):
    """The page's live run: the default configuration with the learner's time budget, held-out classes and
    caption language (a ClipRun: the model stays in the session for the zero-shot section)."""
    from dataclasses import replace

    from engine.multimodal import ClipConfig, train_clip

    # the first 2,000 test images: evaluating all 10,000 took 37 s on the loaded machine, past the 60 s a live run has
    cfg = replace(
        ClipConfig(), max_seconds=float(seconds), holdout=holdout, caption_lang=caption_lang, eval_limit=LIVE_EVAL
    )
    cfg = replace(cfg, **TRAIN_OVERRIDES)
    return train_clip(cfg, progress=progress, on_row=on_row, should_stop=should_stop)


# -- zero-shot -----------------------------------------------------------------------------------------------------
def shipped_clip():
    """The shipped checkpoint and the text tower, loaded once per process."""
    from engine.multimodal import load_clip

    return cached(("ch14_clip",), lambda p: load_clip(), t("ch14.loading_clip"))


def test_images():
    from engine.multimodal import load_images

    return cached(("ch14_test_images",), lambda p: load_images("test"), t("ch14.loading_images"))


def probability_chart(labels: list[str], probs: list[float], cosines: list[float]) -> None:
    fig = charts.axes(t("ch14.zs_chart_title"), t("ch14.axis_label"), t("ch14.axis_probability"), height=300)
    fig.add_trace(go.Bar(x=labels, y=probs, name=t("ch14.axis_probability"), text=[f"cos {c:.2f}" for c in cosines]))
    fig.update_yaxes(range=[0, 1])
    charts.show(st, fig)


def variants_table(metrics: dict) -> None:
    rows = [
        {
            t("ch14.col_prompt"): t(f"ch14.variant_{v}"),
            t("ch14.col_accuracy"): pct(metrics.get(f"zero_shot_accuracy_{v}")),
        }
        for v in ("en", "ko", "en_ensemble", "ko_ensemble", "ensemble")
    ]
    charts.table(rows)


def per_class_chart(result: dict) -> None:
    names = class_names(result)
    rows = result.get("per_class") or []
    colors = ["#d62728" if r["heldout"] else "#1f77b4" for r in rows]
    fig = charts.axes(t("ch14.per_class_title"), t("ch14.axis_class"), t("ch14.col_accuracy"), height=320)
    fig.add_trace(
        go.Bar(
            x=[names[r["class"]] for r in rows],
            y=[r["accuracy"] or 0 for r in rows],
            marker_color=colors,
            name=t("ch14.col_accuracy"),
            showlegend=False,
        )
    )
    fig.update_yaxes(range=[0, 1])
    charts.show(st, fig)


def confusion_chart(result: dict) -> None:
    names = class_names(result)
    z = np.asarray(result.get("confusion") or [])
    if z.size == 0:
        return
    fig = charts.axes(t("ch14.confusion_title"), t("ch14.axis_predicted"), t("ch14.axis_true"), height=420)
    fig.add_trace(go.Heatmap(z=z, x=names, y=names, colorscale="Blues", colorbar={"title": {"text": t("ch14.count")}}))
    fig.update_yaxes(autorange="reversed")
    charts.show(st, fig)


def calibration_chart(curve: list[dict]) -> None:
    fig = charts.axes(t("ch14.calibration_title"), t("ch14.axis_gamma"), t("ch14.col_accuracy"), height=300)
    for key in ("seen", "heldout", "all"):
        fig.add_trace(go.Scatter(x=[r["gamma"] for r in curve], y=[r[key] for r in curve], name=t(f"ch14.curve_{key}")))
    fig.update_yaxes(range=[0, 1])
    charts.show(st, fig)


def softmax(cosines: list[float], scale: float) -> list[float]:
    z = np.asarray(cosines, dtype=np.float64) * scale
    z = np.exp(z - z.max())
    return (z / z.sum()).tolist()


def scale_demo_chart(cosines: list[float], names: list[str], scale: float) -> None:
    fig = charts.axes(
        t("ch14.scale_demo_title", scale=f"{scale:g}"), t("ch14.axis_label"), t("ch14.axis_probability"), height=280
    )
    fig.add_trace(go.Bar(x=names, y=softmax(cosines, 1.0), name=t("ch14.scale_one")))
    fig.add_trace(go.Bar(x=names, y=softmax(cosines, scale), name=t("ch14.scale_this", scale=f"{scale:g}")))
    fig.update_yaxes(range=[0, 1])
    charts.show(st, fig)


def upload_notes(decoded) -> None:
    facts = t(
        "ch14.upload_facts",
        fmt=decoded.format,
        mode=decoded.mode,
        w=decoded.size[0],
        h=decoded.size[1],
        frames=decoded.frames,
    )
    st.caption(facts)
    for note in decoded.notes:
        st.caption("ℹ️ " + t(note))


# -- search --------------------------------------------------------------------------------------------------------
def image_index(n_images: int = 2000):
    from engine.multimodal import build_image_index

    clip = shipped_clip()
    return cached(("ch14_index", n_images), lambda p: build_image_index(clip, n_images, progress=p), t("ch14.indexing"))


def hits_grid(index, hits, per_row: int = 5) -> None:
    for start in range(0, len(hits), per_row):
        cols = st.columns(per_row)
        for col, h in zip(cols, hits[start : start + per_row], strict=False):
            if h.source == "photo":
                photo = index.photos[h.index]
                col.image(photo.rgb, width=PREVIEW)
                col.caption(
                    f"🚫 {t('ch14.out_of_domain')}: {photo.ko if lang() == 'ko' else photo.en} · cos {h.score:.2f}"
                )
            else:
                col.image(big(index.images.images[h.index]), width=PREVIEW)
                name = h.class_ko if lang() == "ko" else h.class_en
                col.caption(f"#{h.index} {name} · cos {h.score:.2f}")


def search_table(report: dict, names: list[str]) -> None:
    rows = [
        {
            t("ch14.axis_class"): names[r["class"]],
            t("ch14.col_lang"): t(f"ch14.lang_{r['lang']}"),
            t("ch14.col_query"): r["query"],
            t("ch14.col_precision"): pct(r["precision_at_k"]),
            t("ch14.col_photos"): len(r["photos_in_top_k"]),
        }
        for r in report.get("by_class", [])
    ]
    charts.table(rows)


# -- the real CLIP path ---------------------------------------------------------------------------------------------
def tiny_clip_demo(names: tuple[str, ...]) -> dict:
    """The book's transformers code on a tiny random CLIP saved to a local folder (the hub model needs a download):
    the same from_pretrained, processor and forward; the answer is noise, the logit scale its initial 2.66."""
    import tempfile

    from engine.multimodal import hf_zero_shot, load_hf_clip, save_tiny_clip

    def build(progress):
        folder = tempfile.mkdtemp(prefix="ch14_tiny_clip_")
        return load_hf_clip(str(save_tiny_clip(folder)))

    hf = cached(("ch14_tiny_clip",), build, t("ch14.hf_tiny"))
    image = test_images().images[0]
    out = hf_zero_shot(hf, [image], list(names))
    return {
        "labels": out.labels,
        "probabilities": out.probabilities[0],
        "cosines": out.cosines[0],
        "scale": out.logit_scale,
        "parameters": hf.parameters,
    }
