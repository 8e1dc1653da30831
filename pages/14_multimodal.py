"""Chapter 14 — multimodal LLMs. CLIP from scratch on Fashion-MNIST (a dual encoder, the symmetric contrastive loss,
a learnable temperature), zero-shot classification from prompts (ensembling, held-out classes, what the logit scale
does, an uploaded image), the real CLIP through transformers, diffusion and a LLaVA-style model (helper D's
sections, ui/multimodal_gen.py), and text -> image search in chapter 12's vector store. A fresh page shows the
shipped run (assets/precomputed/ch14_clip.json + assets/multimodal/clip_fashion.pt); training runs only behind a
button, with progress and Stop."""

import streamlit as st

from engine.multimodal import FASHION
from ui import multimodal as view
from ui.i18n import lang, t
from ui.jobs import last_job, run_and_keep
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, show_code
from ui.state import clamped, param

try:  # helper D's sections; until they exist the page says so instead of failing
    from ui.multimodal_gen import diffusion_section, llava_section
except ImportError:
    diffusion_section = llava_section = None

SS = st.session_state
LIVE_SECONDS = (15, 30, 40, 50)  # + loading and evaluation: 45 s of training took 62 s in all at load 15
CAPTION_LANGS = ("both", "en", "ko")
PROMPT_LANGS = ("ko", "en", "both")
DEFAULT_HOLDOUT = ("sneaker", "shirt")


def _names() -> tuple[str, ...]:
    return FASHION.names("ko" if lang() == "ko" else "en")


def clip_section(ch) -> None:
    section_header(ch, "clip")
    pre = view.shipped()
    data = pre.data if pre else None
    live = SS.get("ch14_clip_live")
    if data:
        st.subheader(t("ch14.shipped_sub"))
        view.metrics_row(view.shipped_values(data))
        view.train_facts(data["result"])
        if data.get("heldout"):
            held = ", ".join(_names()[i] for i in data["heldout"]["holdout"])
            st.caption(t("ch14.heldout_run_facts", steps=data["heldout"]["steps"], held=held))
    else:
        st.info(t("ch14.no_shipped"), icon="📦")
    st.subheader(t("ch14.live_sub"))
    param("cl_seconds", 40, int, choices=LIVE_SECONDS)
    param("cl_lang", "both", str, choices=CAPTION_LANGS)
    c1, c2 = st.columns(2)
    c1.select_slider(t("ch14.live_seconds"), list(LIVE_SECONDS), key="cl_seconds", help=t("ch14.live_seconds_help"))
    c2.radio(
        t("ch14.caption_lang"),
        list(CAPTION_LANGS),
        key="cl_lang",
        horizontal=True,
        format_func=lambda k: t(f"ch14.lang_{k}"),
    )
    held = st.multiselect(
        t("ch14.holdout"),
        list(range(len(FASHION))),
        default=[FASHION.index(h) for h in DEFAULT_HOLDOUT],
        format_func=lambda i: _names()[i],
        max_selections=5,
        key="cl_holdout",
        help=t("ch14.holdout_help"),
    )
    if st.button(t("ch14.train"), key="cl_train", type="primary"):
        seconds, cap_lang, hold = SS["cl_seconds"], SS["cl_lang"], tuple(FASHION.en[i] for i in held)
        work = lambda p, r, s: view.train_live(seconds, hold, cap_lang, p, r, s)  # noqa: E731
        run_and_keep("ch14_clip", work, t("ch14.training"), "ch14_clip_live")
        live = SS.get("ch14_clip_live")
    state = last_job("ch14_clip")
    curves = {}
    if data:
        curves[t("ch14.curve_shipped")] = data["result"]["curve"]
    if live is not None:
        curves[t("ch14.curve_live")] = live.result.curve
        st.caption(t("ch14.live_result"))
        view.metrics_row(live.result.metrics)
        view.train_facts(live.result.to_json())
    elif state.rows:
        curves[t("ch14.curve_partial")] = state.rows
    if curves:
        c1, c2 = st.columns(2)
        with c1:
            view.loss_chart(curves)
        with c2:
            view.scale_chart(live.result.curve if live is not None else (data or {}).get("result", {}).get("curve", []))
    result = live.result.to_json() if live is not None else (data or {}).get("result")
    if result:
        view.heatmap(result)
    st.code("python -m engine clip --train --json", language="bash")
    notice("common.notice", t("ch14.notice_clip"))
    quiz("14", "clip")


def zero_shot_section(ch) -> None:
    section_header(ch, "zero_shot")
    pre = view.shipped()
    data = pre.data if pre else None
    if data:
        st.subheader(t("ch14.variants_sub"))
        view.variants_table(data["result"]["metrics"])
    held = (data or {}).get("heldout")
    if held:
        st.subheader(t("ch14.heldout_sub"))
        c1, c2 = st.columns(2)
        with c1:
            view.per_class_chart(held)
        with c2:
            view.confusion_chart(held)
        m = held["metrics"]
        to_held = view.pct(m.get("heldout_predicted_as_heldout"))
        st.caption(t("ch14.heldout_facts", acc=view.pct(m.get("heldout_class_accuracy")), to_held=to_held))
        if m.get("calibration_curve"):
            view.calibration_chart(m["calibration_curve"])
    st.subheader(t("ch14.try_sub"))
    clamped("zs_index", 0, 0, 9999, int)
    param("zs_lang", "ko" if lang() == "ko" else "en", str, choices=PROMPT_LANGS)
    param("zs_ensemble", False, bool)
    c1, c2 = st.columns([1, 2])
    with c1:
        st.number_input(t("ch14.image_index"), 0, 9999, key="zs_index", help=t("ch14.image_index_help"))
        upload = st.file_uploader(t("ch14.upload"), key="zs_upload", help=t("ch14.upload_help"))
    with c2:
        labels_text = st.text_input(
            t("ch14.labels"), value=", ".join(_names()), key=f"zs_labels_{lang()}", help=t("ch14.labels_help")
        )
        cc1, cc2 = st.columns(2)
        cc1.radio(
            t("ch14.prompt_lang"),
            list(PROMPT_LANGS),
            key="zs_lang",
            horizontal=True,
            format_func=lambda k: t(f"ch14.lang_{k}"),
        )
        cc2.toggle(t("ch14.ensemble"), key="zs_ensemble", help=t("ch14.ensemble_help"))
    with friendly_errors():
        from engine.multimodal import classify_zero_shot, decode_upload, image_to_text

        clip = view.shipped_clip()
        images = view.test_images()
        if upload is not None:
            decoded = decode_upload(upload.getvalue())
            image, caption = decoded.gray28, t("ch14.uploaded")
            view.upload_notes(decoded)
        else:
            i = min(SS["zs_index"], len(images) - 1)
            image, caption = images.images[i], t("ch14.test_image", i=i, name=_names()[int(images.labels[i])])
        labels = [x.strip() for x in labels_text.replace("，", ",").split(",") if x.strip()]
        langs = ("ko", "en") if SS["zs_lang"] == "both" else (SS["zs_lang"],)
        zs = classify_zero_shot(clip, image, labels, langs=langs, ensemble=SS["zs_ensemble"])
        c1, c2 = st.columns([1, 3])
        c1.image(view.big(image), caption=caption, width=view.PREVIEW)
        c1.caption(t("ch14.prediction", label=zs.labels[zs.predicted]))
        with c2:
            view.probability_chart(zs.labels, zs.probabilities, zs.cosines)
        with st.expander(t("ch14.prompts_used")):
            st.write(zs.prompts)
        st.caption(t("ch14.image_to_text"))
        it = image_to_text(clip, image, k=5, langs=langs)
        view.charts.table(
            [{t("ch14.col_caption"): x, "cos": round(c, 3)} for x, c in zip(it.texts, it.cosines, strict=True)]
        )
    st.subheader(t("ch14.scale_sub"))
    clamped("zs_scale", 100.0, 1.0, 100.0, float)
    st.slider(t("ch14.scale"), 1.0, 100.0, key="zs_scale", help=t("ch14.scale_help"))
    if data:
        demo = data["result"]["scale_demo"]
        st.caption(
            t(
                "ch14.scale_facts",
                right=view.num(demo["mean_cosine_right"]),
                wrong=view.num(demo["mean_cosine_wrong"]),
                learned=view.num(data["summary"]["logit_scale"], 1),
            )
        )
        c1, c2 = st.columns(2)
        with c1:
            view.scale_demo_chart(
                demo["clip_like_cosines"], [f"{t('ch14.caption_n')} {i + 1}" for i in range(5)], SS["zs_scale"]
            )
        with c2:
            names = view.class_names(data["result"])
            view.scale_demo_chart(demo["example_cosines"], names, SS["zs_scale"])
    notice("common.notice", t("ch14.notice_zero_shot"))
    quiz("14", "zero_shot")


def real_clip_section(ch) -> None:
    section_header(ch, "real_clip")
    from engine.multimodal import CLIP_HUB_FACTS, CLIP_HUB_ID

    view.charts.table(
        [{t("ch14.col_fact"): t(f"ch14.fact_{k}"), t("ch14.col_value"): str(v)} for k, v in CLIP_HUB_FACTS.items()]
    )
    st.code(t("ch14.hf_code"), language="python")
    c1, c2 = st.columns(2)
    if c1.button(t("ch14.hf_load", model=CLIP_HUB_ID), key="hf_hub"):
        with friendly_errors():
            from engine.multimodal import load_hf_clip

            hf = load_hf_clip(CLIP_HUB_ID)
            SS["ch14_hf"] = {"source": hf.source, "parameters": hf.parameters}
    if c2.button(t("ch14.hf_tiny"), key="hf_tiny", help=t("ch14.hf_tiny_help")):
        with friendly_errors():
            SS["ch14_hf_tiny"] = view.tiny_clip_demo(_names())
    if SS.get("ch14_hf"):
        st.success(t("ch14.hf_loaded", **SS["ch14_hf"]))
    tiny = SS.get("ch14_hf_tiny")
    if tiny:
        st.caption(t("ch14.hf_tiny_result", parameters=f"{tiny['parameters']:,}", scale=view.num(tiny["scale"], 2)))
        view.probability_chart(tiny["labels"], tiny["probabilities"], tiny["cosines"])
    notice("common.notice", t("ch14.notice_real_clip"))
    quiz("14", "real_clip")


def _missing_section(ch, section_id: str) -> None:
    section_header(ch, section_id)
    st.info(t("ch14.gen_missing"), icon="🚧")


def search_section(ch) -> None:
    section_header(ch, "search")
    pre = view.shipped()
    param("se_k", 10, int, choices=(5, 10, 20))
    param("se_photos", True, bool)
    query = st.text_input(t("ch14.query"), value=t("ch14.query_default"), key=f"se_query_{lang()}")
    c1, c2 = st.columns(2)
    c1.select_slider(t("ch14.k"), [5, 10, 20], key="se_k")
    c2.toggle(t("ch14.include_photos"), key="se_photos", help=t("ch14.include_photos_help"))
    with friendly_errors():
        from engine.multimodal import search_images

        index = view.image_index()
        hits = search_images(index, view.shipped_clip(), query, SS["se_k"], include_out_of_domain=SS["se_photos"])
        st.caption(t("ch14.index_facts", n=f"{index.count:,}", photos=len(index.photos)))
        view.hits_grid(index, hits)
    if pre and pre.data.get("search"):
        st.subheader(t("ch14.search_shipped"))
        view.search_table(pre.data["search"], view.class_names(pre.data["result"]))
    st.code('python -m engine clip-search "운동화 사진" --k 10', language="bash")
    notice("common.notice", t("ch14.notice_search"))
    quiz("14", "search")


ch = chapter_header("14")
clip_section(ch)
zero_shot_section(ch)
real_clip_section(ch)
if diffusion_section is not None:
    diffusion_section(ch)
else:
    _missing_section(ch, "diffusion")
if llava_section is not None:
    llava_section(ch)
else:
    _missing_section(ch, "llava")
search_section(ch)
show_code(ch)
