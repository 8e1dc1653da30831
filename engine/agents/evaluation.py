"""Agent evaluation (book 15.3): a task suite with expected answers and expected tool trajectories.

Two questions about an agent run:

- Did it get the answer? `answer_matches`: the expected number appears in the answer (article numbers such as
  "제70조" and thousands separators are ignored), or the normalised expected text appears in it.
- Did it get there the expected way? `trajectory_match` compares the tool names it called with the reference:
  `strict` (the same calls in the same order), `unordered` (the same calls, any order), `subset` (it called nothing
  beyond the reference: no detours) and `superset` (it made at least every reference call; extra calls allowed).
  These are the modes of agentevals' `create_trajectory_match_evaluator` (tool arguments ignored);
  tests/engine/test_agents_evaluation.py asserts the same verdicts as agentevals on a set of cases.

Metrics over a split: success rate, steps, tokens (prompt + completion), latency (median) and the four trajectory
match rates. `dev` tunes prompts; `heldout` is run once for the reported figure.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.core.assets import asset
from engine.core.errors import UserError
from engine.core.progress import Cancelled, ProgressFn, null_progress

SPLITS = ("dev", "heldout")
MATCH_MODES = ("strict", "unordered", "subset", "superset")
CHECKS = ("number", "text")
MAX_TASKS_FILE_LINES = 200


@dataclass(frozen=True)
class AgentTask:
    id: str
    task: str
    answer: str
    check: str  # "number" or "text"
    trajectory: tuple[str, ...]
    split: str = ""

    @property
    def calls(self) -> int:
        return len(self.trajectory)


def load_tasks(split: str = "dev") -> list[AgentTask]:
    """The shipped suite (assets/agents/tasks.yaml), one split."""
    import yaml

    if split not in SPLITS:
        raise UserError("agents.eval.unknown_split", value=split, choices=", ".join(SPLITS))
    raw = yaml.safe_load(asset("agents", "tasks.yaml").read_text(encoding="utf-8"))
    out = []
    for i, item in enumerate(raw[split], 1):
        if item.get("check") not in CHECKS or not item.get("task") or "answer" not in item:
            raise UserError("agents.eval.bad_task", line=i, reason=f"{item.get('id')}: needs task, answer, check")
        out.append(
            AgentTask(item["id"], item["task"], str(item["answer"]), item["check"], tuple(item["trajectory"]), split)
        )
    return out


def read_tasks_file(path: Path | str) -> list[str]:
    """One task per line (blank lines and lines starting with # skipped), for `python -m engine agent`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError("agents.eval.bad_task", line=0, reason=f"{path}: {type(exc).__name__}") from exc
    tasks = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not tasks:
        raise UserError("agents.eval.no_tasks", path=str(path))
    if len(tasks) > MAX_TASKS_FILE_LINES:
        raise UserError("input.too_many", name="tasks", limit=MAX_TASKS_FILE_LINES, value=len(tasks))
    return tasks


# --- answers ---------------------------------------------------------------------------------------------------

_ARTICLE = re.compile(r"제\s*\d+\s*(?:조|항|호|장|절)(?:의\s*\d+)?")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def normalise(text: str) -> str:
    """Lower case, no spaces or punctuation (Korean spacing varies: 민주 공화국 = 민주공화국)."""
    return re.sub(r"[\s\W_]+", "", str(text).lower())


def numbers_in(text: str) -> list[float]:
    """The numbers an answer states: thousands separators dropped, article references (제70조, 제2항) ignored."""
    text = _ARTICLE.sub(" ", str(text))
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)
    return [float(m) for m in _NUMBER.findall(text)]


def answer_matches(answer: str | None, expected: str, check: str = "number", task: str = "") -> bool:
    """Whether the answer states the expected number (or contains the expected text). A number the task itself
    mentions does not count when the answer only repeats it ("9801을 99로 나누면 100" is not 99): it must then be
    the answer's last number."""
    if not answer:
        return False
    if check == "number":
        want = float(expected)

        def same(n: float) -> bool:
            return abs(n - want) <= 1e-6 * max(1.0, abs(want))

        found = numbers_in(answer)
        given = numbers_in(task)
        return any(same(n) and not any(same(g) for g in given) for n in found) or bool(found and same(found[-1]))
    return normalise(expected) in normalise(answer)


# --- trajectories ----------------------------------------------------------------------------------------------


def trajectory_match(actual: Sequence[str], expected: Sequence[str], mode: str = "strict") -> bool:
    """Compare tool-name trajectories the way agentevals does (arguments ignored; calls as a multiset except strict)."""
    if mode not in MATCH_MODES:
        raise UserError("agents.eval.unknown_mode", value=mode, choices=", ".join(MATCH_MODES))
    a, e = Counter(actual), Counter(expected)
    if mode == "strict":
        return list(actual) == list(expected)
    if mode == "unordered":
        return a == e
    if mode == "subset":  # every call it made is in the reference (each reference call used once)
        return all(a[k] <= e[k] for k in a)
    return all(a[k] >= e[k] for k in e)  # superset: every reference call was made


def as_messages(task: str, calls: Sequence[str], answer: str = "") -> list[dict]:
    """A tool-name trajectory as OpenAI messages (one call per assistant turn), the form agentevals reads."""
    import json

    msgs: list[dict] = [{"role": "user", "content": task}]
    for i, name in enumerate(calls):
        call = {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps({})}}
        msgs += [
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "content": "", "tool_call_id": f"call_{i}"},
        ]
    msgs.append({"role": "assistant", "content": answer})
    return msgs


# --- running a split -------------------------------------------------------------------------------------------


@dataclass
class TaskResult:
    id: str
    task: str
    expected: str
    answer: str | None
    success: bool
    calls: list[str]  # tool names it called, in order (executed calls only)
    reference: list[str]
    match: dict[str, bool]  # mode -> verdict
    steps: int
    tokens: int  # prompt + completion tokens over all steps
    seconds: float
    error: str | None
    run: dict = field(default_factory=dict)  # the trace (AgentRun.as_dict, observations cut to TRACE_CHARS)


TRACE_CHARS = 400


def _trace(run) -> dict:
    d = run.as_dict()
    for s in d["steps"]:
        for k in ("observation", "raw"):
            if len(s[k]) > TRACE_CHARS:
                s[k] = s[k][:TRACE_CHARS] + " …"
    return d


@dataclass
class EvalReport:
    split: str
    mode: str  # native / react
    results: list[TaskResult] = field(default_factory=list)
    total_seconds: float = 0.0

    @property
    def n(self) -> int:
        return len(self.results)

    def summary(self) -> dict:
        r = self.results
        if not r:
            return {"tasks": 0}
        by_calls: dict[str, list[bool]] = {}
        for x in r:
            by_calls.setdefault(str(len(x.reference)), []).append(x.success)
        return {
            "tasks": len(r),
            "success_rate": sum(x.success for x in r) / len(r),
            "median_seconds": statistics.median(x.seconds for x in r),
            "mean_steps": statistics.mean(x.steps for x in r),
            "mean_tokens": statistics.mean(x.tokens for x in r),
            "match_rates": {m: sum(x.match[m] for x in r) / len(r) for m in MATCH_MODES},
            "success_by_calls": {k: sum(v) / len(v) for k, v in sorted(by_calls.items())},
            "errors": dict(Counter(x.error for x in r if x.error)),
        }

    def as_dict(self) -> dict:
        return {
            "split": self.split,
            "mode": self.mode,
            "summary": self.summary(),
            "total_seconds": round(self.total_seconds, 2),
            "results": [asdict(x) for x in self.results],
        }


def score(task: AgentTask, run) -> TaskResult:
    """One finished AgentRun against its task."""
    calls = [c["name"] for c in run.tool_calls]
    return TaskResult(
        id=task.id,
        task=task.task,
        expected=task.answer,
        answer=run.answer,
        success=answer_matches(run.answer, task.answer, task.check, task.task),
        calls=calls,
        reference=list(task.trajectory),
        match={m: trajectory_match(calls, task.trajectory, m) for m in MATCH_MODES},
        steps=len(run.steps),
        tokens=run.tokens_in + run.tokens_out,
        seconds=round(run.seconds, 3),
        error=run.error,
        run=_trace(run),
    )


def evaluate(
    split: str = "dev",
    *,
    tools=None,
    mode: str = "native",
    role: str | None = None,
    max_steps: int = 6,
    limit: int | None = None,
    ids: Sequence[str] | None = None,
    progress: ProgressFn = null_progress,
    on_row: Callable[[TaskResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    model=None,
    route: bool | None = None,
    plan: bool | None = None,
) -> EvalReport:
    """Run the agent on every task of `split` (or the first `limit`, or the given ids) and score it.

    A Stop raises `Cancelled` with the finished rows as `.partial`."""
    from engine.agents.loop import run_agent

    if tools is None:
        from engine.agents.tools import default_tools

        tools = default_tools()
    tasks = load_tasks(split)
    if ids:
        tasks = [t for t in tasks if t.id in set(ids)]
    if limit is not None:
        tasks = tasks[: max(1, int(limit))]
    report = EvalReport(split, mode)
    started = time.perf_counter()
    for i, task in enumerate(tasks):
        if should_stop and should_stop():
            exc = Cancelled(f"stopped after {i} tasks")
            exc.partial = list(report.results)
            raise exc
        progress(i / len(tasks), f"{task.id} ({i + 1}/{len(tasks)})")
        run = run_agent(
            task.task, tools, mode=mode, role=role, max_steps=max_steps, model=model, route=route, plan=plan
        )
        row = score(task, run)
        report.results.append(row)
        if on_row:
            on_row(row)
    progress(1.0, "done")
    report.total_seconds = time.perf_counter() - started
    return report


__all__ = [
    "MATCH_MODES",
    "SPLITS",
    "AgentTask",
    "EvalReport",
    "TaskResult",
    "answer_matches",
    "as_messages",
    "evaluate",
    "load_tasks",
    "normalise",
    "numbers_in",
    "read_tasks_file",
    "score",
    "trajectory_match",
]
