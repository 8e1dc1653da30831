"""Korean text that ships with the app, split into retrievable documents.

The Constitution of the Republic of Korea (대한민국헌법, public domain) comes inside the `konlpy` wheel as
`konlpy/data/corpus/kolaw/constitution.txt`. It is located with importlib.metadata and read as a plain file:
konlpy itself is never imported (that would start JPype and a JVM). One document per article: `제1조` …
`제130조`, then the supplementary provisions `부칙 제1조` … `부칙 제6조`.

The same folder holds `kobill/` (10 bills of the National Assembly), used here as extra Korean text.
A learner's own text file goes through `load_text_file`, which refuses empty and binary files with a clear message.

What the search engine needs to know about a corpus is a `CorpusSpec`: its id, how to load its documents, their
language and, optionally, questions tied to its documents (hand-written training questions for document expansion,
dev questions to tune fusion weights). `CONSTITUTION` is one; `corpus_spec("kobill")` or a file path gives others,
and `documents_corpus(name, [(doc_id, text), ...])` wraps a document set a learner uploaded.
"""

from __future__ import annotations

import importlib.metadata as md
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from engine.core.assets import asset
from engine.core.textinput import InputError

KONLPY_DATA = "konlpy/data/corpus"
CONSTITUTION_FILE = f"{KONLPY_DATA}/kolaw/constitution.txt"
MAX_FILE_BYTES = 5_000_000  # a user corpus larger than this is refused (indexing would take minutes)
MAX_DOCS = 5_000

_CHAPTER = re.compile(r"^\s*(제\d+장)\s+(.+?)\s*$")
_SECTION = re.compile(r"^\s*(제\d+절)\s+(.+?)\s*$")
_SUBSECTION = re.compile(r"^\s*(제\d+관)\s+(.+?)\s*$")
_ARTICLE = re.compile(r"^\s*제(\d+)조(?:의(\d+))?\s*(.*)$")
_ADDENDA = re.compile(r"^(?:\S+\s+)?부칙(?:\s|<|$)")  # " 펼침  부칙 <헌법 제10호, 1987.10.29.>  부칙보기"


@dataclass(frozen=True)
class Doc:
    doc_id: str  # "제70조", "부칙 제1조", or "<file>#3" for a user file
    title: str  # short label for tables: the id plus where it sits ("제70조 · 제4장 정부 › 제1절 대통령")
    text: str  # the body, without the "제70조" prefix
    meta: dict = field(default_factory=dict, compare=False, hash=False)


def konlpy_data_path(relative: str) -> Path:
    """A data file of the konlpy wheel, found without importing konlpy."""
    try:
        dist = md.distribution("konlpy")
    except md.PackageNotFoundError as exc:
        raise FileNotFoundError(
            "The Korean corpus ships in the `konlpy` package, which is not installed. "
            "Fix: `make install` (or `pip install konlpy`)."
        ) from exc
    path = Path(str(dist.locate_file(f"{KONLPY_DATA}/{relative}" if not relative.startswith("konlpy/") else relative)))
    if not path.exists():
        raise FileNotFoundError(
            f"konlpy is installed but {relative} is missing; reinstall it: `pip install --force-reinstall konlpy`"
        )
    return path


def parse_constitution(raw: str) -> list[Doc]:
    """Split the Constitution's text into articles (pure function, tested on the real file)."""
    docs: list[Doc] = []
    chapter = section = ""
    in_addenda = False
    current: dict | None = None

    def flush() -> None:
        if current is not None:
            body = "\n".join(line for line in current["lines"] if line).strip()
            docs.append(Doc(current["id"], current["title"], body, current["meta"]))

    for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        stripped = line.strip()
        if not stripped:
            continue
        if _ADDENDA.match(stripped):
            flush()
            current, in_addenda, chapter, section = None, True, "부칙", ""
            continue
        if not in_addenda and (m := _CHAPTER.match(stripped)):
            flush()
            current, chapter, section = None, f"{m.group(1)} {m.group(2)}", ""
            continue
        if not in_addenda and (m := _SECTION.match(stripped)):
            flush()
            current, section = None, f"{m.group(1)} {m.group(2)}"
            continue
        if not in_addenda and (m := _SUBSECTION.match(stripped)):
            flush()
            current, section = None, f"{section.split(' › ')[0]} › {m.group(1)} {m.group(2)}"
            continue
        m = _ARTICLE.match(stripped)
        if m and (current is None or _looks_like_new_article(m, current, in_addenda)):
            flush()
            number = int(m.group(1))
            base = f"제{number}조" + (f"의{m.group(2)}" if m.group(2) else "")
            doc_id = f"부칙 {base}" if in_addenda else base
            where = " › ".join(x for x in (chapter, section) if x)
            current = {
                "id": doc_id,
                "title": f"{doc_id} · {where}" if where and not in_addenda else doc_id,
                "lines": [m.group(3).strip()],
                "meta": {
                    "number": number,
                    "chapter": chapter,
                    "section": section,
                    "part": "부칙" if in_addenda else "본문",
                    "source": "konlpy kolaw/constitution.txt",
                },
            }
            continue
        if current is not None:
            current["lines"].append(stripped)
        # text before the first chapter is the title and the preamble (전문): not an article, not indexed
    flush()
    return docs


def _looks_like_new_article(m: re.Match, current: dict, in_addenda: bool) -> bool:
    # Article bodies never start a line with "제N조" except for the next article (numbers only go up).
    return int(m.group(1)) > current["meta"]["number"] or (in_addenda and current["meta"]["part"] != "부칙")


@lru_cache(maxsize=1)
def _constitution() -> tuple[Doc, ...]:
    raw = konlpy_data_path(CONSTITUTION_FILE).read_text(encoding="utf-8")
    return tuple(parse_constitution(raw))


def load_constitution() -> list[Doc]:
    """대한민국헌법: 130 articles (`제1조` … `제130조`) and 6 supplementary provisions (`부칙 제1조` …)."""
    return list(_constitution())


def constitution_preamble() -> str:
    """The preamble (전문): shown in lessons; not a retrievable document (it has no article id)."""
    raw = konlpy_data_path(CONSTITUTION_FILE).read_text(encoding="utf-8").replace("\r", "")
    lines = [x.strip() for x in raw.split("\n") if x.strip()]
    return lines[1] if len(lines) > 1 else ""


def load_kobill(max_chars: int = 400) -> list[Doc]:
    """The 10 National Assembly bills in konlpy's `kobill/`, cut into passages of about `max_chars` (extra text).

    The files wrap lines mid-sentence and put a blank line after every line, so paragraphs are rebuilt from
    sentences ("…다.") rather than from blank lines.
    """
    folder = konlpy_data_path("kobill")
    docs = []
    for path in sorted(folder.glob("*.txt")):
        text = path.read_text(encoding="utf-8", errors="replace").replace("\r", "")
        lines = [x.strip() for x in text.split("\n") if x.strip()]
        title = lines[0] if lines else path.stem
        sentences = re.split(r"(?<=다\.)\s+", " ".join(lines[1:]))
        chunk = ""
        for sentence in sentences:
            if chunk and len(chunk) + len(sentence) > max_chars:
                docs.append(
                    Doc(f"kobill-{path.stem}#{len(docs)}", title, chunk, {"source": f"konlpy kobill/{path.name}"})
                )
                chunk = ""
            chunk = f"{chunk} {sentence}".strip()
        if chunk:
            docs.append(Doc(f"kobill-{path.stem}#{len(docs)}", title, chunk, {"source": f"konlpy kobill/{path.name}"}))
    return docs


def _paragraphs(text: str, min_chars: int = 20) -> list[str]:
    # kobill wraps lines mid-sentence; a blank line ends a paragraph
    paras = []
    for block in re.split(r"\n\s*\n", text):
        joined = " ".join(x.strip() for x in block.split("\n") if x.strip())
        if len(joined) >= min_chars:
            paras.append(joined)
    return paras


def decode_korean(data: bytes) -> str | None:
    """UTF-8 (with or without BOM), else CP949 — how Korean text files are saved; None if neither decodes."""
    for encoding in ("utf-8-sig", "cp949"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def looks_like_text(text: str) -> bool:
    """At least 95 % printable characters: a binary file that happens to decode is still refused."""
    return sum(ch.isprintable() or ch in "\n\r\t" for ch in text) >= 0.95 * len(text)


def decode_text_file(data: bytes, name: str = "file") -> str:
    """Bytes of an uploaded file -> text, or an InputError a learner can act on."""
    if not data or not data.strip():
        raise InputError(f"{name} is empty: upload a UTF-8 text file with at least one paragraph.")
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{name} is {len(data):,} bytes; the limit is {MAX_FILE_BYTES:,} bytes.")
    if b"\x00" in data[:8192]:
        raise InputError(
            f"{name} looks like a binary file (it contains NUL bytes), not text. "
            "Upload a .txt or .md file saved as UTF-8."
        )
    text = decode_korean(data)
    if text is None:
        raise InputError(f"{name} is not valid UTF-8 (or CP949) text; save it as UTF-8 and upload again.")
    if not looks_like_text(text):
        raise InputError(f"{name} does not look like text (too many control characters).")
    if not text.strip():
        raise InputError(f"{name} is empty: upload a UTF-8 text file with at least one paragraph.")
    return text


def load_text_file(source: str | Path | bytes, name: str | None = None) -> list[Doc]:
    """A learner's own corpus: articles if it is laid out like a law (`제N조`), otherwise one doc per paragraph."""
    if isinstance(source, bytes):
        data, label = source, name or "the uploaded file"
    else:
        path = Path(source)
        label = name or path.name
        if not path.is_file():
            raise InputError(f"{label}: no such file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{label} is {path.stat().st_size:,} bytes; the limit is {MAX_FILE_BYTES:,} bytes.")
        data = path.read_bytes()
    text = decode_text_file(data, label)
    articles = parse_constitution(text) if re.search(r"^\s*제\d+조", text, re.MULTILINE) else []
    if len(articles) >= 2:
        docs = articles
    else:
        docs = [
            Doc(f"{label}#{i + 1}", f"{label} ¶{i + 1}", p, {"source": label})
            for i, p in enumerate(_paragraphs(text, min_chars=1))
        ]
    if not docs:
        raise InputError(f"{label} has no paragraphs of text.")
    if len(docs) > MAX_DOCS:
        raise InputError(f"{label} splits into {len(docs):,} paragraphs; the limit is {MAX_DOCS:,}.")
    return docs


@dataclass(frozen=True)
class CorpusSpec:
    """A corpus the search engine can index: what it is called, how to load it, and what ships with it.

    Two specs are equal when their ids are (the loader is not compared): the index cache is keyed by the documents'
    content, not by the spec, so an id only has to be a good label.
    """

    id: str  # "constitution", "kobill", a file path, or the name of an uploaded document set
    loader: Callable[[], list[Doc]] = field(compare=False, repr=False)  # the documents, in a fixed order
    language: str = "ko"  # ISO 639-1; "ko" adds a note when a query has no Hangul
    expansion_questions: Path | None = None  # YAML {question, doc_id}: appended to their documents (doc2query)
    dev_questions: Path | None = None  # YAML {question, doc_id}: chooses the fusion and rerank weights

    def documents(self) -> list[Doc]:
        return list(self.loader())


CONSTITUTION = CorpusSpec(
    "constitution",
    load_constitution,
    language="ko",
    expansion_questions=asset("constitution_train_questions.yaml"),
    dev_questions=asset("constitution_dev_questions.yaml"),
)
KOBILL = CorpusSpec("kobill", load_kobill, language="ko")


def documents_corpus(name: str, documents: Iterable[tuple[str, str]], language: str = "ko") -> CorpusSpec:
    """A document set a learner brought (`[(doc_id, text), ...]`, e.g. uploaded files) as a corpus spec.

    Ids must be unique and texts non-empty; refused with an InputError otherwise. No expansion or dev questions:
    fusion uses the default weights."""
    name = name.strip()
    if not name:
        raise InputError("name the document set (for example the uploaded file's name)")
    docs: list[Doc] = []
    seen: set[str] = set()
    for doc_id, text in documents:
        doc_id, text = str(doc_id).strip(), str(text).strip()
        if not doc_id:
            raise InputError(f"{name}: a document has no id")
        if doc_id in seen:
            raise InputError(f"{name}: the id {doc_id!r} is used twice; give every document its own id")
        if not text:
            raise InputError(f"{name}: the document {doc_id!r} is empty")
        seen.add(doc_id)
        docs.append(Doc(doc_id, doc_id, text, {"source": name}))
    if not docs:
        raise InputError(f"{name} holds no documents: give at least one (doc_id, text)")
    if len(docs) > MAX_DOCS:
        raise InputError(f"{name} holds {len(docs):,} documents; the limit is {MAX_DOCS:,}.")
    frozen = tuple(docs)
    return CorpusSpec(name, lambda: list(frozen), language=language)


def corpus_spec(corpus: str | CorpusSpec) -> CorpusSpec:
    """The spec for a corpus as the CLI spells it ('constitution', 'kobill', a .txt path), or the spec itself."""
    if isinstance(corpus, CorpusSpec):
        return corpus
    if corpus == "constitution":
        return CONSTITUTION
    if corpus == "kobill":
        return KOBILL
    path = Path(corpus)
    if path.suffix in {".txt", ".md"} or path.exists():
        return CorpusSpec(corpus, lambda: load_text_file(path))
    raise InputError(f"unknown corpus {corpus!r}: use 'constitution', 'kobill' or the path of a UTF-8 .txt file")


def load_corpus(corpus: str | CorpusSpec) -> list[Doc]:
    """Corpus by name, as the CLI spells it (or by spec)."""
    return corpus_spec(corpus).documents()
