"""Presenter mode as the back row of a lecture room sees it: a 1920x1080 projector, presenter mode on (?present=true).

Chapters 1, 2 and 4 in Korean, measured in the real browser (tests/e2e/_browser.py PRESENTER_METRICS_JS): the title
is at least 1.5x body text and titles > section headings > body; every plotly tick, legend, axis and chart title is
drawn at 16 px or more; tables are not smaller than widget labels; no sidebar chapter name and no select value is
cut. Screenshots go to artifacts/presenter/after_<slug>.png (whole page) and after_<slug>_screen.png (the first
screen), the numbers to artifacts/presenter/measurements.json (next to the "before" numbers of commit 5e7ea92).
"""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest

from engine.core import catalog
from tests.e2e._browser import ROOT, RUN_TIMEOUT_S, assert_clean, presenter_metrics, screenshot_at, wait_idle
from ui import charts
from ui.layout import PRESENTER_ROOT_PX

SHOTS = ROOT / "artifacts" / "presenter"
PROJECTOR = {"width": 1920, "height": 1080}
CHAPTERS = ["01", "02", "04"]
MIN_CHART_PX = 16  # the smallest chart text the back row reads


def _record(slug: str, metrics: dict) -> None:
    path = SHOTS / "measurements.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault(slug, {})["after"] = metrics
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False))


@pytest.mark.e2e
@pytest.mark.parametrize("chapter_id", CHAPTERS)
def test_presenter_mode_reads_from_the_back(app_url, browser, chapter_id: str):
    chapter = catalog.chapter(chapter_id)
    context = browser.new_context(viewport=PROJECTOR)
    try:
        pg = context.new_page()
        pg.set_default_timeout(RUN_TIMEOUT_S * 1000)
        pg.goto(f"{app_url}/{chapter.slug}?lang=ko&present=true")
        wait_idle(pg)
        assert_clean(pg, chapter.title["ko"])
        m = presenter_metrics(pg)
        SHOTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(SHOTS / f"after_{chapter.slug}_screen.png"))
        screenshot_at(pg, SHOTS / f"after_{chapter.slug}.png", PROJECTOR["width"])
        _record(chapter.slug, m)
    finally:
        context.close()
    where = f"{chapter.slug} in presenter mode: {m}"

    assert m["root_px"] == PRESENTER_ROOT_PX, "the presenter style is not applied: " + where
    # titles > headings > body, and the title stands out
    assert m["body_px"] and m["title_px"] >= 1.5 * m["body_px"], where
    assert m["h2_px"] is None or m["title_px"] > m["h2_px"] > m["body_px"], where
    assert m["h3_px"] is None or (m["h2_px"] or m["title_px"]) > m["h3_px"] > m["body_px"], where
    # charts: every tick, legend entry, axis title and chart title at least MIN_CHART_PX
    if chapter_id in ("01", "02"):  # these two draw charts on load; chapter 4 only after a run or a shipped result
        assert m["charts"] > 0, where
    for key in ("tick_min_px", "legend_min_px", "axis_title_min_px", "chart_title_min_px", "annotation_min_px"):
        assert m[key] is None or m[key] >= MIN_CHART_PX, f"{key}: " + where
    # tables: canvas grids painted no smaller than the widget labels around them
    assert m["dataframe_font_min_px"] is None or m["dataframe_font_min_px"] >= m["widget_label_px"], where
    # nothing cut
    assert m["sidebar_links"] >= len(catalog.live_chapters()), where
    assert m["sidebar_cut"] == [], "sidebar names cut: " + where
    assert m["selects_cut"] == [], "select values cut: " + where


def test_presenter_chart_sizes_reach_the_figure():
    """The figure side of it (no browser): ui.charts.style sets every font the browser test measures."""
    fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 2], text=["1", "2"]))
    fig.update_layout(title="t", margin={"t": 40}, height=300)
    fig.add_annotation(text="note", x="a", y=1)
    charts.style(fig, presenter=True)
    f = charts.PRESENTER_FONT
    assert fig.layout.xaxis.tickfont.size == fig.layout.yaxis.tickfont.size == f["tick"] >= MIN_CHART_PX
    assert fig.layout.legend.font.size == f["legend"] >= MIN_CHART_PX
    assert fig.layout.title.font.size == f["title"]
    assert fig.layout.annotations[0].font.size == f["annotation"] >= MIN_CHART_PX
    assert fig.layout.uniformtext.minsize == f["tick"]
    assert fig.layout.margin.t >= 2 * f["title"]  # the bigger title is not cut at the top
    assert fig.layout.height == int(300 * charts.PRESENTER_HEIGHT)
