"""Small shared types for retrieval."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hit:
    doc_id: str
    score: float
    rank: int  # 1-based
