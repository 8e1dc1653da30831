"""Document expansion: what BM25 and the dense encoder index for a document is its text plus the questions it answers.

For the Constitution these are the hand-written training questions (assets/constitution_train_questions.yaml,
the spec's `expansion_questions`): doc2query in style, with questions written by hand instead of generated. The
evaluation questions are never used for it (tests/engine/test_search.py checks the files stay apart). A corpus
without expansion questions (kobill, a learner's file, an uploaded document set) is indexed as it is.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from engine.core.corpus import CorpusSpec, Doc
from engine.retrieval.evaluation import Question, load_questions


@lru_cache(maxsize=2)
def _questions(path: Path, mtime_ns: int) -> tuple[Question, ...]:
    """The questions of a file, parsed once per version of it (pages ask for them on every rerun)."""
    return tuple(load_questions(path))


def expansions(spec: CorpusSpec, docs: list[Doc]) -> list[list[str]]:
    """Expansion questions per document (in corpus order); empty lists when the corpus has none."""
    out: list[list[str]] = [[] for _ in docs]
    path = spec.expansion_questions
    if path is None or not path.exists():
        return out
    where = {d.doc_id: i for i, d in enumerate(docs)}
    for q in _questions(path, path.stat().st_mtime_ns):
        if q.doc_id in where:
            out[where[q.doc_id]].append(q.question)
    return out


def search_text(doc: Doc, extra: list[str]) -> str:
    """What BM25 and the dense encoder index for a document: its text, then the questions it answers."""
    return " ".join([doc.text, *extra])
