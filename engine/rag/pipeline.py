"""The chapter 9 RAG application: one question through rails, cache, retrieval, the model and back, traced.

The book's LlamaIndex shape is kept, component by component: Documents → index → retriever → node postprocessor
(`SimilarityPostprocessor`, the cutoff) → response synthesizer (the `instruct` model, streaming) → query engine.
`query_engine(...)` returns exactly that `RetrieverQueryEngine`. `ask(...)` runs the same components one at a time,
because an application needs to stand between them — the order, and why:

    rails.input      injection → block (the model never sees it); PII → masked before anything is stored or traced
    cache            exact, then semantic (with the Korean role guard) — before retrieval, which costs more
    retrieve         the retriever's top_k, then the similarity cutoff
    rails.passages   passages that instruct the model (indirect injection, e.g. in an upload) are dropped
    rails.topic      off-topic: the best retrieval score is low → a warning (or a block)
    llm              the response synthesizer streams the answer from the tagged passages
    rails.output     grounded in the passages? cited ids really retrieved?
    cache.store      only a grounded answer that was not blocked is cached (a bad answer is not served twice)

Everything lands in one MLflow trace (tracing.py), whose id comes back with the answer. A tracing store that is
broken costs the trace, never the answer; a dead model server is a `ModelServerError` the page shows in Korean.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace

from llama_index.core import get_response_synthesizer
from llama_index.core.postprocessor import SimilarityPostprocessor
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import NodeWithScore

from engine.core.textinput import InputError
from engine.rag import prompts, rails, tracing
from engine.rag.cache import DEFAULT_THRESHOLD, CacheVerdict, LLMCache, cache_scope
from engine.rag.documents import CONSTITUTION, Passage, constitution_passages
from engine.rag.focus import ClauseFocus
from engine.rag.llm import ServingLLM
from engine.serving.client import count_tokens, model_name

MAX_QUESTION_CHARS = 1_000  # a question, not a document: longer input is refused with a clear message
TOP_K_RANGE = (1, 10)
MAX_TOKENS_RANGE = (16, 1024)
LANGS = ("ko", "en")
MODELS = ("instruct", "instruct-large")


@dataclass(frozen=True)
class RagSettings:
    retriever: str = "best"  # retrievers.RETRIEVERS: "best" (the project's Korean pipeline) or "chroma"
    top_k: int = 5
    cutoff: float = 0.0  # SimilarityPostprocessor: passages scoring below this are not shown to the model
    cache: bool = True
    cache_threshold: float = DEFAULT_THRESHOLD
    cache_guard: bool = True
    rails: bool = True
    max_tokens: int = 256
    lang: str = "ko"  # the prompt's language (the Constitution is Korean; an English upload may want "en")
    focus: int = 2  # clauses kept per passage for the prompt (focus.py); 0 = whole passages
    model: str = "instruct"  # the serving role: "instruct" (0.5B, default) or "instruct-large" (1.5B, optional extra)

    def retrieval_key(self, corpus_id: str) -> dict:
        """What the cache scope depends on besides the model and the template: a change here is a new scope."""
        return {
            "corpus": corpus_id,
            "retriever": self.retriever,
            "top_k": self.top_k,
            "cutoff": round(self.cutoff, 4),
            "focus": self.focus,
            "model": self.model,
        }


@dataclass(frozen=True)
class Corpus:
    corpus_id: str  # "constitution", or "upload-<hash>" for a learner's files
    passages: tuple[Passage, ...]

    @property
    def ids(self) -> list[str]:
        return [p.doc_id for p in self.passages]


@dataclass
class RagAnswer:
    question: str  # as typed
    asked: str  # after PII masking: what was cached, traced and sent
    answer: str
    passages: list[Passage]  # what the model saw, ranked (after cutoff and the passage rail)
    retrieved: list[Passage]  # the retriever's top_k, with scores (before cutoff and rails)
    cited: list[str]  # ids the answer cites that were in the prompt (or, see cited_by, that support it)
    cache: str  # "miss", "exact", "semantic" or "off"
    rails: list[rails.RailVerdict]
    blocked: bool
    messages: list[dict] = field(default_factory=list)  # the assembled prompt, as the model got it
    prompt_tokens: int | None = None
    first_token_s: float | None = None
    latency_s: float = 0.0
    trace_id: str | None = None
    cache_verdict: CacheVerdict | None = None
    warnings: list[str] = field(default_factory=list)  # codes: tracing or cache problems (the answer still came)
    warning_fmt: dict[str, dict] = field(default_factory=dict)  # code -> the values its ko/en message needs
    cited_by: str = "model"  # "model": [id] tags in the answer; "support": prompts.attribute found the passage

    @property
    def sources(self) -> list[str]:
        """Document ids in rank order (the CLI contract); cached answers keep the ids they were stored with."""
        return [p.doc_id for p in self.passages]

    def to_json(self) -> dict:
        """One line of `python -m engine rag --json`."""
        return {
            "question": self.question,
            "answer": self.answer,
            "sources": self.sources,
            "cited": self.cited,
            "cited_by": self.cited_by,
            "cache": self.cache,
            "latency_s": round(self.latency_s, 4),
            "first_token_s": None if self.first_token_s is None else round(self.first_token_s, 4),
            "prompt_tokens": self.prompt_tokens,
            "trace_id": self.trace_id,
            "rails": [asdict(v) for v in self.rails],
            "blocked": self.blocked,
            "warnings": self.warnings,
        }


# -- corpora and shared objects ----------------------------------------------------------------------------------
_LOCK = threading.Lock()
_RETRIEVERS: dict[tuple, object] = {}
_CACHE: LLMCache | None = None


def constitution() -> Corpus:
    return Corpus(CONSTITUTION, tuple(constitution_passages()))


def upload_corpus(passages: list[Passage]) -> Corpus:
    """A learner's uploaded passages as a corpus; the id is a hash of their content (same files → same index)."""
    if not passages:
        raise InputError("rag.no_passages")
    digest = hashlib.sha256("\x00".join(f"{p.doc_id}\x01{p.text}" for p in passages).encode()).hexdigest()[:12]
    return Corpus(f"upload-{digest}", tuple(passages))


def retriever_for(corpus: Corpus, kind: str, top_k: int):
    """One retriever per (corpus, kind, top_k) per process: building one loads an index (about a second)."""
    from engine.rag.retrievers import RETRIEVERS, make_retriever

    if kind not in RETRIEVERS:
        raise InputError("input.unknown_choice", name="retriever", value=kind, choices=", ".join(RETRIEVERS))
    key = (corpus.corpus_id, kind, top_k)
    with _LOCK:
        if key not in _RETRIEVERS:
            _RETRIEVERS[key] = make_retriever(kind, corpus.corpus_id, list(corpus.passages), top_k)
        return _RETRIEVERS[key]


def shared_cache() -> LLMCache:
    global _CACHE
    with _LOCK:
        if _CACHE is None:
            _CACHE = LLMCache()
        return _CACHE


def check_settings(settings: RagSettings) -> RagSettings:
    lo, hi = TOP_K_RANGE
    if not lo <= settings.top_k <= hi:
        raise InputError("input.out_of_range", name="top_k", low=lo, high=hi, value=settings.top_k)
    if not 0.0 <= settings.cutoff < 1.0:
        raise InputError("rag.bad_cutoff", value=settings.cutoff)
    lo, hi = MAX_TOKENS_RANGE
    if not lo <= settings.max_tokens <= hi:
        raise InputError("input.out_of_range", name="max_tokens", low=lo, high=hi, value=settings.max_tokens)
    if not 0 <= settings.focus <= 10:
        raise InputError("input.out_of_range", name="focus", low=0, high=10, value=settings.focus)
    if settings.model not in MODELS:
        raise InputError("input.unknown_choice", name="model", value=settings.model, choices=", ".join(MODELS))
    if settings.lang not in LANGS:
        raise InputError("input.unknown_choice", name="lang", value=settings.lang, choices=", ".join(LANGS))
    return settings


def check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise InputError("input.empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError("rag.question_too_long", chars=len(question), limit=MAX_QUESTION_CHARS)
    return question.strip()


# -- the LlamaIndex components -----------------------------------------------------------------------------------
def synthesizer(llm: ServingLLM, lang: str = "ko", streaming: bool = True):
    """LlamaIndex's response synthesizer, "compact": all passages in one prompt (5 articles fit easily)."""
    return get_response_synthesizer(
        llm=llm, text_qa_template=prompts.qa_template(lang), response_mode="compact", streaming=streaming
    )


def query_engine(corpus: Corpus, settings: RagSettings = RagSettings()) -> RetrieverQueryEngine:
    """The book's query engine, as LlamaIndex builds it (no rails, no cache, no trace): retriever → cutoff →
    synthesizer. `ask` runs these same parts with the application around them."""
    settings = check_settings(settings)
    return RetrieverQueryEngine(
        retriever=retriever_for(corpus, settings.retriever, settings.top_k),
        response_synthesizer=synthesizer(
            ServingLLM(role=settings.model, max_tokens=settings.max_tokens), settings.lang
        ),
        node_postprocessors=[SimilarityPostprocessor(similarity_cutoff=settings.cutoff)]
        + ([ClauseFocus(keep=settings.focus)] if settings.focus else []),
    )


def _passage(n: NodeWithScore) -> Passage:
    meta = n.node.metadata
    return Passage(
        str(meta.get("doc_id", n.node.node_id)),
        str(meta.get("title", meta.get("doc_id", ""))),
        n.node.get_content(),
        str(meta.get("source", "")),
        float(n.score or 0.0),
    )


# -- the application ---------------------------------------------------------------------------------------------
class RagRun:
    """Iterate for the answer's text pieces (the page streams them); `.result` is the RagAnswer once done."""

    def __init__(self, pieces: Iterator[str]):
        self._pieces = pieces
        self.result: RagAnswer | None = None

    def __iter__(self) -> Iterator[str]:
        yield from self._pieces


def ask(question: str, corpus: Corpus | None = None, settings: RagSettings = RagSettings()) -> RagRun:
    """Answer `question` from `corpus` (the Constitution by default). Bad input raises before anything runs."""
    question = check_question(question)
    settings = check_settings(settings)
    corpus = corpus or constitution()
    run = RagRun(iter(()))
    run._pieces = _run(run, question, corpus, settings)
    return run


def answer(question: str, corpus: Corpus | None = None, settings: RagSettings = RagSettings()) -> RagAnswer:
    run = ask(question, corpus, settings)
    for _ in run:
        pass
    assert run.result is not None
    return run.result


def _run(run: RagRun, question: str, corpus: Corpus, settings: RagSettings) -> Iterator[str]:
    start = time.perf_counter()
    verdicts: list[rails.RailVerdict] = []
    warnings: list[str] = []
    llm = ServingLLM(role=settings.model, max_tokens=settings.max_tokens)
    model = model_name(settings.model)
    scope = cache_scope(model, prompts.template_text(settings.lang), settings.retrieval_key(corpus.corpus_id))
    tags = {"corpus": corpus.corpus_id, "model": model, "retriever": settings.retriever}

    def finish(tr, text: str, passages, retrieved, cache: str, blocked: bool, **extra) -> RagAnswer:
        cited = prompts.citations(text, [p.doc_id for p in passages])
        cited_by = "model"
        if not cited and not blocked:
            cited, cited_by = prompts.attribute(text, passages), "support"
        result = RagAnswer(
            question=question,
            asked=asked,
            answer=text,
            passages=passages,
            retrieved=retrieved,
            cited=cited,
            cited_by=cited_by,
            cache=cache,
            rails=verdicts,
            blocked=blocked,
            latency_s=time.perf_counter() - start,
            warnings=warnings,
            **extra,
        )
        tr.set_tags({"cache": cache, "blocked": str(blocked).lower()})
        tr.set_outputs(
            {"answer": text, "sources": result.sources, "cache": cache, "latency_s": round(result.latency_s, 4)}
        )
        return result

    # PII is masked before anything is traced, cached or sent: the trace's inputs are the masked question.
    check = rails.check_input(question) if settings.rails else None
    asked = check.text if check is not None else question
    with tracing.start_trace("rag.query", {"question": asked}, tags=tags) as tr:
        # rails.input: injection blocks (the model never sees it), PII was masked above
        if check is not None:
            with tr.span("rails.input", "GUARDRAIL", {"question": asked}) as sp:
                verdicts += [v for v in check.verdicts if v.rail != "off_topic"]
                sp.set_outputs({"verdicts": [asdict(v) for v in check.verdicts]})
            if check.blocked:
                text = prompts.BLOCKED[settings.lang]
                yield text
                run.result = finish(tr, text, [], [], "off" if not settings.cache else "miss", True)
                _close(run, tr)
                return
        # cache: exact, then semantic with the role guard
        verdict = None
        if settings.cache:
            with tr.span("cache", "MEMORY", {"question": asked, "scope": scope}) as sp:
                verdict = shared_cache().inspect(
                    asked, scope, threshold=settings.cache_threshold, guard=settings.cache_guard
                )
                sp.set_outputs(
                    {
                        "verdict": verdict.kind,
                        "reason": verdict.reason,
                        "similarity": verdict.similarity,
                        "nearest": verdict.nearest,
                    }
                )
            if verdict.warning:
                warnings.append(verdict.warning)
            if verdict.hit is not None:
                hit = verdict.hit
                by_id = {p.doc_id: p for p in corpus.passages}
                cached = [by_id[i] for i in hit.sources if i in by_id]
                yield hit.answer
                run.result = finish(tr, hit.answer, cached, cached, verdict.kind, False, cache_verdict=verdict)
                _close(run, tr)
                return
        # retrieve, then the cutoff
        retriever = retriever_for(corpus, settings.retriever, settings.top_k)
        with tr.span("retrieve", "RETRIEVER", {"query": asked, "top_k": settings.top_k}) as sp:
            nodes = retriever.retrieve(asked)
            retrieved = [_passage(n) for n in nodes]
            kept_nodes = SimilarityPostprocessor(similarity_cutoff=settings.cutoff).postprocess_nodes(nodes)
            sp.set_outputs(tracing.as_documents(kept_nodes))
            sp.set_attributes({"retrieved": len(nodes), "after_cutoff": len(kept_nodes), "cutoff": settings.cutoff})
        # rails on the passages (indirect injection) and on the topic
        if settings.rails:
            with tr.span("rails.passages", "GUARDRAIL", {"ids": [_passage(n).doc_id for n in kept_nodes]}) as sp:
                kept_passages, passage_verdicts = rails.check_passages([_passage(n) for n in kept_nodes])
                kept_ids = {p.doc_id for p in kept_passages}
                kept_nodes = [n for n in kept_nodes if _passage(n).doc_id in kept_ids]
                topic = rails.off_topic_verdict(_topic_scores(asked, corpus, retrieved))
                verdicts += [*passage_verdicts, topic]
                sp.set_outputs({"verdicts": [asdict(v) for v in (*passage_verdicts, topic)]})
            if topic.action == "block":
                text = prompts.OFF_TOPIC[settings.lang]
                yield text
                run.result = finish(tr, text, [], retrieved, "miss", True, cache_verdict=verdict)
                _close(run, tr)
                return
        passages = [_passage(n) for n in kept_nodes]  # whole passages: what the page opens and the rails check
        if settings.focus:  # the model gets each passage's best clauses only (focus.py: shorter, fewer to mis-copy)
            kept_nodes = ClauseFocus(keep=settings.focus).postprocess_nodes(kept_nodes, query_str=asked)
        prompts.tag_nodes(kept_nodes)
        # llm: LlamaIndex's synthesizer fills the template and streams from the instruct model
        text = ""
        llm_start = time.perf_counter()
        with tr.span("llm", "CHAT_MODEL", {"question": asked, "passages": [p.doc_id for p in passages]}) as sp:
            if passages:
                response = synthesizer(llm, settings.lang).synthesize(asked, nodes=kept_nodes)
                for piece in response.response_gen:
                    text += piece
                    yield piece
            else:  # nothing left to answer from: the fixed refusal, no model call
                text = prompts.REFUSAL[settings.lang]
                yield text
            messages = llm.last_messages
            prompt_tokens = (
                count_tokens("\n".join(m["content"] for m in messages), settings.model) if messages else None
            )
            completion_tokens = count_tokens(text, settings.model) if messages else None
            sp.set_outputs(tracing.chat_outputs(text))
            sp.set_attributes(
                tracing.llm_attributes(
                    model, prompt_tokens, completion_tokens, llm.first_token_s, time.perf_counter() - llm_start
                )
            )
            sp.set_attributes({"messages": messages})
        # rails.output: grounded in the passages
        grounded = True
        if settings.rails:
            with tr.span("rails.output", "GUARDRAIL", {"answer": text}) as sp:
                out = rails.check_output(text, passages)
                verdicts += out
                grounded = all(v.passed for v in out)
                sp.set_outputs({"verdicts": [asdict(v) for v in out]})
        if settings.cache and grounded and passages:
            with tr.span("cache.store", "MEMORY", {"question": asked, "scope": scope}):
                shared_cache().store(asked, scope, text, [p.doc_id for p in passages])
        run.result = finish(
            tr,
            text,
            passages,
            retrieved,
            "miss" if settings.cache else "off",
            False,
            messages=messages,
            prompt_tokens=prompt_tokens,
            first_token_s=llm.first_token_s,
            cache_verdict=verdict,
        )
    _close(run, tr)


def _close(run: RagRun, tr) -> None:
    """After the trace's context closed: its id (or the warning that there is none) goes on the answer."""
    if run.result is None:
        return
    run.result.trace_id = tr.trace_id
    if tr.warning and tr.warning not in run.result.warnings:
        run.result.warnings.append(tr.warning)
        run.result.warning_fmt[tr.warning] = dict(getattr(tr, "warning_fmt", None) or {})


def _topic_scores(question: str, corpus: Corpus, retrieved: list[Passage]) -> list[float]:
    """Absolute scores for the off-topic rail: the Korean encoder's cosines for the Constitution (what the rail's
    threshold was chosen on); for an upload, the retriever's own [0, 1] scores."""
    if corpus.corpus_id == CONSTITUTION:
        return rails.question_topic_scores(question)
    return [p.score for p in retrieved]


def answer_without_rag(question: str, settings: RagSettings = RagSettings()) -> Iterator[str]:
    """The same model with no passages: the left column of the page's side-by-side."""
    from engine.serving.client import RESTART_MARK, stream_chat

    question = check_question(question)
    settings = check_settings(settings)
    for piece in stream_chat(
        prompts.no_rag_messages(question, settings.lang),
        max_tokens=settings.max_tokens,
        temperature=0.0,
        seed=0,
        role=settings.model,
    ):
        if piece != RESTART_MARK:
            yield piece


def with_settings(settings: RagSettings, **changes) -> RagSettings:
    return check_settings(replace(settings, **changes))


__all__ = [
    "Corpus",
    "RagAnswer",
    "RagRun",
    "RagSettings",
    "answer",
    "answer_without_rag",
    "ask",
    "constitution",
    "query_engine",
    "upload_corpus",
]
