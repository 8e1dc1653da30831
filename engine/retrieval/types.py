"""The one hit type of every search in the app (retrieval pipelines and the vector store), and a search's result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Hit:
    """One retrieved document. Retrieval fills rank, title and text; the vector store fills text and metadata."""

    doc_id: str
    score: float
    rank: int = 0  # 1-based position in the result list; 0 where the source does not number its hits
    title: str = ""  # short label for tables ("제70조 · 제4장 정부 › 제1절 대통령")
    text: str = ""  # the document's text
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """A JSON row: doc_id, score (6 decimals), rank and title when set, text, metadata."""
        row: dict[str, Any] = {"doc_id": self.doc_id, "score": round(self.score, 6)}
        if self.rank:
            row["rank"] = self.rank
        if self.title:
            row["title"] = self.title
        return {**row, "text": self.text, "metadata": self.metadata}


@dataclass
class SearchResult:
    query: str  # the query as searched (cleaned)
    method: str  # the pipeline that ran (an engine name: see engine/retrieval/pipeline.py)
    hits: list[Hit]
    seconds: float
    notes: list[str] = field(default_factory=list)
