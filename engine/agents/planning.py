"""Plan, then execute: the facts a question needs, looked up one at a time, then its arithmetic.

Left to itself, the 1.5B model answers a question with two parts ("the president's term plus a member's term") with
one call: a single search for the whole question, a SQL query that subtracts two counts in one statement, or a
calculator call with made-up numbers, and then it answers with whatever came back (dev d14, d15: 0 of 6 held-out
multi-call tasks on 2026-12-03). Asked first for a plan under a JSON schema, with four worked examples, it splits the
dev questions correctly (15 of 15: no lookups for pure arithmetic, one lookup and no arithmetic for a single fact,
two lookups plus "앨범 수 - 아티스트 수" for a difference). The loop then carries out each lookup as its own small
question (the model's call, the router's when that is not usable) and forces the arithmetic on the tool whose
arguments are grounded (the calculator), so its numbers must come from the lookups. A one-fact question runs as
before: the plan only steps in when a question has more than one part (Plan-and-Solve, Wang et al., 2023; LangChain's
plan-and-execute agent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

MAX_LOOKUPS = 3

PLAN_SYSTEM = (
    "You plan how to answer a question with tools: a database query, a Constitution search, a calculator. "
    "List the separate facts the question needs looked up (each as a short question that one search or one "
    "database query answers), then the arithmetic the question asks for on those facts, written with words, "
    'or "" when it asks for no arithmetic. A question about one fact has one lookup and no arithmetic. '
    "A question with all its numbers written in it has no lookups."
)

# worked examples (none of them in the task suite): pure arithmetic, one fact, two facts and a product, one fact
# and a quotient
PLAN_EXAMPLES = (
    ("12 나누기 4는 얼마인가요?", [], "12 / 4"),
    ("Chinook 데이터베이스에 국가는 몇 개인가요?", ["Chinook 데이터베이스의 국가 수"], ""),
    (
        "헌법상 국무위원 수와 감사위원 수를 곱하면 얼마인가요?",
        ["헌법상 국무위원 수", "헌법상 감사위원 수"],
        "국무위원 수 * 감사위원 수",
    ),
    ("Chinook 데이터베이스의 트랙 수를 7로 나누면 얼마인가요?", ["Chinook 데이터베이스의 트랙 수"], "트랙 수 / 7"),
)

PLAN_SCHEMA = {
    "type": "object",
    "properties": {
        "lookups": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_LOOKUPS},
        "arithmetic": {"type": "string"},
    },
    "required": ["lookups", "arithmetic"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Plan:
    lookups: list[str] = field(default_factory=list)
    arithmetic: str = ""

    @property
    def parts(self) -> int:
        return len(self.lookups) + bool(self.arithmetic)

    def steps(self) -> list[tuple[str, str]]:
        """What the loop carries out before the model goes on by itself: [] for a question with one part."""
        if self.parts < 2 or not self.lookups:
            return []
        return [("lookup", q) for q in self.lookups] + ([("compute", self.arithmetic)] if self.arithmetic else [])


def plan_messages(task: str, system: dict | None = None) -> list[dict]:
    """The planning conversation. `system`: the agent's own system message, sent with the same tools, so that the
    server reuses the prompt prefix it has just evaluated for the agent's turns (on 2 cores, evaluating the
    1,000-token tools block again cost ~20 s a task); the instruction then rides in the first user turn."""
    messages = [system or {"role": "system", "content": "You are a careful assistant."}]
    for n, (question, lookups, arithmetic) in enumerate(PLAN_EXAMPLES):
        reply = json.dumps({"lookups": lookups, "arithmetic": arithmetic}, ensure_ascii=False)
        ask = f"{PLAN_SYSTEM}\n\nQuestion: {question}" if n == 0 else f"Question: {question}"
        messages += [{"role": "user", "content": ask}, {"role": "assistant", "content": reply}]
    return [*messages, {"role": "user", "content": f"Question: {task}"}]


def parse_plan(text: str) -> Plan | None:
    """The model's plan, or None when the reply is not one (the loop then runs without a plan)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    lookups = [q.strip() for q in data.get("lookups") or [] if isinstance(q, str) and q.strip()][:MAX_LOOKUPS]
    arithmetic = data.get("arithmetic")
    return Plan(lookups, arithmetic.strip() if isinstance(arithmetic, str) else "")


def compute_prompt(arithmetic: str) -> str:
    return f"Now compute {arithmetic} with the numbers in the tool results above."


__all__ = ["MAX_LOOKUPS", "PLAN_SCHEMA", "Plan", "compute_prompt", "parse_plan", "plan_messages"]
