"""The monkey test: touch the controls the way a learner does, in real Chromium, and never see an exception box.

On every live page, in Korean and English: click the language that is already selected (the crash this test was
written for) and the other one, toggle presenter mode on and off, then touch the page's controls — radios, select
boxes, segmented controls, checkboxes and toggles, sliders to their minimum and maximum, number inputs with absurd
values, text areas and inputs empty and very long, and buttons (a run still going after a few seconds is stopped
with its ⏹ button when it has one). After every touch the page must settle without a `stException` box.

Default: each page in one of the two languages (alternating), a seeded sample of SAMPLE controls on it (a few
minutes in all). `--monkey-full` (or
`make test-monkey-full`) touches every control. LLMLAB_MONKEY_SEED picks another sample. Every touch is logged to
artifacts/monkey/<page>-<lang>.json with how long the page took to settle.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass

import pytest

from engine.core import catalog
from tests.e2e._browser import BUSY, CHROMIUM, EXCEPTION, ROOT, RUN_TIMEOUT_S, SHOTS, wait_idle
from ui.i18n import LANGS

pytestmark = pytest.mark.e2e

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (make browser installs Debian's chromium)", allow_module_level=True)

SAMPLE = 3  # controls per page and language in the default run
SEED = int(os.environ.get("LLMLAB_MONKEY_SEED", "0"))
LONG_TEXT = "가나다라 마바사 아자차카 타파하. " * 600  # ~11,000 characters
ACTION_TIMEOUT_MS = 10_000  # a control hidden in a closed expander cannot be clicked: skip it, don't wait 4 min
STOP_AFTER_S = 6.0  # a run still busy after this long is stopped with its ⏹ button
LOGS = ROOT / "artifacts" / "monkey"
MAIN = '[data-testid="stMain"], [data-testid="stMainBlockContainer"]'
SIDEBAR = '[data-testid="stSidebar"]'

# (kind, selector inside the main area). Order is the reading order of a page section: choose, set, then run.
CONTROLS = [
    ("tab", '[data-baseweb="tab"]'),
    ("radio", '[data-testid="stRadio"]'),
    ("select", '[data-testid="stSelectbox"]'),
    ("segmented", '[data-testid="stButtonGroup"]'),
    ("checkbox", '[data-testid="stCheckbox"]'),
    ("slider", '[data-testid="stSlider"]'),
    ("number", '[data-testid="stNumberInput"]'),
    ("textarea", '[data-testid="stTextArea"]'),
    ("textinput", '[data-testid="stTextInput"]'),
    ("button", '[data-testid="stButton"], [data-testid="stFormSubmitButton"]'),
]


@dataclass
class Touch:
    kind: str
    index: int
    action: str
    label: str
    settle_s: float
    stopped: bool = False


def settle(pg, timeout: float = RUN_TIMEOUT_S) -> tuple[float, bool]:
    """Wait for the rerun a touch started to finish. Returns (seconds, whether a ⏹ button was pressed).

    The status widget shows up ~0.5-1 s after an interaction: wait for it to appear (or not), then to be gone.
    """
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.5 and pg.locator(BUSY).count() == 0:
        pg.wait_for_timeout(100)
    stopped = False
    quiet_since = None
    while True:
        now = time.monotonic()
        if pg.locator(BUSY).count() == 0:
            quiet_since = quiet_since or now
            if now - quiet_since >= 0.8:
                return now - t0, stopped
        else:
            quiet_since = None
            if not stopped and now - t0 > STOP_AFTER_S:
                # (not f"{MAIN} button...": MAIN is a selector list, and the comma would make that match the
                # whole stMain area, whose centre was clicked instead of ⏹; found in the stuck runs of stop 24)
                stop = pg.locator(MAIN).locator('button:has-text("⏹")')
                if stop.count():
                    stop.first.click()
                    stopped = True
        if now - t0 > timeout:
            SHOTS.mkdir(parents=True, exist_ok=True)
            shot = SHOTS / f"MONKEY-STUCK-{int(time.time())}.png"
            pg.screenshot(path=str(shot), full_page=True)
            raise AssertionError(f"{pg.url}: still running {timeout:.0f} s after a touch (stopped={stopped}): {shot}")
        pg.wait_for_timeout(150)


def assert_no_exception(pg, what: str) -> None:
    errors = pg.locator(EXCEPTION).all_inner_texts()
    if errors:
        SHOTS.mkdir(parents=True, exist_ok=True)
        shot = SHOTS / f"MONKEY-FAILED-{int(time.time())}.png"
        pg.screenshot(path=str(shot), full_page=True)
        raise AssertionError(f"{pg.url}: exception after {what} ({shot}):\n" + "\n---\n".join(errors)[:4000])


def _label(el) -> str:
    try:
        return el.inner_text(timeout=2000).strip().split("\n")[0][:60]
    except Exception:  # a control that vanished in a rerun has no label to report
        return "?"


def plan(pg, kind: str, el, rng: random.Random) -> list[tuple[str, object]]:
    """What a learner would do to one control: (action, do-it) pairs; each is followed by a settle and a check."""
    if kind == "tab":
        return [("open", lambda: el.click())]
    if kind == "radio":
        options = el.locator("label")
        n = options.count()
        return [("pick", lambda: options.nth(rng.randrange(n)).click())] if n else []
    if kind == "select":
        return [("open+pick", lambda: _pick_select(pg, el, rng))]
    if kind == "segmented":
        buttons = el.locator("button")
        n = buttons.count()
        return [("click", lambda: buttons.nth(rng.randrange(n)).click())] if n else []
    if kind == "checkbox":
        return [("toggle", lambda: el.locator("label").first.click())]
    if kind == "slider":
        thumb = el.locator('[role="slider"]').first
        return [
            ("max", lambda: (thumb.focus(), thumb.press("End"))),
            ("min", lambda: (thumb.focus(), thumb.press("Home"))),
        ]
    if kind == "number":
        box = el.locator("input").first
        value = rng.choice(["999999999", "-999999999", "0"])
        return [(f"type {value}", lambda: (box.fill(value), box.press("Enter")))]
    if kind in ("textarea", "textinput"):
        box = el.locator("textarea, input").first
        submit = "Control+Enter" if kind == "textarea" else "Enter"
        return [
            (f"type {len(text)} chars", lambda text=text: (box.fill(text), box.press(submit)))
            for text in ("", LONG_TEXT)
        ]
    if kind == "button":
        button = el.locator("button").first
        if "⏹" in _label(el) or not button.is_enabled():
            return []
        return [("click", lambda: button.click())]
    return []


def _pick_select(pg, el, rng: random.Random) -> None:
    el.locator('[data-baseweb="select"]').first.click()
    options = pg.locator('[role="listbox"] [role="option"]')
    options.first.wait_for(timeout=5000)
    options.nth(rng.randrange(options.count())).click()


def touch_sidebar(pg, lang: str, log: list[Touch]) -> None:
    """The language button already selected, the other one, back; presenter mode on and off."""
    names = {"ko": "한국어", "en": "English"}
    other = "en" if lang == "ko" else "ko"
    for target in (lang, other, lang):  # the first click is the one that used to crash the page
        button = pg.locator(f'{SIDEBAR} [data-testid="stButtonGroup"] button:has-text("{names[target]}")').first
        t0 = time.monotonic()
        button.click()
        seconds, _ = settle(pg)
        assert_no_exception(pg, f"clicking the language button {names[target]}")
        log.append(Touch("language", 0, f"click {target}", names[target], round(seconds, 2)))
        assert time.monotonic() - t0 < RUN_TIMEOUT_S
    selected = pg.locator(
        f'{SIDEBAR} [data-testid="stButtonGroup"] button[aria-checked="true"], '
        f'{SIDEBAR} [data-testid="stButtonGroup"] button[kind*="Active"]'
    )
    if selected.count():
        assert names[lang] in selected.first.inner_text(), "the language did not stay selected"
    toggle = pg.locator(f'{SIDEBAR} [data-testid="stCheckbox"] label').first
    for action in ("presenter on", "presenter off"):
        toggle.click()
        seconds, _ = settle(pg)
        assert_no_exception(pg, action)
        log.append(Touch("presenter", 0, action, "presenter", round(seconds, 2)))


PAGES = [pytest.param(c.slug, id=c.slug) for c in catalog.live_chapters()]
# The default run visits each page in one language, alternating (which one rotates with the seed); --monkey-full
# visits both. The sidebar's language buttons are clicked on every visit either way.
SAMPLED_LANG = {c.slug: LANGS[(i + SEED) % len(LANGS)] for i, c in enumerate(catalog.live_chapters())}
# ... and, to keep `make test` near 30 minutes on 2 cores, only PAGES_PER_RUN of the pages (drawn with the seed).
# LLMLAB_MONKEY_PAGES=all (`make test-monkey`) visits every page; --monkey-full implies it.
_PAGES_ENV = os.environ.get("LLMLAB_MONKEY_PAGES", "6")
PAGES_PER_RUN = len(SAMPLED_LANG) if _PAGES_ENV == "all" else int(_PAGES_ENV)
SAMPLED_PAGES = set(random.Random(f"pages-{SEED}").sample(sorted(SAMPLED_LANG), min(PAGES_PER_RUN, len(SAMPLED_LANG))))


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("slug", PAGES)
def test_monkey(app_url, page, request, slug: str, lang: str):
    full = request.config.getoption("--monkey-full")
    if not full and SAMPLED_LANG[slug] != lang:
        pytest.skip(f"sampled out: {slug} runs in {SAMPLED_LANG[slug]} by default (--monkey-full runs both)")
    if not full and slug not in SAMPLED_PAGES:
        pytest.skip(f"sampled out: {PAGES_PER_RUN} pages this run (LLMLAB_MONKEY_PAGES=all or make test-monkey: all)")
    rng = random.Random(f"{SEED}-{slug}-{lang}")
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{app_url}/{slug}?lang={lang}")
    wait_idle(page)
    assert_no_exception(page, "loading the page")
    # Waits for reruns poll on their own (settle); a click or a fill that cannot happen within this is skipped.
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    log: list[Touch] = []
    touch_sidebar(page, lang, log)

    # What can be touched, as (kind, index); indexes are re-resolved before each touch because reruns add and
    # remove elements. The sample is drawn once from what the page shows after it first settles.
    targets = [
        (kind, i)
        for kind, sel in CONTROLS
        for i, el in enumerate(page.locator(f"{MAIN} >> {sel}").all())
        if el.is_visible()  # what a learner can see; tabs and expanders are touched to show the rest
    ]
    if not full:
        targets = sorted(rng.sample(targets, min(SAMPLE, len(targets))), key=targets.index)
    for kind, i in targets:
        sel = dict(CONTROLS)[kind]
        found = page.locator(f"{MAIN} >> {sel}")
        if i >= found.count():
            continue  # gone after an earlier touch changed the page
        el = found.nth(i)
        el.scroll_into_view_if_needed()
        label = _label(el)
        for action, do in plan(page, kind, el, rng):
            print(f"[monkey] {slug}-{lang}: {action} on {kind} #{i} ({label!r})", flush=True)  # shown when it fails
            try:
                do()
            except Exception as exc:  # a control hidden or replaced by an earlier rerun is not a page failure
                if "Timeout" in type(exc).__name__ or "not visible" in str(exc) or "detached" in str(exc):
                    break
                raise
            seconds, stopped = settle(page)
            assert_no_exception(page, f"{action} on {kind} #{i} ({label!r})")
            log.append(Touch(kind, i, action, label, round(seconds, 2), stopped))
    LOGS.mkdir(parents=True, exist_ok=True)
    (LOGS / f"{slug}-{lang}.json").write_text(
        json.dumps(
            {"page": slug, "lang": lang, "full": full, "seed": SEED, "touches": [asdict(t) for t in log]},
            indent=1,
            ensure_ascii=False,
        )
    )
    assert log, "nothing was touched"
