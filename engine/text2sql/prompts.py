"""The Text2SQL prompt in the book's format (6.2), and reading the SQL back out of a model's answer.

The book fine-tunes on, and evaluates with, one plain prompt: an instruction, `### DDL:`, `### Question:`,
`### SQL:`. A fine-tuned base model continues after `### SQL:`; an instruct model gets the same text as the user
turn of a chat. Few-shot examples are earlier chat turns in the same format (small models copy a shown answer far
better than they follow a described one — the ch.9 prompt measured the same).

`extract_sql` is deliberately forgiving: models wrap SQL in ```sql fences, prefix it with "SQL:", or add a sentence
of explanation after it. Only the first statement is kept; whatever follows a `;` is not executed (the executor
refuses multi-statement text anyway, see executor.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

INSTRUCTION = (
    "당신은 SQL을 생성하는 SQL 봇입니다. DDL의 테이블을 활용한 Question을 해결할 수 있는 SQL 쿼리를 생성하세요."
)
# The book's evaluation prompt (6.2), asked of a judge model; it answers {"resolve_yn": "yes" | "no"}.
JUDGE_PROMPT = (
    "Based on below DDL and Question, evaluate gen_sql can resolve Question. If gen_sql and gt_sql do equal job, "
    'return "yes" else return "no". Output JSON Format: {{"resolve_yn": ""}}\n\n'
    "DDL: {ddl}\nQuestion: {question}\ngt_sql: {gold_sql}\ngen_sql: {pred_sql}"
)


@dataclass(frozen=True)
class Example:
    """A solved example shown before the question (few-shot)."""

    question: str
    sql: str


def make_prompt(ddl: str, question: str, sql: str = "") -> str:
    """The book's training/evaluation text; with `sql` it is one training example, without it a prompt."""
    return f"{INSTRUCTION}\n\n### DDL:\n{ddl}\n\n### Question:\n{question}\n\n### SQL:\n{sql}"


def make_messages(ddl: str, question: str, examples: Sequence[Example] = ()) -> list[dict]:
    """The same prompt as chat turns for an instruct model. The DDL is said once, in the first turn; each example
    is then an earlier question/answer turn and the real question the last turn. Repeating the DDL in every example
    turn (the naive way) made a 4-shot prompt ~2,600 tokens instead of ~900: minutes of prompt evaluation on 2 cores.
    """
    first, *rest = [*examples, Example(question, "")]
    messages: list[dict] = [{"role": "user", "content": make_prompt(ddl, first.question)}]
    for ex, nxt in zip([first, *rest], rest, strict=False):
        messages.append({"role": "assistant", "content": ex.sql})
        messages.append({"role": "user", "content": f"### Question:\n{nxt.question}\n\n### SQL:\n"})
    return messages


_FENCE = re.compile(r"```(?:sql|sqlite)?\s*(.*?)(?:```|$)", re.S | re.I)
_START = re.compile(r"\b(WITH|SELECT)\b", re.I)


def extract_sql(text: str) -> str:
    """The first SQL statement in a model's answer ("" when there is none), without the trailing `;`."""
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start = _START.search(body)
    if not start:
        return ""
    body = body[start.start() :]
    body = re.split(r"\n\s*\n|\n###|;", body, maxsplit=1)[0]  # a blank line, the next section, or a `;` ends it
    return " ".join(body.split())
