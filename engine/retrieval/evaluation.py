"""Retrieval evaluation: hit@k and MRR of ranked doc ids against one gold doc per question."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from engine.core.assets import asset
from engine.core.textinput import InputError

DEV_QUESTIONS = asset("constitution_dev_questions.yaml")
TEST_QUESTIONS = asset("constitution_test_questions.yaml")
TRAIN_QUESTIONS = asset("constitution_train_questions.yaml")  # training data (document expansion)


@dataclass(frozen=True)
class Question:
    question: str
    doc_id: str


def load_questions(path: str | Path) -> list[Question]:
    """A YAML file with `questions: [{question, doc_id}]` (or a bare list); plain text = one query per line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"questions file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix in {".yaml", ".yml", ".json"}:
        raw = yaml.safe_load(text) or []
        items = raw.get("questions", []) if isinstance(raw, dict) else raw
        out = [Question(str(x["question"]), str(x.get("doc_id", ""))) for x in items]
    else:
        out = [Question(line.strip(), "") for line in text.splitlines() if line.strip()]
    if not out:
        raise InputError(f"{path} holds no questions")
    return out


def rank_of(ranked_ids: list[str], gold: str) -> int | None:
    """1-based rank of the gold id, None if it is not in the list."""
    try:
        return ranked_ids.index(gold) + 1
    except ValueError:
        return None


def metrics(ranks: list[int | None], ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    n = len(ranks)
    out = {f"hit@{k}": sum(r is not None and r <= k for r in ranks) / n for k in ks}
    out["mrr"] = sum(1.0 / r for r in ranks if r is not None) / n
    return out


def evaluate_scores(score_matrix: np.ndarray, doc_ids: list[str], questions: list[Question]) -> dict[str, float]:
    """Metrics from a (questions × docs) score matrix; ties broken by corpus order (as argsort with stable sort)."""
    ranks = []
    for row, q in zip(score_matrix, questions, strict=True):
        order = np.argsort(-row, kind="stable")
        ranks.append(rank_of([doc_ids[i] for i in order], q.doc_id))
    return metrics(ranks)
