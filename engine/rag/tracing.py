"""Tracing every RAG call into a real MLflow tracking store a learner can open (`mlflow ui`).

Why MLflow: the book logs ch.9 calls to W&B (hosted, needs an account and the network). MLflow 3's tracing is the
same idea — one trace per call, one span per step, inputs/outputs/attributes on each span — written into a store
on this machine, and the store is a normal MLflow tracking store: chapter 13 (LLMOps) logs its experiments and
registers models into the same file. W&B (`wandb`) stays the book's hosted option; a remote MLflow server is one
setting away (`LLMLAB_TRACKING_URI=http://host:5000`).

    with start_trace("rag.query", {"question": q}, tags={"corpus": "constitution", "model": "instruct"}) as tr:
        with tr.span("retrieve", "RETRIEVER", {"query": q}) as sp:
            sp.set_outputs(as_documents(hits))           # MLflow's retriever shape: the UI lists the documents
        ...
        tr.set_tags({"cache": "miss"}); tr.set_outputs({"answer": ..., "sources": [...], ...})
    tr.trace_id   # "tr-…", or None with tr.warning = "rag.trace.unwritable" when the store is broken

The store. Default `sqlite:///<LLMLAB_CACHE>/mlflow/mlflow.db` (artifacts under `<LLMLAB_CACHE>/mlflow/artifacts`),
experiment `llmlab-rag`; `LLMLAB_TRACKING_URI` overrides it (another sqlite file, or an `http://host:5000`
server). To browse it, run what `mlflow_ui_command()` returns, e.g.

    mlflow ui --backend-store-uri sqlite:////home/me/.cache/llmlab/mlflow/mlflow.db \
        --artifacts-destination /home/me/.cache/llmlab/mlflow/artifacts --port 5000

and open http://127.0.0.1:5000 → Experiments → llmlab-rag → Traces (each span's inputs, outputs and timing; the
`retrieve` span lists the passages with their scores, the `llm` span shows the chat messages and token usage).
Checked once against a store with traces (the server answered /health ≈ 30 s after start on 2 busy cores):
`GET /` answered 200 with the UI page (<title>MLflow</title>), `GET /api/2.0/mlflow/experiments/get-by-name?
experiment_name=llmlab-rag` the experiment with its artifact location, and `GET /ajax-api/3.0/mlflow/traces/<id>`
the trace (state OK, the tags cache/corpus/model, the summed token usage in `mlflow.trace.tokenUsage`). The same
server as LLMLAB_TRACKING_URI=http://127.0.0.1:<port> took traces and gave them back through this module.

Offline, always. `import mlflow` starts a telemetry client that fetches a config file from the internet unless
MLFLOW_DISABLE_TELEMETRY is set (mlflow/telemetry/utils.py: `is_telemetry_disabled`), so this module sets it
before mlflow is first imported; nothing else in the tracing path opens a socket (checked with an audit hook on
`socket.connect` in tests/engine/test_rag_tracing.py). mlflow is imported lazily, on the first trace or read:
pages that never trace do not pay for it.

Measured on the 2-core development machine (mlflow 3.17.2, shared with other jobs, so ±30 %):
- first use in a process: `import mlflow` ≈ 1.2-1.5 s, opening an existing store ≈ 0.8 s (a new one ≈ 1.6 s, up to
  4.5 s under load: MLflow creates its tables), the first trace ≈ 0.1 s (OpenTelemetry's tracer starts); then
  nothing of it again. Importing this module costs ≈ 20 ms (mlflow is not imported). `prepare()` pays it early.
- overhead of one traced call (a root span + the six pipeline spans), median of 20: ≈ 1.8 ms (p90 ≈ 2.2 ms) on the
  calling thread. That is MLflow's asynchronous export (MLFLOW_ENABLE_ASYNC_TRACE_LOGGING, on by default outside
  Databricks): spans go to a queue and background threads write them, and the trace is in the store ≈ 0.1 s later.
  Exported synchronously (MLFLOW_ENABLE_ASYNC_TRACE_LOGGING=false) the same call measured 60-210 ms: SQLite
  writes the trace row and the spans in several transactions, each with an fsync. That is why async is kept.
  The readers below first wait for this process's just-ended traces to land (polling the store, ≈ 0.1 s;
  `mlflow.flush_trace_async_logging()` would always cost 1-2 s: its queue consumer polls once a second), so a
  trace is visible right after its call.

Robustness. A tracing store that cannot be written — a path under a regular file, a file that is not SQLite, a
read-only file, an http server that does not answer — must not cost the learner the answer. MLflow's exporter
swallows write errors in its background thread (it only logs a warning), so the store is checked when it is
first opened in a process: tables and the experiment are read, one experiment tag is written (the write probe), and
a remote server must answer `/health` within 2 s (a closed port fails in milliseconds; MLflow's own HTTP client
would retry for minutes). A store that fails gets no trace: `RagTrace.trace_id` is None, `.warning` holds the code
(`rag.trace.unwritable` / `rag.trace.unreachable`, ko/en in ui/strings/errors.yaml) and `.warning_fmt` its
values; the check is repeated at most every 30 s. Nothing is half-written: MLflow writes each trace in SQLite
transactions, and a file that is not a database is read (and fails) before anything would be written to it.
A store that breaks after it was checked loses traces silently (logged by MLflow), never the answer.

mlflow keeps one tracking URI per process (`mlflow.set_tracking_uri`, which also resets its tracer); this module
sets it to `tracking_uri()` when it opens a store, and traces into the `llmlab-rag` experiment by id
(`trace_destination`), so it never changes the process's active experiment (chapter 13 sets its own).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.core.config import get_settings
from engine.core.errors import UserError
from engine.core.textinput import InputError

# Set before mlflow is imported (telemetry) and before its tracer starts (export batching); setdefault, so a user's
# own setting wins. Telemetry: `import mlflow` would otherwise start a client that fetches a config online.
# Batching: MLflow's background exporter batches 5 spans or waits 5 s, so a 7-span trace landed only after ≈ 5 s;
# one batch per trace after at most 100 ms lands it in ≈ 0.1 s, at the same ≈ 2 ms cost on the calling thread.
_MLFLOW_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ASYNC_TRACE_LOGGING_MAX_INTERVAL_MILLIS": "100",
    "MLFLOW_ASYNC_TRACE_LOGGING_MAX_SPAN_BATCH_SIZE": "64",
}
for _name, _value in _MLFLOW_ENV.items():
    os.environ.setdefault(_name, _value)

_log = logging.getLogger(__name__)

EXPERIMENT = "llmlab-rag"
UI_PORT = 5000
HTTP_PROBE_TIMEOUT_S = 2.0  # a remote server that does not answer in 2 s is treated as down for this call
RETRY_AFTER_S = 30.0  # a failed store is checked again after this long (not on every call)
PREVIEW_CHARS = 300  # inputs/outputs previews in SpanRow

# The spans the RAG pipeline records, and their MLflow span types (span() uses these when no type is given).
# RETRIEVER makes the UI render the outputs as a document list; CHAT_MODEL renders messages and token usage;
# GUARDRAIL marks the rails; the cache lookup is MEMORY (a look-up of stored answers).
PIPELINE_SPANS: dict[str, str] = {
    "rails.input": "GUARDRAIL",
    "cache": "MEMORY",
    "retrieve": "RETRIEVER",
    "rails.passages": "GUARDRAIL",
    "llm": "CHAT_MODEL",
    "rails.output": "GUARDRAIL",
}
SPAN_TYPES = ("CHAIN", "RETRIEVER", "LLM", "CHAT_MODEL", "GUARDRAIL", "MEMORY", "TOOL", "EMBEDDING", "UNKNOWN")

# MLflow's attribute keys for LLM spans (mlflow.tracing.constant.SpanAttributeKey), copied so that building the
# attributes does not import mlflow.
_TOKEN_USAGE = "mlflow.chat.tokenUsage"
_MODEL = "mlflow.llm.model"


# ---------------------------------------------------------------------------------------------------------------
# the store


def tracking_uri() -> str:
    """The store traces go to: LLMLAB_TRACKING_URI, else a SQLite file under the cache (never the network)."""
    settings = get_settings()
    if settings.tracking_uri:
        return settings.tracking_uri
    return f"sqlite:///{(_local_dir() / 'mlflow.db').as_posix()}"


def _local_dir() -> Path:
    return (get_settings().cache_dir / "mlflow").expanduser().absolute()


def _is_remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def mlflow_ui_command() -> str:
    """The command that opens the current store in MLflow's UI (http://127.0.0.1:5000).

    A remote tracking server already is a UI: for an http(s) URI this returns the URI itself, to open in a browser.
    """
    uri = tracking_uri()
    if _is_remote(uri):
        return uri
    parts = ["mlflow", "ui", "--backend-store-uri", uri]
    if uri == f"sqlite:///{(_local_dir() / 'mlflow.db').as_posix()}":
        # experiments created from the UI then keep their artifacts beside ours, not in ./mlartifacts of the cwd
        parts += ["--artifacts-destination", (_local_dir() / "artifacts").as_posix()]
    parts += ["--port", str(UI_PORT)]
    return " ".join(shlex.quote(p) for p in parts)


@dataclass
class _Store:
    uri: str
    experiment_id: str | None = None
    error: str | None = None  # an error code when the store cannot be used
    fmt: dict[str, Any] = field(default_factory=dict)
    checked: float = 0.0  # time.monotonic() of the check


_STORES: dict[str, _Store] = {}
_LOCK = threading.RLock()
# Traces ended in this process that MLflow's export thread may not have written yet: trace id -> (uri, span
# count). Readers wait for these to land (see _settle) so a trace is visible right after its call.
_UNCONFIRMED: dict[str, tuple[str, int]] = {}
SETTLE_TIMEOUT_S = 3.0


def _mlflow():
    """Import mlflow (lazily: ≈ 1.1 s) with telemetry off."""
    for name, value in _MLFLOW_ENV.items():
        os.environ.setdefault(name, value)
    import mlflow

    return mlflow


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _probe_http(uri: str) -> None:
    with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=HTTP_PROBE_TIMEOUT_S) as response:
        if response.status != 200:
            raise ConnectionError(f"/health answered {response.status}")


def _check(uri: str) -> _Store:
    """Open `uri`: create tables and the experiment if needed, and prove one write works."""
    store = _Store(uri, checked=time.monotonic())
    try:
        if _is_remote(uri):
            _probe_http(uri)
        artifact_location = None
        if uri.startswith("sqlite:///"):  # checked before the (slow) mlflow import, so a bad path fails at once
            db = Path(uri.removeprefix("sqlite:///"))
            db.parent.mkdir(parents=True, exist_ok=True)
            if db.parent == _local_dir():
                artifacts = _local_dir() / "artifacts"
                artifacts.mkdir(parents=True, exist_ok=True)
                artifact_location = artifacts.as_uri()
        mlflow = _mlflow()
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            try:
                experiment_id = client.create_experiment(EXPERIMENT, artifact_location=artifact_location)
            except MlflowException:  # another process created it first
                experiment = client.get_experiment_by_name(EXPERIMENT)
                if experiment is None:
                    raise
                experiment_id = experiment.experiment_id
        else:
            experiment_id = experiment.experiment_id
        # The write probe: a store that reads fine but cannot be written (a read-only file) fails here, not
        # silently in MLflow's export thread.
        client.set_experiment_tag(experiment_id, "llmlab.opened", datetime.now(UTC).isoformat(timespec="seconds"))
        if mlflow.get_tracking_uri() != uri:
            if _UNCONFIRMED:
                mlflow.flush_trace_async_logging()  # finish writes into the previous store before switching
                _UNCONFIRMED.clear()
            mlflow.set_tracking_uri(uri)
        store.experiment_id = experiment_id
    except Exception as exc:  # any failure means: no tracing for now, never a failed answer
        remote = _is_remote(uri) and isinstance(exc, (urllib.error.URLError, OSError, ConnectionError))
        store.error = "rag.trace.unreachable" if remote else "rag.trace.unwritable"
        store.fmt = {"uri": uri, "reason": _reason(exc)}
        _log.warning("tracing disabled for %s: %s", uri, store.fmt["reason"])
    return store


def _open(uri: str | None = None) -> _Store:
    uri = uri or tracking_uri()
    with _LOCK:
        store = _STORES.get(uri)
        if store is None or (store.error and time.monotonic() - store.checked > RETRY_AFTER_S):
            store = _STORES[uri] = _check(uri)
        elif store.error is None and _mlflow().get_tracking_uri() != uri:
            store = _STORES[uri] = _check(uri)  # someone switched mlflow to another store: switch back
        return store


def prepare() -> str | None:
    """Import mlflow and open the store now (≈ 2-3 s the first time in a process), e.g. from a background thread
    when the page opens, so the learner's first question does not wait for it. Returns the warning code or None."""
    return _open().error


def reset() -> None:
    """Finish pending writes and forget the opened stores (tests; or after a store was repaired)."""
    with _LOCK:
        for uri in {uri for uri, _ in _UNCONFIRMED.values()}:
            if uri in _STORES and not _STORES[uri].error:
                _settle(_STORES[uri])  # ≈ 0.1 s instead of a 1-2 s flush
        if _STORES:
            mlflow = _mlflow()
            if _UNCONFIRMED:
                mlflow.flush_trace_async_logging()
            mlflow.set_tracking_uri(None)
        _STORES.clear()
        _UNCONFIRMED.clear()


def _landed(client: Any, trace_id: str, spans: int, uri: str) -> bool:
    """Whether the whole trace is in the store: all its spans, and the trace row with its tags. MLflow writes them
    in separate tasks (spans first); a SQL store marks the trace row's write with `mlflow.trace.infoFinalized`."""
    try:
        trace = client.get_trace(trace_id, display=False)
    except Exception:  # not there yet
        return False
    if trace is None or len(trace.data.spans) < spans or _state(trace.info.state) == "IN_PROGRESS":
        return False
    file_store = uri.startswith("file:") or "://" not in uri  # MLflow's old file store sets no such flag
    return file_store or trace.info.trace_metadata.get("mlflow.trace.infoFinalized") == "true"


def _settle(store: _Store) -> None:
    """Wait until this process's recent traces are in the store.

    mlflow.flush_trace_async_logging() would do it, but it always costs 1-2 s (its queue consumer polls once a
    second and the flush joins it); a trace usually lands ≈ 0.1-0.2 s after its call, so polling the store for
    the few unconfirmed ids is cheaper. The flush stays the fallback when they do not land in SETTLE_TIMEOUT_S."""
    with _LOCK:
        pending = {tid: n for tid, (uri, n) in _UNCONFIRMED.items() if uri == store.uri}
        _UNCONFIRMED.clear()  # traces of another store are not what is read now
    if not pending:
        return
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store.uri)
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while pending and time.monotonic() < deadline:
        for tid, n in list(pending.items()):
            if _landed(client, tid, n, store.uri):
                del pending[tid]
        if pending:
            time.sleep(0.02)
    if pending:
        _mlflow().flush_trace_async_logging()


# ---------------------------------------------------------------------------------------------------------------
# writing


def as_documents(hits: Any) -> list[dict[str, Any]]:
    """Retrieved passages in MLflow's retriever-output shape (mlflow.entities.Document: page_content, metadata,
    id), which the MLflow UI renders as a document list. Takes engine.rag Passages (doc_id, title, text, source,
    score), LlamaIndex NodeWithScore, or dicts with those keys."""
    docs = []
    for hit in hits:
        if isinstance(hit, dict):
            get = hit.get
        else:
            node = getattr(hit, "node", None)
            if node is not None and not hasattr(hit, "doc_id"):  # a LlamaIndex NodeWithScore
                meta = dict(getattr(node, "metadata", {}) or {})
                docs.append(
                    {
                        "page_content": node.get_content(),
                        "metadata": {**meta, "score": _float(hit.score)},
                        "id": str(meta.get("doc_id") or node.node_id),
                    }
                )
                continue

            def get(key, default=None, _hit=hit):
                return getattr(_hit, key, default)

        doc_id = str(get("doc_id") or get("id") or "")
        metadata = {"doc_id": doc_id, "title": get("title"), "source": get("source"), "score": _float(get("score"))}
        docs.append(
            {
                "page_content": str(get("text") or get("page_content") or ""),
                "metadata": {k: v for k, v in metadata.items() if v is not None},
                "id": doc_id,
            }
        )
    return docs


def _float(value: Any) -> float | None:
    try:
        return None if value is None else round(float(value), 6)
    except (TypeError, ValueError):
        return None


def llm_attributes(
    model: str,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    first_token_s: float | None = None,
    total_s: float | None = None,
) -> dict[str, Any]:
    """Attributes of the `llm` span: the model, token counts in MLflow's usage key (the UI sums them per trace),
    first-token and total latency, decode speed."""
    attrs: dict[str, Any] = {_MODEL: model, "model": model}
    if prompt_tokens is not None or completion_tokens is not None:
        usage = {"input_tokens": int(prompt_tokens or 0), "output_tokens": int(completion_tokens or 0)}
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        attrs[_TOKEN_USAGE] = usage
        attrs |= {"prompt_tokens": usage["input_tokens"], "completion_tokens": usage["output_tokens"]}
    if first_token_s is not None:
        attrs["first_token_s"] = round(float(first_token_s), 4)
    if total_s is not None:
        attrs["total_s"] = round(float(total_s), 4)
        if completion_tokens and first_token_s is not None and total_s > first_token_s:
            attrs["tokens_per_s"] = round((completion_tokens - 1) / (total_s - first_token_s), 2)
    return attrs


def chat_outputs(answer: str, finish_reason: str = "stop") -> dict[str, Any]:
    """The `llm` span's outputs in the OpenAI chat-completion shape (the UI shows it as the assistant's turn)."""
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": finish_reason}]
    }


class _NullSpan:
    """What a span is when tracing is off: accepts everything, records nothing."""

    def set_outputs(self, outputs: Any) -> None:
        pass

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        pass

    def set_attribute(self, key: str, value: Any) -> None:
        pass


class TraceSpan:
    """One live span of a RagTrace. Never raises: a tracing problem must not break the answer."""

    def __init__(self, span: Any) -> None:
        self._span = span

    def set_outputs(self, outputs: Any) -> None:
        try:
            self._span.set_outputs(outputs)
        except Exception:
            _log.debug("set_outputs failed", exc_info=True)

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        try:
            self._span.set_attributes(dict(attributes))
        except Exception:
            _log.debug("set_attributes failed", exc_info=True)

    def set_attribute(self, key: str, value: Any) -> None:
        self.set_attributes({key: value})


class RagTrace:
    """One traced call (a context manager). `trace_id` is set once the root span started; None (with `warning`)
    when the store cannot be used, and then every span is a no-op."""

    def __init__(self, name: str, inputs: dict[str, Any], tags: dict[str, Any] | None = None) -> None:
        self.name = name
        self.inputs = dict(inputs)
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.trace_id: str | None = None
        self.warning: str | None = None
        self.warning_fmt: dict[str, Any] = {}
        self.uri = tracking_uri()
        self._root_cm: Any = None
        self._root: TraceSpan | _NullSpan = _NullSpan()
        self._spans = 0  # spans started, root included (readers wait until all of them are in the store)

    @property
    def warning_message(self) -> str | None:
        """The warning as an English sentence (the CLI; pages translate `warning` with `warning_fmt`)."""
        return str(UserError(self.warning, **self.warning_fmt)) if self.warning else None

    def __enter__(self) -> RagTrace:
        store = _open(self.uri)
        if store.error:
            self.warning, self.warning_fmt = store.error, dict(store.fmt)
            return self
        try:
            mlflow = _mlflow()
            from mlflow.entities.span import NoOpSpan
            from mlflow.entities.trace_location import MlflowExperimentLocation

            self._root_cm = mlflow.start_span(
                self.name, span_type="CHAIN", trace_destination=MlflowExperimentLocation(store.experiment_id)
            )
            root = self._root_cm.__enter__()
            if isinstance(root, NoOpSpan):  # MLflow could not start the span (it logged why)
                raise RuntimeError("MLflow returned a no-op span")
            root.set_inputs(self.inputs)
            self._root = TraceSpan(root)
            self._spans = 1
            self.trace_id = root.trace_id
            if self.tags:
                mlflow.update_current_trace(tags=self.tags)
        except Exception as exc:
            self._close(None, None, None)
            self.trace_id, self._root = None, _NullSpan()
            self.warning, self.warning_fmt = "rag.trace.unwritable", {"uri": self.uri, "reason": _reason(exc)}
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._close(exc_type, exc, tb) and self.trace_id:
            with _LOCK:
                _UNCONFIRMED[self.trace_id] = (self.uri, self._spans)
                while len(_UNCONFIRMED) > 100:  # bounded: a long session that never reads does not grow it
                    del _UNCONFIRMED[next(iter(_UNCONFIRMED))]
        return False  # never swallow the caller's exception (MLflow records it on the span as ERROR)

    def _close(self, exc_type, exc, tb) -> bool:
        cm, self._root_cm = self._root_cm, None
        if cm is None:
            return False
        try:
            cm.__exit__(exc_type, exc, tb)
        except BaseException as err:  # the caller's own exception comes back here: it is re-raised by __exit__
            if err is not exc:
                _log.debug("ending the root span failed", exc_info=True)
        return True

    @contextmanager
    def span(self, name: str, span_type: str | None = None, inputs: Any = None) -> Iterator[TraceSpan | _NullSpan]:
        """A child span (nests under the innermost open span of this thread). `span_type` defaults to
        PIPELINE_SPANS[name], else UNKNOWN."""
        if self.trace_id is None:
            yield _NullSpan()
            return
        mlflow = _mlflow()
        self._spans += 1
        with mlflow.start_span(name, span_type=span_type or PIPELINE_SPANS.get(name, "UNKNOWN")) as live:
            span = TraceSpan(live)
            if inputs is not None:
                try:
                    live.set_inputs(inputs)
                except Exception:
                    _log.debug("set_inputs failed", exc_info=True)
            yield span

    def set_outputs(self, outputs: Any) -> None:
        """The root span's outputs: answer, sources, cache verdict, latency."""
        self._root.set_outputs(outputs)

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        self._root.set_attributes(attributes)

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Trace tags (searchable: `tags.cache = 'miss'`); call inside the `with` block."""
        if self.trace_id is None:
            return
        clean = {str(k): str(v) for k, v in tags.items()}
        self.tags |= clean
        try:
            _mlflow().update_current_trace(tags=clean)
        except Exception:
            _log.debug("update_current_trace failed", exc_info=True)


def start_trace(name: str, inputs: dict[str, Any], tags: dict[str, Any] | None = None) -> RagTrace:
    """A trace for one call: `with start_trace("rag.query", {"question": q}, tags={...}) as tr: ...`."""
    return RagTrace(name, inputs, tags)


# ---------------------------------------------------------------------------------------------------------------
# reading (the page's trace viewer)


@dataclass(frozen=True)
class TraceSummary:
    trace_id: str
    started: datetime  # UTC
    name: str  # the root span's name, e.g. "rag.query"
    question: str
    cache: str  # the `cache` tag: "miss", "exact", "semantic" (or "" when not set)
    latency_s: float | None
    status: str  # "OK", "ERROR", "IN_PROGRESS"
    tags: dict[str, str] = field(default_factory=dict)  # the trace's own tags (cache, corpus, model, ...)


@dataclass(frozen=True)
class SpanRow:
    name: str
    span_type: str
    start_offset_ms: float  # from the start of the trace
    duration_ms: float
    inputs_preview: str  # JSON, cut to PREVIEW_CHARS
    outputs_preview: str
    attributes: dict[str, Any]  # the attributes the pipeline set (MLflow's own mlflow.* keys left out)
    status: str = "OK"
    depth: int = 0  # 0 for the root span, 1 for its children, ...


def _readable_store() -> _Store:
    store = _open()
    if store.error:
        code = "rag.trace.unreachable" if store.error == "rag.trace.unreachable" else "rag.trace.unreadable"
        raise UserError(code, **store.fmt)
    _settle(store)
    return store


def _preview(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _question(preview: str | None) -> str:
    if not preview:
        return ""
    try:
        data = json.loads(preview)
    except ValueError:
        return preview  # cut by MLflow: show what there is
    if isinstance(data, dict):
        return str(data.get("question", preview))
    return str(data)


def _state(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


def recent_traces(limit: int = 20) -> list[TraceSummary]:
    """The newest traces of the `llmlab-rag` experiment, newest first."""
    if not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise InputError("input.out_of_range", name="limit", low=1, high=1000, value=limit)
    store = _readable_store()
    from mlflow import MlflowClient

    try:
        traces = MlflowClient(tracking_uri=store.uri).search_traces(
            locations=[store.experiment_id], max_results=limit, order_by=["timestamp_ms DESC"], include_spans=False
        )
    except Exception as exc:
        raise UserError("rag.trace.unreadable", uri=store.uri, reason=_reason(exc)) from exc
    rows = []
    for trace in traces:
        info = trace.info
        tags = {k: v for k, v in info.tags.items() if not k.startswith("mlflow.")}
        duration = info.execution_duration
        rows.append(
            TraceSummary(
                trace_id=info.trace_id,
                started=datetime.fromtimestamp(info.request_time / 1000, tz=UTC),
                name=info.tags.get("mlflow.traceName", ""),
                question=_question(info.request_preview),
                cache=tags.get("cache", ""),
                latency_s=None if duration is None else duration / 1000,
                status=_state(info.state),
                tags=tags,
            )
        )
    return rows


def trace_spans(trace_id: str) -> list[SpanRow]:
    """Every span of one trace in start order, with offsets for a waterfall chart."""
    if not isinstance(trace_id, str) or not trace_id.strip() or len(trace_id) > 200:
        raise InputError("rag.trace.not_found", trace_id=str(trace_id)[:200], uri=tracking_uri())
    store = _readable_store()
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        trace = MlflowClient(tracking_uri=store.uri).get_trace(trace_id.strip(), display=False)
    except MlflowException as exc:
        if "not found" in str(exc).lower() or getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            raise UserError("rag.trace.not_found", trace_id=trace_id, uri=store.uri) from exc
        raise UserError("rag.trace.unreadable", uri=store.uri, reason=_reason(exc)) from exc
    except Exception as exc:
        raise UserError("rag.trace.unreadable", uri=store.uri, reason=_reason(exc)) from exc
    if trace is None:
        raise UserError("rag.trace.not_found", trace_id=trace_id, uri=store.uri)
    spans = sorted(trace.data.spans, key=lambda s: (s.start_time_ns, s.end_time_ns or 0))
    if not spans:
        return []
    t0 = min(s.start_time_ns for s in spans)
    parents = {s.span_id: s.parent_id for s in spans}

    def depth(span_id: str | None) -> int:
        d = 0
        while span_id is not None and parents.get(span_id) is not None and d < 64:
            span_id, d = parents[span_id], d + 1
        return d

    rows = []
    for s in spans:
        end = s.end_time_ns or s.start_time_ns
        attrs = {k: v for k, v in (s.attributes or {}).items() if not k.startswith("mlflow.")}
        rows.append(
            SpanRow(
                name=s.name,
                span_type=str(s.span_type or "UNKNOWN"),
                start_offset_ms=(s.start_time_ns - t0) / 1e6,
                duration_ms=(end - s.start_time_ns) / 1e6,
                inputs_preview=_preview(s.inputs),
                outputs_preview=_preview(s.outputs),
                attributes=attrs,
                status=_state(getattr(s.status, "status_code", s.status)),
                depth=depth(s.span_id),
            )
        )
    return rows


__all__ = [
    "EXPERIMENT",
    "PIPELINE_SPANS",
    "RagTrace",
    "SpanRow",
    "TraceSpan",
    "TraceSummary",
    "as_documents",
    "chat_outputs",
    "llm_attributes",
    "mlflow_ui_command",
    "prepare",
    "recent_traces",
    "reset",
    "start_trace",
    "trace_spans",
    "tracking_uri",
]
