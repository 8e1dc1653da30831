"""Shared pieces of the real-browser tests: the running app, Chromium, and waiting for Streamlit to settle."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "artifacts" / "screenshots"
LOG = ROOT / "artifacts" / "e2e-streamlit.log"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
WIDTH = 1400
MAX_SHOT_HEIGHT = 16_000  # Chromium cannot capture much taller pages in one image
RUN_TIMEOUT_S = 240  # a first model load in a fresh server process, on busy cores
QUIET_S = 3.0  # the page counts as finished once the "running" widget has been gone this long
VALUE_WAIT_MS = 30_000  # a drawn widget whose value from the session or the URL has not arrived yet

BUSY = '[data-testid="stStatusWidget"]'
EXCEPTION = '[data-testid="stException"]'
# The page body; with st.chat_input on a page Streamlit drops the stMain wrapper, this container stays.
TITLE = '[data-testid="stMainBlockContainer"] h1'


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app():
    """`streamlit run app.py` on a free port; stopped at exit.

    LLMLAB_E2E_URL=http://127.0.0.1:8501 points the tests at an app that is already running instead.
    """
    if os.environ.get("LLMLAB_E2E_URL"):
        yield os.environ["LLMLAB_E2E_URL"].rstrip("/")
        return
    port = _free_port()
    LOG.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    with open(LOG, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    SERVER["pid"] = proc.pid
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}:\n{_log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer /_stcore/health within 120 s:\n{_log_tail()}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()  # SIGTERM: streamlit shuts down and its atexit stops the llama.cpp server it started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


SERVER: dict[str, int] = {}  # the pid of the app this session started (none when LLMLAB_E2E_URL points elsewhere)
QUIET_CPU = 0.25  # cores: below this the app and its model servers count as idle
SERVER_SETTLE_S = 180


def server_cpu_seconds() -> float | None:
    """CPU seconds used so far by the app and every process it started (the llama.cpp servers)."""
    import psutil

    pid = SERVER.get("pid")
    if pid is None:
        return None
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            times = p.cpu_times()
            total += times.user + times.system
    return total


def wait_server_quiet(timeout: float = SERVER_SETTLE_S) -> float:
    """Wait until the app server is idle: a session a test closed keeps its script running until the next Streamlit
    call, and a llama.cpp server finishes the answer it was writing, so work a test started can still be using the
    cores when the next test begins. Returns the seconds waited (the caller reports long waits)."""
    t0 = time.monotonic()
    last = server_cpu_seconds()
    while last is not None and time.monotonic() - t0 < timeout:
        time.sleep(1.0)
        now = server_cpu_seconds()
        if now is None or now - last < QUIET_CPU:
            break
        last = now
    return time.monotonic() - t0


def _log_tail() -> str:
    return LOG.read_text(errors="replace")[-3000:] if LOG.exists() else "(no log)"


def wait_idle(pg, timeout: float = RUN_TIMEOUT_S) -> None:
    """Wait until the script has run: something is drawn and the status widget was absent for QUIET_S."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while True:
        drawn = pg.locator(f"{TITLE}, {EXCEPTION}").count() > 0
        busy = pg.locator(BUSY).count() > 0
        now = time.monotonic()
        if drawn and not busy:
            quiet_since = quiet_since or now
            if now - quiet_since >= QUIET_S:
                return
        else:
            quiet_since = None
        if now > deadline:
            SHOTS.mkdir(parents=True, exist_ok=True)
            shot = SHOTS / f"FAILED-{int(time.time())}.png"
            pg.screenshot(path=str(shot), full_page=True)
            raise AssertionError(f"{pg.url} still running after {timeout:.0f} s (drawn={drawn}, busy={busy}): {shot}")
        time.sleep(0.25)


def assert_clean(pg, title: str) -> None:
    errors = pg.locator(EXCEPTION).all_inner_texts()
    assert not errors, f"{pg.url} shows an exception:\n" + "\n---\n".join(errors)
    h1 = pg.locator(TITLE).first.inner_text().strip()
    assert h1 == title, f"{pg.url}: h1 {h1!r} != catalog title {title!r}"


def screenshot(pg, name: str) -> Path:
    """Grow the window to the content so the shot holds the whole page, then save it."""
    height = pg.evaluate(
        "() => { const c = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
        " return c ? c.scrollHeight : document.body.scrollHeight; }"
    )
    pg.set_viewport_size({"width": WIDTH, "height": max(900, min(int(height) + 120, MAX_SHOT_HEIGHT))})
    pg.wait_for_timeout(1500)  # charts re-layout to the new size
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    return path


# What a projector's back row sees, measured in the page (tests/e2e/test_presenter.py): the px size text is drawn
# at (the parent of each text node, so a rule that shrinks a heading's inner span is caught), plotly's SVG text,
# sidebar names and select values that overflow their box, and the font glide-data-grid paints table cells with.
PRESENTER_METRICS_JS = """
() => {
  const main = document.querySelector('[data-testid="stMainBlockContainer"]');
  const sidebar = document.querySelector('[data-testid="stSidebar"]');
  const px = (el) => parseFloat(getComputedStyle(el).fontSize);
  const texts = (root) => {
    const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const nodes = [];
    for (let n = walk.nextNode(); n; n = walk.nextNode()) if (n.textContent.trim()) nodes.push(n);
    return nodes;
  };
  const textPx = (root) => texts(root).map((n) => px(n.parentElement));
  const median = (xs) => {
    if (!xs.length) return null;
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  };
  const min = (xs) => (xs.length ? Math.min(...xs) : null);
  const max = (xs) => (xs.length ? Math.max(...xs) : null);
  const heading = (tag) =>
    max([...main.querySelectorAll(tag)].flatMap((h) => textPx(h.querySelector('[data-heading-text]') || h)));
  // Body text: paragraphs of st.markdown / st.write (labels, options, buttons, metrics and alerts are not).
  const paragraphs = [...main.querySelectorAll('[data-testid="stMarkdown"] [data-testid="stMarkdownContainer"] p')]
    .filter((p) => !p.closest('h1, h2, h3, h4, h5, h6, [data-testid="stAlert"], [data-testid="stExpander"] summary'));
  const body = paragraphs.flatMap(textPx);
  const plots = [...main.querySelectorAll('.js-plotly-plot')];
  // SVG text as drawn: its font-size times the scale of its transforms (plotly shrinks text inside bars that way)
  const drawnPx = (el) => {
    const m = el.getScreenCTM();
    return Math.round(px(el) * (m ? Math.hypot(m.a, m.b) : 1) * 100) / 100;
  };
  const svgText = (sel) => plots.flatMap((plot) => [...plot.querySelectorAll(sel)]).map(drawnPx);
  // Text is cut when its laid-out box reaches past an ancestor that hides overflow (an ellipsis hides it too):
  // the rectangles of the text itself, not scrollWidth, which also counts margins and icon glyphs.
  const clipped = (node, stop) => {
    const range = document.createRange();
    range.selectNodeContents(node);
    const rects = [...range.getClientRects()];
    for (let el = node.parentElement; el; el = el.parentElement) {
      const st = getComputedStyle(el);
      const box = el.getBoundingClientRect();
      const hideX = st.overflowX !== 'visible' || el === stop;
      // a container that scrolls (the sidebar on a 1080 px projector) holds its lower links below the fold:
      // reachable, not cut; only one that hides vertical overflow outright cuts them
      const hideY = st.overflowY === 'hidden' || st.overflowY === 'clip';
      for (const r of rects) {
        if (hideX && (r.right > box.right + 1 || r.left < box.left - 1)) return true;
        if (hideY && (r.bottom > box.bottom + 1 || r.top < box.top - 1)) return true;
      }
      if (el === stop) return false;
    }
    return false;
  };
  const links = [...document.querySelectorAll('[data-testid="stSidebarNavLink"]')];
  const linkCut = links.filter((a) =>
    texts(a).some((n) => !n.parentElement.closest('[data-testid="stIconMaterial"]') && clipped(n, sidebar)));
  // A text input cannot be measured with a range: draw its value with its own font and compare with the room.
  const ctx = document.createElement('canvas').getContext('2d');
  const selects = [...main.querySelectorAll('[data-testid="stSelectbox"] input')].filter((i) => i.offsetParent);
  const selectCut = selects.filter((i) => {
    const st = getComputedStyle(i);
    ctx.font = st.font;
    const room = i.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight);
    return ctx.measureText(i.value).width > room + 1;
  });
  // glide-data-grid paints cells on a canvas with the font it was given at mount (an inline CSS variable).
  const grids = [...main.querySelectorAll('[data-testid="stDataFrame"]')].map((df) => {
    const styled = [...df.querySelectorAll('*')].find((el) => el.style?.getPropertyValue('--gdg-base-font-style'));
    const m = (styled ? styled.style.getPropertyValue('--gdg-base-font-style') : '').match(/([0-9.]+)px/);
    return m ? parseFloat(m[1]) * (parseFloat(getComputedStyle(df).zoom) || 1) : null;
  }).filter((x) => x !== null);
  const htmlTable = [...main.querySelectorAll('[data-testid="stTable"] td, [data-testid="stTable"] th')];
  return {
    root_px: px(document.documentElement),
    title_px: heading('h1'), h2_px: heading('h2'), h3_px: heading('h3'),
    body_px: median(body), body_min_px: min(body),
    widget_label_px: median([...main.querySelectorAll('[data-testid="stWidgetLabel"]')].flatMap(textPx)),
    charts: plots.length,
    tick_min_px: min(svgText('.xtick text, .ytick text')),
    legend_min_px: min(svgText('.legendtext')),
    chart_title_min_px: min(svgText('.gtitle')),
    axis_title_min_px: min(svgText('.xtitle, .ytitle')),
    annotation_min_px: min(svgText('.annotation-text')),
    trace_text_min_px: min(svgText('.bartext, .textpoint text')),
    dataframes: main.querySelectorAll('[data-testid="stDataFrame"]').length,
    dataframe_font_min_px: min(grids),
    html_table_min_px: min(htmlTable.flatMap(textPx)),
    sidebar_px: sidebar ? Math.round(sidebar.getBoundingClientRect().width) : null,
    sidebar_links: links.length,
    sidebar_cut: linkCut.map((a) => a.innerText.trim().split('\\n').pop()),
    selects: selects.length,
    selects_cut: selectCut.map((i) => i.value),
  };
}
"""


def presenter_metrics(pg) -> dict:
    """Measured sizes on the open page (see PRESENTER_METRICS_JS); values in CSS px."""
    return pg.evaluate(PRESENTER_METRICS_JS)


def screenshot_at(pg, path: Path, width: int) -> Path:
    """A full-length shot at a given window width (`screenshot` uses WIDTH); the viewport height is put back."""
    before = pg.viewport_size
    height = pg.evaluate(
        "() => { const c = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
        " return c ? c.scrollHeight : document.body.scrollHeight; }"
    )
    pg.set_viewport_size({"width": width, "height": max(before["height"], min(int(height) + 120, MAX_SHOT_HEIGHT))})
    pg.wait_for_timeout(1500)  # charts re-layout to the new size
    path.parent.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(path), full_page=True)
    pg.set_viewport_size(before)
    return path
