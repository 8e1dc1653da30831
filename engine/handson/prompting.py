"""Hands-On LLM ch.6, the prompt studio: what a chat template really sends, and six prompting techniques measured on
one small Korean task set with the `instruct` model (Qwen2.5-Coder-0.5B on the llama.cpp server).

The task: twenty two-step arithmetic word problems in Korean with integer answers (assets/prompting/
word_problems.yaml), scored by exact match of the parsed integer. Techniques:

- `zero_shot`        the question and "answer with the number only".
- `few_shot`         three worked question -> number pairs first (problems not in the set).
- `cot`              chain-of-thought: "solve step by step, end with '답: N'" (Wei et al. 2022), greedy.
- `self_consistency` several chain-of-thought samples at temperature 0.8, majority vote on the final numbers
                     (Wang et al. 2022): the same prompt, more compute.
- `tot`              tree-of-thought as a real search (Yao et al. 2023), not one prompt: a breadth-first search
                     whose nodes are partial solutions. Each node is expanded by sampling k next steps; each new node
                     is valued by the model (a 1-5 score under a JSON-schema grammar) and by checking every
                     "a op b = c" it wrote with Python (a wrong calculation is worth 0); the best b nodes survive each
                     level; the best leaf is finished greedily.
- `structured`       the answer as JSON {"steps": str, "answer": int}: once asked for in words only, once constrained
                     by a JSON-schema grammar (the server turns the schema into a grammar). Validity = the reply parses
                     and has an integer `answer`.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import yaml

from engine.core.assets import ASSETS
from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError

TECHNIQUES = ("zero_shot", "few_shot", "cot", "self_consistency", "tot", "structured_free", "structured_grammar")
DEFAULT_ROLE = "instruct-large"  # Qwen2.5-Coder-1.5B: the 0.5B solves almost none of these in any technique


def role() -> str:
    return os.environ.get("LLMLAB_PROMPT_ROLE", DEFAULT_ROLE)


SYSTEM = "당신은 초등학교 수학 문제를 푸는 도우미입니다."
FEW_SHOT = (  # not in the task set
    ("사탕이 20개 있었는데 7개를 먹었습니다. 남은 사탕은 몇 개입니까?", "13"),
    ("한 묶음에 꽃이 5송이입니다. 6묶음이면 꽃은 모두 몇 송이입니까?", "30"),
    ("우유 한 개는 900원입니다. 우유 3개를 사고 5000원을 내면 거스름돈은 얼마입니까?", "2300"),
)
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"steps": {"type": "string", "maxLength": 300}, "answer": {"type": "integer"}},
    "required": ["steps", "answer"],
}
SCORE_SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer", "enum": [1, 2, 3, 4, 5]}},
    "required": ["score"],
}
_INT = re.compile(r"-?\d[\d,]*")
_FINAL = re.compile(r"답\s*[:：]\s*(-?[\d,]+)")
_CALC = re.compile(r"(\d[\d,]*(?:\s*[-+×x*/÷]\s*\d[\d,]*)+)\s*=\s*(-?\d[\d,]*)")

Chat = Callable[..., str]  # chat(messages, temperature=, seed=, max_tokens=) -> text
Structured = Callable[..., dict]  # structured(messages, schema, max_tokens=, temperature=) -> dict


@dataclass(frozen=True)
class Problem:
    id: str
    question: str
    answer: int


@lru_cache(maxsize=1)
def problems() -> tuple[Problem, ...]:
    raw = yaml.safe_load((ASSETS / "prompting" / "word_problems.yaml").read_text(encoding="utf-8"))
    return tuple(Problem(p["id"], p["question"], int(p["answer"])) for p in raw)


# -- parsing -----------------------------------------------------------------------------------------------------------


def parse_int(text: str | None) -> int | None:
    """The answer in a reply: the number after '답:' if there is one, else the last integer; None if none."""
    if not text:
        return None
    m = _FINAL.findall(text)
    found = m[-1] if m else (_INT.findall(text) or [None])[-1]
    if found is None:
        return None
    try:
        return int(found.replace(",", ""))
    except ValueError:
        return None


def wrong_calculations(text: str) -> int:
    """How many 'a op b = c' written in `text` are false (× x * ÷ / + - accepted); the tool half of ToT's value."""
    wrong = 0
    for expr, result in _CALC.findall(text or ""):
        py = expr.replace(",", "").replace("×", "*").replace("x", "*").replace("÷", "/")
        try:
            value = eval(py, {"__builtins__": {}}, {})
        except (SyntaxError, ZeroDivisionError):
            wrong += 1
            continue
        if abs(value - int(result.replace(",", ""))) > 1e-9:
            wrong += 1
    return wrong


def valid_answer_json(text: str | None) -> dict | None:
    """The reply as {"steps", "answer": int} or None: what 'valid structured output' means here."""
    if not text:
        return None
    m = re.search(r"\{.*\}", text, re.S)
    try:
        obj = json.loads(m.group(0) if m else text)
    except (ValueError, TypeError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("answer"), int) or isinstance(obj.get("answer"), bool):
        return None
    return obj


# -- prompts -----------------------------------------------------------------------------------------------------------


def messages_for(technique: str, question: str) -> list[dict]:
    sys = {"role": "system", "content": SYSTEM}
    if technique == "zero_shot":
        return [sys, {"role": "user", "content": f"{question}\n숫자 하나로만 답하세요."}]
    if technique == "few_shot":
        shots = []
        for q, a in FEW_SHOT:
            shots += [{"role": "user", "content": f"{q}\n숫자 하나로만 답하세요."}, {"role": "assistant", "content": a}]
        return [sys, *shots, {"role": "user", "content": f"{question}\n숫자 하나로만 답하세요."}]
    if technique in ("cot", "self_consistency"):
        ask = f"{question}\n단계별로 계산식을 쓰며 풀고, 마지막 줄에 '답: 숫자' 형식으로 답하세요."
        return [sys, {"role": "user", "content": ask}]
    if technique in ("structured_free", "structured_grammar"):
        ask = f'{question}\n풀이와 답을 JSON 하나로만 답하세요. 형식: {{"steps": "풀이", "answer": 정수}}'
        return [sys, {"role": "user", "content": ask}]
    raise InputError("input.unknown_choice", name="technique", value=technique, choices=list(TECHNIQUES))


# -- tree of thought ---------------------------------------------------------------------------------------------------


@dataclass
class Node:
    steps: tuple[str, ...]
    score: float = 0.0
    model_score: int | None = None
    wrong_calcs: int = 0
    depth: int = 0
    parent: int | None = None  # index in the tree list
    kept: bool = False


@dataclass
class TotConfig:
    breadth: int = 2  # b: nodes kept per level
    proposals: int = 2  # k: next steps sampled per kept node
    depth: int = 2  # levels of steps before the final answer

    def __post_init__(self) -> None:
        for name, value, hi in (
            ("breadth", self.breadth, 4),
            ("proposals", self.proposals, 4),
            ("depth", self.depth, 4),
        ):
            if not 1 <= value <= hi:
                raise InputError("input.out_of_range", name=name, low=1, high=hi, value=value)


# The three prompts of the search: propose the next step, value a partial solution, finish the best one.
_PROPOSE = "다음 한 단계만 계산식 한 줄로 쓰세요 (예: 12 - 5 = 7). 다른 말은 쓰지 마세요."
_VALUE = "이 풀이가 올바르게 정답으로 가고 있는지 1(틀림)~5(확실히 맞음) 점수로 평가하세요. JSON으로만 답하세요."
_FINISH = "이 풀이를 이어서 마무리하고, 마지막 줄에 '답: 숫자' 형식으로 답하세요."


def _tot_messages(question: str, steps: tuple[str, ...], ask: str) -> list[dict]:
    done = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(steps)) or "(아직 없음)"
    user = f"문제: {question}\n지금까지의 풀이:\n{done}\n{ask}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def tree_of_thought(
    question: str, chat: Chat, structured: Structured, cfg: TotConfig = TotConfig(), on_node=None
) -> tuple[str, list[Node]]:
    """BFS over partial solutions; returns (final reply, every node of the tree in creation order)."""
    tree = [Node(steps=(), kept=True)]
    frontier = [0]
    seed = 0
    for depth in range(1, cfg.depth + 1):
        children = []
        for parent in frontier:
            for _ in range(cfg.proposals):
                seed += 1
                text = chat(
                    _tot_messages(question, tree[parent].steps, _PROPOSE), temperature=0.8, seed=seed, max_tokens=40
                )
                step = (text.strip().splitlines() or [""])[0].strip()[:120]
                node = Node(steps=(*tree[parent].steps, step), depth=depth, parent=parent)
                node.wrong_calcs = wrong_calculations(step)
                try:
                    node.model_score = int(
                        structured(_tot_messages(question, node.steps, _VALUE), SCORE_SCHEMA, max_tokens=16)["score"]
                    )
                except (KeyError, TypeError, ValueError):
                    node.model_score = 1
                # a false calculation sinks the node whatever the model thinks; otherwise the model's judgement
                node.score = 0.0 if node.wrong_calcs else float(node.model_score)
                tree.append(node)
                children.append(len(tree) - 1)
                if on_node:
                    on_node(node)
        children.sort(key=lambda i: -tree[i].score)  # stable: ties keep creation order (deterministic)
        frontier = children[: cfg.breadth]
        for i in frontier:
            tree[i].kept = True
    best = frontier[0]
    final = chat(_tot_messages(question, tree[best].steps, _FINISH), temperature=0.0, seed=0, max_tokens=160)
    return final, tree


# -- running a technique -----------------------------------------------------------------------------------------------


@dataclass
class Attempt:
    problem: str
    gold: int
    predicted: int | None
    correct: bool
    calls: int
    seconds: float
    valid: bool | None = None  # structured output only
    reply: str = ""
    votes: dict = field(default_factory=dict)  # self-consistency: answer -> count
    tree: list[dict] = field(default_factory=list)  # tree of thought: the nodes


def run_technique(
    technique: str,
    problem: Problem,
    chat: Chat,
    structured: Structured,
    *,
    samples: int = 5,
    tot: TotConfig = TotConfig(),
) -> Attempt:
    start = time.perf_counter()
    if technique in ("zero_shot", "few_shot", "cot", "structured_free"):
        budget = 16 if technique in ("zero_shot", "few_shot") else 256
        reply = chat(messages_for(technique, problem.question), temperature=0.0, seed=0, max_tokens=budget)
        calls, votes, tree = 1, {}, []
        if technique == "structured_free":
            obj = valid_answer_json(reply)
            predicted, valid = (obj["answer"] if obj else None), obj is not None
        else:
            predicted, valid = parse_int(reply), None
    elif technique == "structured_grammar":
        try:
            obj = structured(messages_for(technique, problem.question), ANSWER_SCHEMA, max_tokens=256)
            reply = json.dumps(obj, ensure_ascii=False)
        except Exception as exc:
            if type(exc).__name__ != "ModelServerError" or getattr(exc, "code", "") != "server.bad_json":
                raise
            obj, reply = None, ""
        obj = valid_answer_json(reply) if obj is not None else None
        predicted, valid, calls, votes, tree = (obj["answer"] if obj else None), obj is not None, 1, {}, []
    elif technique == "self_consistency":
        answers = []
        reply = ""
        for seed in range(samples):
            text = chat(messages_for("cot", problem.question), temperature=0.8, seed=seed, max_tokens=256)
            reply = reply or text
            answers.append(parse_int(text))
        counted = Counter(a for a in answers if a is not None)
        predicted = counted.most_common(1)[0][0] if counted else None  # ties: the first answer seen
        calls, valid, tree = samples, None, []
        votes = {str(k): v for k, v in counted.items()}
    elif technique == "tot":
        reply, nodes = tree_of_thought(problem.question, chat, structured, tot)
        predicted, valid, votes = parse_int(reply), None, {}
        calls = 2 * (len(nodes) - 1) + 1
        tree = [asdict(n) for n in nodes]
    else:
        raise InputError("input.unknown_choice", name="technique", value=technique, choices=list(TECHNIQUES))
    return Attempt(
        problem.id,
        problem.answer,
        predicted,
        predicted == problem.answer,
        calls,
        round(time.perf_counter() - start, 2),
        valid,
        reply,
        votes,
        tree,
    )


@dataclass
class TechniqueResult:
    technique: str
    accuracy: float
    n: int
    seconds_per_item: float
    calls_per_item: float
    validity: float | None
    attempts: list[dict]


def compare_techniques(
    techniques: tuple[str, ...] = TECHNIQUES,
    limit: int = 10,
    chat: Chat | None = None,
    structured: Structured | None = None,
    samples: int = 5,
    tot: TotConfig = TotConfig(),
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[TechniqueResult]:
    """Each technique on the first `limit` problems, the same ones for every technique."""
    if not 1 <= limit <= len(problems()):
        raise InputError("input.out_of_range", name="limit", low=1, high=len(problems()), value=limit)
    chat, structured = chat or server_chat, structured or server_structured
    chosen = problems()[:limit]
    out, total, done = [], len(techniques) * limit, 0
    for technique in techniques:
        attempts = []
        for p in chosen:
            if should_stop():
                raise Cancelled()
            attempts.append(run_technique(technique, p, chat, structured, samples=samples, tot=tot))
            done += 1
            progress(done / total, f"{technique}: {len(attempts)}/{limit}")
        n = len(attempts)
        validity = [a.valid for a in attempts if a.valid is not None]
        out.append(
            TechniqueResult(
                technique,
                round(sum(a.correct for a in attempts) / n, 4),
                n,
                round(sum(a.seconds for a in attempts) / n, 2),
                round(sum(a.calls for a in attempts) / n, 2),
                round(sum(validity) / len(validity), 4) if validity else None,
                [asdict(a) for a in attempts],
            )
        )
    return out


# -- the real model server ---------------------------------------------------------------------------------------------


def server_chat(messages: list[dict], temperature: float = 0.0, seed: int = 0, max_tokens: int = 256) -> str:
    from engine.serving.client import chat

    return chat(messages, role=role(), temperature=temperature, seed=seed, max_tokens=max_tokens, top_p=1.0)


def server_structured(messages: list[dict], schema: dict, max_tokens: int = 256, temperature: float = 0.0) -> dict:
    from engine.serving.client import structured_chat

    return structured_chat(messages, schema, max_tokens=max_tokens, temperature=temperature, role=role())


# -- the chat template -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateView:
    text: str  # exactly what the model reads
    tokens: list[str]  # token strings
    special: list[bool]  # token is a special (control) token
    n_tokens: int


def render_template(
    messages: list[dict], add_generation_prompt: bool = True, model_role: str | None = None
) -> TemplateView:
    """The model's own chat template applied to `messages` (Jinja, from the tokenizer), and its tokens."""
    if not messages:
        raise InputError("input.empty")
    # the 0.5B and 1.5B share Qwen2.5's tokenizer and template; the 0.5B's is cached already (the 1.5B would
    # first be dequantized to fp32 just to read its tokenizer)
    tok = _tokenizer(model_role or "instruct")
    text = tok.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    special_ids = set(tok.all_special_ids) | {i for t, i in tok.get_added_vocab().items() if t.startswith("<|")}
    return TemplateView(text, [token_text(tok, i) for i in ids], [i in special_ids for i in ids], len(ids))


@lru_cache(maxsize=2)
def _tokenizer(role: str):
    """Loaded once per process: the template section redraws on every keystroke of its text areas."""
    from engine.models.loading import load_tokenizer

    return load_tokenizer(role)


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # GPT-2's byte <-> character table

    return {v: k for k, v in bytes_to_unicode().items()}


def token_text(tok, token_id: int) -> str:
    """A token as readable text. Byte-level BPE splits a Hangul syllable (3 UTF-8 bytes) across tokens; decoding
    such a token alone gives "�", so a token that is not whole UTF-8 is shown as its bytes (e.g. "<EC 95>")."""
    piece = tok.convert_ids_to_tokens(token_id)
    decoder = _byte_decoder()
    if not piece or any(ch not in decoder for ch in piece):  # a special or added token: its own text
        return tok.decode([token_id])
    raw = bytes(decoder[ch] for ch in piece)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "<" + " ".join(f"{b:02X}" for b in raw) + ">"
