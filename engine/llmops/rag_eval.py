"""RAG evaluation (book 13.3): context precision, context recall, faithfulness and answer relevance, for two
chapter 9 configurations side by side on the held-out Constitution questions (engine/rag/heldout.py).

The four metrics follow ragas's definitions (ragas 0.4.3, `ragas.metrics`); they are computed here, each tested on
hand-made cases (tests/engine/test_llmops_rag_eval.py), because ragas with the local 0.5B model does not tell answers
apart (probed 2026-12-02 in a throw-away venv; ragas 0.4.3 imports only with langchain-community<0.4): its
ResponseRelevancy scored a correct answer 0 (the model flagged every answer "noncommittal"), context precision was 0
for the right article under `ragas.metrics.collections` and 1 for an unrelated one under `evaluate()`, and
Faithfulness through `evaluate()` failed with `OutputParserException: Invalid json output` (unescaped quotes).
Here the LLM steps run under a JSON schema (a grammar), relevance comes from the gold articles, and the embedder
reads Korean:

- **context precision** — ragas's rank-aware average precision over the passages the model saw, in rank order:
  `sum_k precision@k * v_k / sum_k v_k`, with `v_k` = 1 when passage k is relevant; 0 when none is. Relevance comes
  from the question's gold articles (ragas's reference-id route, as `IDBasedContextRecall` uses), not from an LLM:
  the held-out set names them, and a 0.5B judge of relevance would add its own noise to the comparison.
- **context recall** — ragas's `IDBasedContextRecall`: the share of the gold articles among the passages.
- **faithfulness** — ragas's `Faithfulness`: the answer's statements, the LLM says of each whether the passages
  (as the prompt showed them: the focused clauses) support it, and the score is supported / statements. An answer
  with no statement (the fixed refusal, or an empty answer) has no faithfulness (None), as ragas returns NaN.
  One deviation: the statements are the answer's sentences (citation tags removed; `split_statements`), not an LLM
  decomposition. Measured: asked for statements under a JSON schema, the 0.5B model turned "대통령의 임기는
  5년입니다 [제70조]." into three, one of them a 300-character loop ("그는 대통령의 잠기를 잠기 때문에, …") and
  one a lone "+", and scored its own correct answer 0.33; the chapter 9 answers are one or two sentences, which is
  what a decomposition of them would give.
- **answer relevance** — ragas's `ResponseRelevancy`: the LLM writes `N_QUESTIONS` questions the answer answers and
  says whether the answer is noncommittal; the score is the mean cosine between those questions and the real one
  under the embedder, times 0 for a noncommittal answer. The embedder is the RAG chapter's own Korean morpheme
  encoder for the Constitution (`engine.rag.vector_db.korean_embedding`): the packaged English MiniLM splits Hangul
  into jamo and cannot compare Korean questions.

The LLM-based steps go through `engine.serving.structured_chat` with a JSON schema (a grammar on the local llama.cpp
server), greedy; an unusable reply costs that metric for that question (None, counted in `invalid`), never the run.
The judge model is the `instruct` role by default — the same 0.5B model that wrote the answers, which is the usual
and questionable set-up; `judge_role` changes it (`openai` with a key).

The two configurations (`CONFIGS`) are the chapter 9 retrievers at the page's defaults, cache off: `best` (BM25 over
Kiwi morphemes + the Korean encoder, fused, reranked by late interaction) and `chroma` (the book's plain dense
search in Chroma). `phrase_found` (the held-out rule check) is reported beside the four as a sanity line.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.llmops.judge import bootstrap_ci, judge_server_role

N_QUESTIONS = 3  # ragas's `strictness`: questions generated per answer for answer relevance
MAX_STATEMENTS = 5
MAX_QUESTIONS = 42  # the held-out set's size
DEFAULT_QUESTIONS = 15
METRICS = ("context_precision", "context_recall", "faithfulness", "answer_relevance")


@dataclass(frozen=True)
class RagConfig:
    name: str
    retriever: str  # engine.rag.retrievers.RETRIEVERS
    top_k: int = 5
    description: str = ""

    def settings(self):
        from engine.rag.pipeline import RagSettings

        return RagSettings(retriever=self.retriever, top_k=self.top_k, cache=False)


CONFIGS: dict[str, RagConfig] = {
    "best": RagConfig("best", "best", description="BM25 (Kiwi) + Korean encoder, fused, late-interaction rerank"),
    "chroma": RagConfig("chroma", "chroma", description="plain dense search in Chroma (the book's shape)"),
}


# --- the metrics on one sample (pure: tested exactly) ------------------------------------------------------------
def context_precision(relevant: Sequence[bool | int]) -> float:
    """ragas's average precision over ranked passages: sum_k precision@k * v_k / sum_k v_k (0 when none relevant)."""
    v = [1 if r else 0 for r in relevant]
    hits = sum(v)
    if hits == 0:
        return 0.0
    return sum(sum(v[: k + 1]) / (k + 1) * v[k] for k in range(len(v))) / hits


def context_recall(retrieved_ids: Sequence[str], gold_ids: Sequence[str]) -> float | None:
    """ragas's IDBasedContextRecall: |gold ∩ retrieved| / |gold| (None without gold ids)."""
    gold = {str(g) for g in gold_ids}
    if not gold:
        return None
    return len(gold & {str(r) for r in retrieved_ids}) / len(gold)


def faithfulness_score(verdicts: Sequence[bool]) -> float | None:
    """Supported statements / statements (None when the answer has no statement)."""
    return sum(bool(v) for v in verdicts) / len(verdicts) if verdicts else None


def relevance_score(question_vec: np.ndarray, generated_vecs: np.ndarray, noncommittal: bool) -> float:
    """Mean cosine of the generated questions with the real one, times 0 for a noncommittal answer."""
    q = np.asarray(question_vec, dtype=np.float64).reshape(-1)
    g = np.asarray(generated_vecs, dtype=np.float64).reshape(-1, q.size)
    qn = np.linalg.norm(q)
    gn = np.linalg.norm(g, axis=1)
    cos = np.where((gn > 1e-12) & (qn > 1e-12), g @ q / np.maximum(gn * qn, 1e-12), 0.0)
    return 0.0 if noncommittal else float(cos.mean())


# --- the LLM steps ----------------------------------------------------------------------------------------------
VERIFY_PROMPT = (
    'Here are some passages and {n} statements. For each statement, in order, say "yes" if it can be directly '
    'inferred from the passages, "no" if it cannot.\n\n[Passages]\n{context}\n\n[Statements]\n{statements}'
)
QUESTIONS_PROMPT = (
    "Write {n} different questions that the answer below answers, in the answer's language (Korean for a Korean "
    "answer). Also say whether the answer is noncommittal: evasive, vague, or saying it cannot answer "
    '(e.g. "I don\'t know", "제공된 문서에서 찾을 수 없습니다").\n\n[Answer]\n{answer}'
)


def _verdicts_schema(n: int) -> dict:
    return {
        "type": "object",
        "properties": {
            "verdicts": {
                "type": "array",
                "items": {"type": "string", "enum": ["yes", "no"]},
                "minItems": n,
                "maxItems": n,
            }
        },
        "required": ["verdicts"],
    }


def _questions_schema() -> dict:
    return {
        "type": "object",
        "properties": {
            "questions": {
                "type": "array",
                "items": {"type": "string", "maxLength": 150},
                "minItems": N_QUESTIONS,
                "maxItems": N_QUESTIONS,
            },
            "noncommittal": {"type": "boolean"},
        },
        "required": ["questions", "noncommittal"],
    }


def _ask(prompt: str, schema: dict, role: str, max_tokens: int) -> dict | None:
    """One greedy structured call; None when the reply is unusable (not JSON, cut off)."""
    from engine.serving.client import ModelServerError, structured_chat

    try:
        reply = structured_chat(
            [{"role": "user", "content": prompt}], schema, name="rag_eval", max_tokens=max_tokens, role=role
        )
    except ModelServerError as exc:
        if exc.code != "server.bad_json":
            raise
        return None
    return reply if isinstance(reply, dict) else None


@dataclass(frozen=True)
class Faithfulness:
    score: float | None
    statements: list[str]
    verdicts: list[bool]
    invalid: bool = False  # a step's reply was unusable


_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+|\n+")
_TAG = re.compile(r"\[[^\[\]\n]{1,80}\]")


def split_statements(answer: str, limit: int = MAX_STATEMENTS) -> list[str]:
    """The answer's claims for faithfulness: its sentences, citation tags removed, at most `limit`, repeats dropped;
    a piece with no letter (a lone "+" or ".") is not a claim."""
    out: list[str] = []
    for piece in _SENTENCE_END.split(_TAG.sub("", answer)):
        text = " ".join(piece.split()).strip("[] ")
        text = re.sub(r"\s+([.!?。])$", r"\1", text)
        if text and any(ch.isalpha() for ch in text) and text not in out:
            out.append(text)
    return out[:limit]


def faithfulness(question: str, answer: str, contexts: Sequence[str], role: str = "instruct") -> Faithfulness:
    """ragas's faithfulness: the answer's statements (`split_statements`), then one LLM call that says yes/no for
    each against the passages; supported / statements. `question` is kept for ragas's signature (user_input)."""
    from engine.rag.prompts import REFUSAL

    role = judge_server_role(role)
    if not answer.strip() or answer.strip() in REFUSAL.values():
        return Faithfulness(None, [], [])
    statements = split_statements(answer)
    if not statements:
        return Faithfulness(None, [], [])
    listed = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(statements))
    context = "\n\n".join(contexts)
    got = _ask(
        VERIFY_PROMPT.format(n=len(statements), context=context, statements=listed),
        _verdicts_schema(len(statements)),
        role,
        16 + 6 * len(statements),
    )
    verdicts = got.get("verdicts") if got else None
    if not isinstance(verdicts, list) or len(verdicts) != len(statements):
        return Faithfulness(None, statements, [], invalid=True)
    flags = [str(v).strip().lower() == "yes" for v in verdicts]
    return Faithfulness(faithfulness_score(flags), statements, flags)


@dataclass(frozen=True)
class Relevance:
    score: float | None
    questions: list[str]
    noncommittal: bool
    invalid: bool = False


def answer_relevance(
    question: str, answer: str, embed: Callable[[list[str]], np.ndarray], role: str = "instruct"
) -> Relevance:
    """ragas's ResponseRelevancy: questions generated from the answer, compared with the real one by `embed`."""
    role = judge_server_role(role)
    if not answer.strip():
        return Relevance(0.0, [], True)
    got = _ask(QUESTIONS_PROMPT.format(n=N_QUESTIONS, answer=answer), _questions_schema(), role, 300)
    questions = got.get("questions") if got else None
    if not isinstance(questions, list) or not questions:
        return Relevance(None, [], False, invalid=True)
    questions = [str(q).strip() for q in questions]
    noncommittal = bool(got.get("noncommittal", False))
    vecs = np.asarray(embed([question, *questions]))
    return Relevance(relevance_score(vecs[0], vecs[1:], noncommittal), questions, noncommittal)


def korean_embedder() -> Callable[[list[str]], np.ndarray]:
    """The chapter 9 embedder for the Constitution: unit vectors from the Korean morpheme encoder."""
    from engine.rag.documents import CONSTITUTION, constitution_passages
    from engine.rag.vector_db import korean_embedding

    emb = korean_embedding(CONSTITUTION, constitution_passages())
    return lambda texts: emb.encode(list(texts))


# --- one configuration over the questions -----------------------------------------------------------------------
@dataclass
class SampleScore:
    question: str
    answer: str
    gold: list[str]
    passages: list[str]  # doc ids the model saw, in rank order
    context_precision: float | None
    context_recall: float | None
    faithfulness: float | None
    answer_relevance: float | None
    phrase_found: bool
    statements: list[str] = field(default_factory=list)
    verdicts: list[bool] = field(default_factory=list)
    generated_questions: list[str] = field(default_factory=list)
    noncommittal: bool = False
    invalid: int = 0  # LLM metric steps whose reply was unusable
    seconds: float = 0.0  # answering plus scoring


@dataclass
class ConfigScore:
    config: str
    description: str
    retriever: str
    top_k: int
    n: int
    context_precision: float | None
    context_recall: float | None
    faithfulness: float | None
    answer_relevance: float | None
    phrase_found: float | None
    faithfulness_n: int  # questions whose answer had statements (the mean's denominator)
    invalid: int
    seconds: float
    model: str = ""
    judge_model: str = ""
    ci: dict[str, list[float | None]] = field(default_factory=dict)  # metric -> [low, high], bootstrap over questions
    samples: list[SampleScore] = field(default_factory=list)

    def to_json(self, with_samples: bool = False) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "samples"}
        for k in (*METRICS, "phrase_found"):
            out[k] = None if out[k] is None else round(out[k], 4)
        out["seconds"] = round(self.seconds, 2)
        out["ci"] = {k: [None if x is None else round(x, 4) for x in v] for k, v in self.ci.items()}
        if with_samples:
            out["samples"] = [
                asdict(s) | {m: None if getattr(s, m) is None else round(getattr(s, m), 4) for m in METRICS}
                for s in self.samples
            ]
        return out


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _mean_ci(values: Sequence[float | None]) -> list[float | None]:
    vals = np.asarray([v for v in values if v is not None], dtype=np.float64)
    low, high = bootstrap_ci(lambda idx: float(vals[idx].mean()), len(vals))
    return [low, high]


def score_sample(
    question: str,
    answer: str,
    passages: Sequence,
    gold: Sequence[str],
    embed: Callable[[list[str]], np.ndarray],
    judge_role: str = "instruct",
    phrases: Sequence[str] = (),
    contexts: Sequence[str] | None = None,
) -> SampleScore:
    """The four metrics for one answered question (`passages`: engine.rag Passage objects the model saw, ranked;
    `phrases`: the held-out gold phrases for the rule check, if any; `contexts`: the passage text as the prompt
    had it, default the whole passages)."""
    from engine.rag.heldout import HeldoutQuestion, phrase_found

    start = time.perf_counter()
    ids = [p.doc_id for p in passages]
    if contexts is None:
        contexts = [f"[{p.doc_id}] {p.text}" for p in passages]
    faith = faithfulness(question, answer, contexts, judge_role)
    rel = answer_relevance(question, answer, embed, judge_role)
    return SampleScore(
        question=question,
        answer=answer,
        gold=list(gold),
        passages=ids,
        context_precision=context_precision([i in set(gold) for i in ids]),
        context_recall=context_recall(ids, gold),
        faithfulness=faith.score,
        answer_relevance=rel.score,
        phrase_found=phrase_found(answer, HeldoutQuestion(question, tuple(gold), tuple(phrases))),
        statements=faith.statements,
        verdicts=faith.verdicts,
        generated_questions=rel.questions,
        noncommittal=rel.noncommittal,
        invalid=int(faith.invalid) + int(rel.invalid),
        seconds=time.perf_counter() - start,
    )


def prompt_context(res) -> list[str] | None:
    """The passages as the model was shown them (a RagAnswer's prompt: the focused clauses, tagged), so faithfulness
    is judged against what the answer could use; None when there was no model call (a refusal, a block)."""
    from engine.rag.prompts import USER

    if not res.messages:
        return None
    user = res.messages[-1]["content"]
    for template in USER.values():
        head, _, rest = template.partition("{context_str}")
        tail = rest.partition("{query_str}")[0]
        if user.startswith(head) and tail in user:
            block = user[len(head) : user.rindex(tail)]
            return [c.strip() for c in block.split("\n\n") if c.strip()]
    return None


def pick_questions(n: int = DEFAULT_QUESTIONS):
    """`n` held-out questions spread evenly over the set (it is ordered by topic)."""
    from engine.rag.heldout import load_heldout

    rows = load_heldout()
    if not 1 <= n <= len(rows):
        raise InputError("input.out_of_range", name="questions", low=1, high=len(rows), value=n)
    return [rows[(i * len(rows)) // n] for i in range(n)]


def parse_configs(text: str) -> list[str]:
    """ "best,chroma" -> ["best", "chroma"]: known names, no repeats, at least one."""
    names = [s.strip() for s in str(text).split(",") if s.strip()]
    if not names or len(set(names)) != len(names) or any(n not in CONFIGS for n in names):
        raise InputError("llmops.rag_eval.bad_configs", value=text, choices=", ".join(CONFIGS))
    return names


def evaluate_config(
    name: str,
    questions=None,
    judge_role: str = "instruct",
    embed: Callable[[list[str]], np.ndarray] | None = None,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
) -> ConfigScore:
    """Answer each held-out question with configuration `name` (the full ch.9 application, cache off) and score it.
    Stopping keeps the questions scored so far."""
    from engine.rag.pipeline import answer
    from engine.serving.client import model_name

    if name not in CONFIGS:
        raise InputError("llmops.rag_eval.bad_configs", value=name, choices=", ".join(CONFIGS))
    judge_server_role(judge_role)
    cfg = CONFIGS[name]
    questions = list(questions) if questions is not None else pick_questions()
    embed = embed or korean_embedder()
    settings = cfg.settings()
    samples: list[SampleScore] = []
    start = time.perf_counter()
    for i, row in enumerate(questions):
        if should_stop is not None and should_stop():
            break
        progress(i / max(len(questions), 1), f"{name}: {i + 1}/{len(questions)}")
        t0 = time.perf_counter()
        res = answer(row.question, settings=settings)
        sample = score_sample(
            row.question, res.answer, res.passages, row.gold, embed, judge_role, row.phrases, prompt_context(res)
        )
        sample.seconds = time.perf_counter() - t0
        samples.append(sample)
    progress(1.0, f"{name}: done")
    return ConfigScore(
        config=name,
        description=cfg.description,
        retriever=cfg.retriever,
        top_k=cfg.top_k,
        n=len(samples),
        context_precision=_mean([s.context_precision for s in samples]),
        context_recall=_mean([s.context_recall for s in samples]),
        faithfulness=_mean([s.faithfulness for s in samples]),
        answer_relevance=_mean([s.answer_relevance for s in samples]),
        phrase_found=_mean([float(s.phrase_found) for s in samples]),
        faithfulness_n=sum(s.faithfulness is not None for s in samples),
        invalid=sum(s.invalid for s in samples),
        seconds=time.perf_counter() - start,
        model=model_name(settings.model),
        judge_model=model_name(judge_server_role(judge_role)),
        ci={m: _mean_ci([getattr(s, m) for s in samples]) for m in METRICS},
        samples=samples,
    )


def compare_configs(
    names: Sequence[str] = ("best", "chroma"),
    n_questions: int = DEFAULT_QUESTIONS,
    judge_role: str = "instruct",
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
) -> list[ConfigScore]:
    """The comparison table: each configuration on the same held-out questions, one row each."""
    names = parse_configs(",".join(names))
    questions = pick_questions(n_questions)
    embed = korean_embedder()
    out = []
    for i, name in enumerate(names):

        def part(f: float, msg: str, i: int = i) -> None:
            progress((i + f) / len(names), msg)

        out.append(evaluate_config(name, questions, judge_role, embed, part, should_stop))
    return out


__all__ = [
    "CONFIGS",
    "METRICS",
    "ConfigScore",
    "RagConfig",
    "SampleScore",
    "answer_relevance",
    "compare_configs",
    "context_precision",
    "context_recall",
    "evaluate_config",
    "faithfulness",
    "faithfulness_score",
    "korean_embedder",
    "parse_configs",
    "pick_questions",
    "relevance_score",
    "score_sample",
    "split_statements",
]
