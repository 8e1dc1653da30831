"""engine.rag.tracing: RAG calls traced into a real MLflow store (SQLite under tmp_path), read back for the page's
viewer, persisted across processes, and a broken store that costs a warning, never the answer."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.core import InputError, UserError
from engine.rag import tracing

ROOT = Path(__file__).resolve().parents[2]
SIX = ["rails.input", "cache", "retrieve", "rails.passages", "llm", "rails.output"]


@pytest.fixture(autouse=True)
def _fresh_mlflow_state():
    """mlflow keeps one tracking URI per process (and the module caches opened stores): start and end clean."""
    tracing.reset()
    yield
    tracing.reset()
    os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture(scope="module")
def _empty_store(tmp_path_factory) -> Path:
    """One store with MLflow's tables and the experiment, copied for each test: creating the tables takes 2-5 s."""
    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    os.environ["LLMLAB_TRACKING_URI"] = f"sqlite:///{db.as_posix()}"
    try:
        assert tracing.prepare() is None
    finally:
        os.environ.pop("LLMLAB_TRACKING_URI")
        tracing.reset()
    return db


@pytest.fixture
def store(_empty_store, tmp_path, monkeypatch) -> str:
    db = tmp_path / "traces" / "mlflow.db"
    db.parent.mkdir()
    shutil.copyfile(_empty_store, db)
    uri = f"sqlite:///{db.as_posix()}"
    monkeypatch.setenv("LLMLAB_TRACKING_URI", uri)
    return uri


class _Passage:  # the fields of engine.rag.documents.Passage that tracing reads (duck-typed on purpose)
    def __init__(self, doc_id: str, text: str, score: float) -> None:
        self.doc_id, self.title, self.text, self.source, self.score = doc_id, doc_id, text, "constitution", score


def _traced_call(question: str = "대통령의 임기는 몇 년인가?", cache: str = "miss") -> tracing.RagTrace:
    """What the pipeline does, with fixed values in place of the components."""
    hits = [
        _Passage("제70조", "대통령의 임기는 5년으로 하며, 중임할 수 없다.", 0.91),
        _Passage("제67조", "대통령은 ...", 0.42),
    ]
    with tracing.start_trace("rag.query", {"question": question}, tags={"corpus": "constitution"}) as tr:
        with tr.span("rails.input", inputs={"question": question}) as sp:
            sp.set_outputs({"blocked": False, "verdicts": [{"rail": "injection", "passed": True}]})
        with tr.span("cache", inputs={"question": question}) as sp:
            sp.set_outputs({"verdict": cache})
        with tr.span("retrieve", inputs={"query": question, "top_k": 2}) as sp:
            sp.set_outputs(tracing.as_documents(hits))
        with tr.span("rails.passages", inputs={"count": 2}) as sp:
            sp.set_outputs({"dropped": []})
        with tr.span("llm", inputs={"messages": [{"role": "user", "content": question}]}) as sp:
            sp.set_attributes(tracing.llm_attributes("qwen2.5-coder-0.5b-instruct", 120, 11, 0.4, 0.9))
            sp.set_outputs(tracing.chat_outputs("대통령의 임기는 5년입니다 [제70조]."))
        with tr.span("rails.output") as sp:
            sp.set_outputs({"grounded": True})
        tr.set_tags({"cache": cache, "model": "instruct"})
        tr.set_outputs({"answer": "대통령의 임기는 5년입니다 [제70조].", "sources": ["제70조"], "cache": cache})
    return tr


def test_six_spans_written_and_read_back(store):
    tr = _traced_call()
    assert tr.trace_id and tr.trace_id.startswith("tr-") and tr.warning is None

    (summary,) = tracing.recent_traces(5)
    assert summary.trace_id == tr.trace_id and summary.name == "rag.query" and summary.status == "OK"
    assert summary.question == "대통령의 임기는 몇 년인가?" and summary.cache == "miss"
    assert summary.tags == {"corpus": "constitution", "cache": "miss", "model": "instruct"}
    assert summary.latency_s is not None and summary.latency_s >= 0

    rows = tracing.trace_spans(tr.trace_id)
    assert [r.name for r in rows] == ["rag.query", *SIX]  # start order: what the waterfall draws
    assert [r.depth for r in rows] == [0] + [1] * 6
    assert [r.span_type for r in rows] == [
        "CHAIN",
        "GUARDRAIL",
        "MEMORY",
        "RETRIEVER",
        "GUARDRAIL",
        "CHAT_MODEL",
        "GUARDRAIL",
    ]
    offsets = [r.start_offset_ms for r in rows]
    assert offsets == sorted(offsets) and offsets[0] == 0
    assert all(r.duration_ms >= 0 and r.status == "OK" for r in rows)
    assert rows[0].duration_ms >= max(r.start_offset_ms + r.duration_ms for r in rows[1:]) - 1e-3
    llm = rows[5]
    assert llm.attributes["prompt_tokens"] == 120 and llm.attributes["completion_tokens"] == 11
    assert llm.attributes["first_token_s"] == 0.4 and llm.attributes["model"] == "qwen2.5-coder-0.5b-instruct"
    assert "대통령의 임기는 5년입니다" in llm.outputs_preview

    # the retriever span in MLflow's document shape (what the MLflow UI renders as a list), read with MLflow itself
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store)
    trace = client.get_trace(tr.trace_id, display=False)
    (retrieve,) = [s for s in trace.data.spans if s.name == "retrieve"]
    assert [d["id"] for d in retrieve.outputs] == ["제70조", "제67조"]
    assert retrieve.outputs[0]["page_content"].startswith("대통령의 임기는 5년")
    assert retrieve.outputs[0]["metadata"]["score"] == pytest.approx(0.91)
    assert json.loads(trace.info.trace_metadata["mlflow.trace.tokenUsage"])["total_tokens"] == 131

    # tags are searchable in the store
    experiment = client.get_experiment_by_name(tracing.EXPERIMENT)
    found = client.search_traces(locations=[experiment.experiment_id], filter_string="tags.cache = 'miss'")
    assert [t.info.trace_id for t in found] == [tr.trace_id]
    assert not client.search_traces(locations=[experiment.experiment_id], filter_string="tags.cache = 'exact'")


def test_newest_first_and_limit(store):
    ids = []
    for i in range(3):
        ids.append(_traced_call(f"질문 {i}", cache=("miss", "exact")[i % 2]).trace_id)
        time.sleep(0.01)  # the store orders by start time in whole milliseconds: no ties
    rows = tracing.recent_traces(2)
    assert [r.trace_id for r in rows] == ids[::-1][:2]
    assert [r.cache for r in rows] == ["miss", "exact"]
    with pytest.raises(InputError):
        tracing.recent_traces(0)


def test_default_store_lives_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMLAB_TRACKING_URI", raising=False)
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path / "cache"))
    db = (tmp_path / "cache" / "mlflow" / "mlflow.db").as_posix()
    assert tracing.tracking_uri() == f"sqlite:///{db}"
    command = shlex.split(tracing.mlflow_ui_command())
    assert command[:4] == ["mlflow", "ui", "--backend-store-uri", f"sqlite:///{db}"]
    assert command[-2:] == ["--port", "5000"] and (tmp_path / "cache" / "mlflow" / "artifacts").as_posix() in command

    tr = _traced_call()
    assert tr.trace_id and Path(db).is_file()
    from mlflow import MlflowClient

    experiment = MlflowClient(tracking_uri=f"sqlite:///{db}").get_experiment_by_name("llmlab-rag")
    assert experiment.artifact_location == (tmp_path / "cache" / "mlflow" / "artifacts").as_uri()


def test_remote_uri_is_opened_in_a_browser(monkeypatch):
    monkeypatch.setenv("LLMLAB_TRACKING_URI", "http://tracking.example:5000")
    assert tracing.mlflow_ui_command() == "http://tracking.example:5000"


_CHILD = r"""
import json, sys
events = []
sys.addaudithook(lambda ev, args: events.append(ev) if ev in ("socket.connect", "socket.getaddrinfo") else None)
from engine.rag import tracing
seen = [r.trace_id for r in tracing.recent_traces(10)]
with tracing.start_trace("rag.query", {"question": "다른 프로세스"}, tags={"cache": "semantic"}) as tr:
    with tr.span("retrieve") as sp:
        sp.set_outputs(tracing.as_documents([{"doc_id": "제1조", "text": "대한민국은 민주공화국이다.", "score": 1.0}]))
print(json.dumps({"seen": seen, "written": tr.trace_id, "warning": tr.warning, "network": events}))
"""


def test_traces_persist_across_processes_without_network(store):
    first = _traced_call().trace_id
    child = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=ROOT, capture_output=True, text=True, timeout=240, env=dict(os.environ)
    )
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["seen"] == [first]  # a fresh process reads what this one wrote
    assert report["warning"] is None and report["written"]
    assert report["network"] == []  # telemetry off, nothing online: not one socket opened
    # ... and what the child wrote survived its exit (MLflow's async export is flushed at exit)
    assert [r.trace_id for r in tracing.recent_traces(10)] == [report["written"], first]
    assert [r.name for r in tracing.trace_spans(report["written"])] == ["rag.query", "retrieve"]
    assert tracing.recent_traces(10)[0].cache == "semantic"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _broken(kind: str, tmp_path: Path) -> str:
    if kind == "parent_is_a_file":
        (tmp_path / "plain.txt").write_text("not a directory")
        return f"sqlite:///{(tmp_path / 'plain.txt' / 'mlflow.db').as_posix()}"
    if kind == "not_sqlite":
        (tmp_path / "garbage.db").write_bytes(bytes(range(256)) * 64)
        return f"sqlite:///{(tmp_path / 'garbage.db').as_posix()}"
    return f"http://127.0.0.1:{_closed_port()}"


@pytest.mark.parametrize("kind", ["parent_is_a_file", "not_sqlite", "closed_port"])
def test_broken_store_costs_a_warning_not_the_answer(kind, store, tmp_path, monkeypatch):
    good = _traced_call("먼저 기록된 질문").trace_id  # a good store with one trace, then a broken one
    garbage = tmp_path / "garbage.db"
    uri = _broken(kind, tmp_path)
    before = garbage.read_bytes() if garbage.exists() else None
    monkeypatch.setenv("LLMLAB_TRACKING_URI", uri)

    start = time.perf_counter()
    tr = _traced_call()  # the answer code runs to the end: no exception
    assert time.perf_counter() - start < 3.0  # fails fast (mlflow itself was already imported above)
    assert tr.trace_id is None
    assert tr.warning == ("rag.trace.unreachable" if kind == "closed_port" else "rag.trace.unwritable")
    assert tr.warning_fmt["uri"] == uri and tr.warning_fmt["reason"]
    assert uri in tr.warning_message

    start = time.perf_counter()
    again = _traced_call()  # not checked again on every call
    assert again.warning == tr.warning and time.perf_counter() - start < 0.5
    with pytest.raises(UserError) as err:
        tracing.recent_traces()
    assert err.value.code in {"rag.trace.unreadable", "rag.trace.unreachable"} and uri in str(err.value)
    if before is not None:
        assert garbage.read_bytes() == before  # nothing written into a file that is not a database

    # the good store is untouched and still works
    monkeypatch.setenv("LLMLAB_TRACKING_URI", store)
    assert [r.trace_id for r in tracing.recent_traces(10)] == [good]
    assert _traced_call().trace_id is not None and len(tracing.recent_traces(10)) == 2


def test_an_error_inside_the_trace_propagates_and_is_recorded(store):
    with (
        pytest.raises(RuntimeError, match="model server died"),
        tracing.start_trace("rag.query", {"question": "질문"}) as tr,
        tr.span("llm"),
    ):
        raise RuntimeError("model server died")
    (summary,) = tracing.recent_traces(1)
    assert summary.trace_id == tr.trace_id and summary.status == "ERROR"
    assert [r.status for r in tracing.trace_spans(tr.trace_id)] == ["ERROR", "ERROR"]


def test_unknown_trace_id(store):
    _traced_call()
    with pytest.raises(UserError) as err:
        tracing.trace_spans("tr-00000000000000000000000000000000")
    assert err.value.code == "rag.trace.not_found"
    with pytest.raises(UserError):
        tracing.trace_spans("")


def test_importing_the_module_does_not_import_mlflow():
    code = "import sys, engine.rag.tracing as t; print('mlflow' in sys.modules, t.tracking_uri().startswith('sqlite'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "True"], out.stderr[-2000:]


def test_a_stream_stopped_early_still_ends_its_trace(store):
    """The pipeline streams from inside the trace; a learner's Stop closes the generator at a yield."""

    def stream(question):
        with tracing.start_trace("rag.query", {"question": question}) as tr, tr.span("llm"):
            yield from ["대통령의", " 임기는", " 5년"]

    stopped = stream("멈춘 질문")
    next(stopped)
    stopped.close()
    time.sleep(0.01)  # distinct millisecond start times
    assert list(stream("끝난 질문")) == ["대통령의", " 임기는", " 5년"]
    rows = tracing.recent_traces(5)
    assert [r.question for r in rows] == ["끝난 질문", "멈춘 질문"]
    for row in rows:  # each its own root with one child: the stopped one did not leak its span into the next
        assert [(s.name, s.depth) for s in tracing.trace_spans(row.trace_id)] == [("rag.query", 0), ("llm", 1)]


def test_llamaindex_nodes_become_mlflow_documents():
    from llama_index.core.schema import NodeWithScore, TextNode

    node = TextNode(
        text="대한민국은 민주공화국이다.", id_="제1조", metadata={"doc_id": "제1조", "source": "constitution"}
    )
    (doc,) = tracing.as_documents([NodeWithScore(node=node, score=0.87)])
    assert doc == {
        "page_content": "대한민국은 민주공화국이다.",
        "metadata": {"doc_id": "제1조", "source": "constitution", "score": 0.87},
        "id": "제1조",
    }
