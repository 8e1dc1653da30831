"""Held-out Korean questions for the chapter 9 RAG benchmark (assets/rag/heldout_questions.yaml).

Why a new set: the search chapters tune on the dev questions, report on the test questions and append the training
questions to the articles (document expansion), so none of them measures a RAG answer fairly. These 42 questions
were written for this benchmark and share no question with those files, exactly or nearly (the test checks
character-trigram overlap < 0.4 with every one of their 797 questions).

Each row names the gold article(s) — a cited source in the top 3 counts — and a short gold phrase (or accepted
variants) a correct answer must contain: the number with its unit or the answer's key noun, never a word the
question itself contains, so a rule check (`phrase_found`) is fair.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml

from engine.core.assets import asset

HELDOUT_QUESTIONS = asset("rag", "heldout_questions.yaml")


@dataclass(frozen=True)
class HeldoutQuestion:
    question: str
    gold: tuple[str, ...]  # doc ids ("제70조"); any of them cited in the top 3 counts
    phrases: tuple[str, ...]  # accepted gold phrases; an answer containing any one states the key fact


def load_heldout(path: Path | str | None = None) -> list[HeldoutQuestion]:
    raw = yaml.safe_load(Path(path or HELDOUT_QUESTIONS).read_text(encoding="utf-8")) or {}
    rows = []
    for item in raw["questions"]:
        gold = item["gold"]
        phrase = item["phrase"]
        rows.append(
            HeldoutQuestion(
                str(item["question"]),
                tuple(str(g) for g in ([gold] if isinstance(gold, str) else gold)),
                tuple(str(p) for p in ([phrase] if isinstance(phrase, str) else phrase)),
            )
        )
    return rows


def _squash(text: str) -> str:
    return "".join(unicodedata.normalize("NFC", text).split())


def phrase_found(answer: str, row: HeldoutQuestion) -> bool:
    """The rule check: does the answer contain one of the gold phrases (spaces ignored: "3분의 2" = "3분의2")?"""
    flat = _squash(answer)
    return any(_squash(p) in flat for p in row.phrases)
