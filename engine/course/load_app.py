"""A class of learners against a running app: `python -m engine load-app --url URL --sessions N --minutes M --json`.

Each simulated learner is a real Streamlit session: it speaks the app's own websocket protocol (`/_stcore/stream`,
the protobuf `BackMsg`/`ForwardMsg` that the browser's frontend exchanges with the server), so the server does
exactly the work a browser tab causes — script reruns, widget state, element deltas — without the cost of 30
Chromium tabs on the same 2 cores, which would measure the load tool instead of the app. A rerun is timed from the
`rerun_script` message to the server's `script_finished`; an exception element in the page, a script that does not
finish within the timeout, or a dropped connection is an error.

The scripted learner path (on one chapter page, by default chapter 16 whose widgets are cheap to recompute):
open the chapter, move a slider, run a light demo (a button whose work takes a second), answer a quiz; repeated with
a think time until the minutes are over. `heavy_sessions` of the learners (default 1) also press a training button
once, so the light actions are measured while a heavy run is queued or running. Widgets are found by the key the
page gives them (Streamlit's widget id ends in it), so the path does not depend on the UI language.

Server memory: the resident set of the process that listens on the URL's port, with its children (the llama.cpp
servers, training workers), sampled every second; the tool must run on the app's machine for that (elsewhere RSS is
reported as null).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from urllib.parse import urlparse

# Not a page: the load tool is a client of the app's wire protocol, whose messages are Streamlit's protobufs
# (the one place engine/ touches streamlit; the import contract in pyproject.toml names this module as the exception).
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from engine.core.aio import run_coroutine
from engine.core.errors import UserError

MAX_SESSIONS = 500
MAX_MINUTES = 120.0
ACTION_TIMEOUT_S = 120.0


class LoadTestError(UserError):
    default_code = "load.error"


@dataclass(frozen=True)
class LearnerPath:
    """The page and the widget keys one simulated learner touches (defaults: chapter 16, see pages/16_mamba.py)."""

    page: str = "mamba"  # the page's url path
    slider: str = "s4_n"  # a slider: moved to a random value within its range
    light_button: str = "mb_run"  # a light demo: our Mamba vs transformers' on a tiny config (~1 s)
    quiz: str = "quiz_16_s4_0"  # a predict-then-reveal question (a radio)
    heavy_button: str = "tr_mamba"  # a training run (a heavy job)


@dataclass
class Rerun:
    seconds: float
    error: str | None
    widgets: dict[str, object] = field(default_factory=dict)  # key -> the widget's proto (its id, range, options)


@dataclass(frozen=True)
class ActionStats:
    action: str
    count: int
    p50_s: float | None
    p95_s: float | None
    errors: int


@dataclass(frozen=True)
class LoadReport:
    actions: list[ActionStats]
    sessions: int
    errors: int
    max_rss_bytes: int | None
    rss_samples: list[tuple[float, int]]  # (seconds since start, bytes)
    minutes: float
    url: str
    error_examples: list[str]

    def lines(self) -> list[dict]:
        """The CLI's JSON lines: one object per action, then the summary."""
        summary = {k: v for k, v in asdict(self).items() if k != "actions"}
        return [asdict(a) for a in self.actions] + [summary]


def _key(widget_id: str) -> str:
    # "$$ID-<hash>-<user key>"; widgets without a user key end in "None"
    return widget_id.split("-", 2)[-1] if widget_id.startswith("$$ID-") else widget_id


class StreamlitSession:
    """One browser tab's conversation with the server, over the app's websocket."""

    def __init__(self, url: str, timeout: float = ACTION_TIMEOUT_S):
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise LoadTestError("load.bad_url", url=url)
        scheme = "wss" if parsed.scheme == "https" else "ws"
        self.ws_url = f"{scheme}://{parsed.netloc}{parsed.path.rstrip('/')}/_stcore/stream"
        self.timeout = timeout
        self.pages: dict[str, str] = {}  # url path -> page_script_hash
        self.page_hash = ""
        self.states: dict[str, object] = {}  # widget id -> WidgetState kept across reruns, as the frontend does
        self.widgets: dict[str, object] = {}
        self.fragments: dict[str, str] = {}  # widget key -> the id of the fragment (st.fragment) that drew it
        self._fragment = ""  # the fragment the next rerun is for ("" = the whole page), as the frontend sends it
        self._ws = None

    async def connect(self) -> Rerun:
        import websockets

        self._ws = await websockets.connect(
            self.ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=self.timeout
        )
        return await self.rerun()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def open_page(self, path: str) -> Rerun:
        if path not in self.pages:
            return Rerun(0.0, f"no page {path!r} (pages: {', '.join(sorted(self.pages)) or 'none'})")
        self.page_hash, self.states = self.pages[path], {}
        return await self.rerun()

    def set_widget(self, key: str, setter: Callable) -> str | None:
        """Give the widget `key` a new state (setter(state, proto)); None, or why it could not be set."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        proto = self.widgets.get(key)
        if proto is None:
            return f"no widget {key!r} on the page"
        state = WidgetState(id=proto.id)
        setter(state, proto)
        self.states[proto.id] = state
        # a widget inside an st.fragment reruns only its fragment, as the browser asks
        self._fragment = self.fragments.get(key, "")
        return None

    async def rerun(self) -> Rerun:
        msg = BackMsg()
        client = msg.rerun_script
        client.page_script_hash = self.page_hash
        client.widget_states.widgets.extend(self.states.values())
        client.fragment_id, fragment, self._fragment = self._fragment, self._fragment, ""
        # a button's trigger fires once: the frontend sends it with one rerun only
        self.states = {k: s for k, s in self.states.items() if s.WhichOneof("value") != "trigger_value"}
        start = time.perf_counter()
        try:
            await self._ws.send(msg.SerializeToString())
            return await asyncio.wait_for(self._until_finished(start, fragment), self.timeout)
        except TimeoutError:
            return Rerun(time.perf_counter() - start, f"no script_finished within {self.timeout:.0f} s")
        except Exception as exc:  # a dropped connection is the learner's error, not the tool's crash
            return Rerun(time.perf_counter() - start, f"{type(exc).__name__}: {exc}"[:300])

    async def _until_finished(self, start: float, fragment: str = "") -> Rerun:
        # a fragment rerun redraws only the fragment's widgets: the others stay as the last full run drew them
        widgets: dict[str, object] = dict(self.widgets) if fragment else {}
        if not fragment:
            self.fragments = {}
        error = None
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(await self._ws.recv())
            kind = fwd.WhichOneof("type")
            if kind == "navigation":
                self.pages = {p.url_pathname: p.page_script_hash for p in fwd.navigation.app_pages}
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                element = fwd.delta.new_element
                etype = element.WhichOneof("type")
                proto = getattr(element, etype)
                if etype == "exception":
                    error = error or f"exception on the page: {proto.type}: {proto.message}"[:300]
                elif getattr(proto, "id", ""):
                    widgets[_key(proto.id)] = proto
                    if fwd.delta.fragment_id:
                        self.fragments[_key(proto.id)] = fwd.delta.fragment_id
            elif kind == "script_finished":
                self.widgets = widgets
                if fwd.script_finished == fwd.FINISHED_WITH_COMPILE_ERROR:
                    error = error or "the page did not compile"
                return Rerun(time.perf_counter() - start, error, widgets)


def _slider(rng: random.Random) -> Callable:
    def set_value(state, proto) -> None:
        lo, hi = proto.min, proto.max
        value = rng.uniform(lo, hi)
        if proto.step:
            value = lo + round((value - lo) / proto.step) * proto.step
        state.double_array_value.data.append(min(hi, max(lo, value)))

    return set_value


def _radio(rng: random.Random) -> Callable:
    def set_value(state, proto) -> None:
        # Streamlit sends a radio's choice as the option's text (string_value), not its index
        if proto.options:
            state.string_value = rng.choice(list(proto.options))

    return set_value


def _press(state, proto) -> None:
    state.trigger_value = True


class _Recorder:
    def __init__(self):
        self.times: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.examples: list[str] = []
        self.lock = threading.Lock()

    def add(self, action: str, run: Rerun) -> None:
        with self.lock:
            self.times.setdefault(action, []).append(run.seconds)
            if run.error:
                self.errors[action] = self.errors.get(action, 0) + 1
                if len(self.examples) < 10:
                    self.examples.append(f"{action}: {run.error}")


async def _learner(
    n: int, url: str, path: LearnerPath, deadline: float, heavy: bool, think_s: float, rec: _Recorder, seed: int
) -> None:
    rng = random.Random(seed * 1000 + n)
    session = StreamlitSession(url)
    try:
        rec.add("connect", await session.connect())
    except Exception as exc:
        rec.add("connect", Rerun(0.0, f"{type(exc).__name__}: {exc}"[:300]))
        return
    try:
        first = True  # every learner walks the whole path once, however short the run
        while first or time.monotonic() < deadline:
            rec.add("open_chapter", await session.open_page(path.page))
            steps = [
                ("move_slider", path.slider, _slider(rng)),
                ("light_demo", path.light_button, _press),
                ("answer_quiz", path.quiz, _radio(rng)),
            ]
            if heavy and first:
                steps.insert(1, ("heavy_train", path.heavy_button, _press))
            for action, key, setter in steps:
                if not first and time.monotonic() >= deadline:
                    break
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think_s)
                problem = session.set_widget(key, setter)
                rec.add(action, Rerun(0.0, problem) if problem else await session.rerun())
            first = False
    finally:
        await session.close()


def _listener_tree_rss(port: int) -> int | None:
    import psutil

    try:
        pids = {c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port and c.pid}
    except (psutil.AccessDenied, OSError):
        return None
    total = 0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
        except psutil.Error:
            continue
    return total or None


def _p(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    if len(xs) == 1:
        return round(xs[0], 3)
    return round(statistics.quantiles(xs, n=100, method="inclusive")[q - 1], 3)


def run_load(
    url: str,
    sessions: int = 30,
    minutes: float = 2.0,
    *,
    path: LearnerPath | None = None,
    heavy_sessions: int = 1,
    think_s: float = 2.0,
    ramp_s: float = 10.0,
    seed: int = 0,
) -> LoadReport:
    """Drive `sessions` simulated learners against the app at `url` for `minutes`; timings per action."""
    if not 1 <= sessions <= MAX_SESSIONS:
        raise LoadTestError("input.out_of_range", name="sessions", low=1, high=MAX_SESSIONS, value=sessions)
    if not 0 < minutes <= MAX_MINUTES:
        raise LoadTestError("input.out_of_range", name="minutes", low=0, high=MAX_MINUTES, value=minutes)
    path = path or LearnerPath()
    port = urlparse(url).port or (443 if url.startswith("https") else 80)
    rec = _Recorder()
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            rss = _listener_tree_rss(port)
            if rss is not None:
                samples.append((round(time.monotonic() - t0, 1), rss))
            stop.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    async def main() -> None:
        deadline = time.monotonic() + minutes * 60
        tasks = []
        for n in range(sessions):
            tasks.append(asyncio.create_task(_learner(n, url, path, deadline, n < heavy_sessions, think_s, rec, seed)))
            await asyncio.sleep(ramp_s / sessions)  # learners arrive over the first seconds, as a class does
        await asyncio.gather(*tasks)

    try:
        run_coroutine(main)
    finally:
        stop.set()
        sampler.join(timeout=5)
    order = ["connect", "open_chapter", "heavy_train", "move_slider", "light_demo", "answer_quiz"]
    actions = [
        ActionStats(a, len(rec.times[a]), _p(rec.times[a], 50), _p(rec.times[a], 95), rec.errors.get(a, 0))
        for a in order
        if a in rec.times
    ]
    return LoadReport(
        actions=actions,
        sessions=sessions,
        errors=sum(rec.errors.values()),
        max_rss_bytes=max((b for _, b in samples), default=None),
        rss_samples=samples,
        minutes=minutes,
        url=url,
        error_examples=rec.examples,
    )
