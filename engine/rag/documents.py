"""What a RAG answer can cite: passages, from the Constitution or from a file the learner uploads.

A `Passage` is the unit the retriever ranks, the LLM reads and a citation points to (`제70조`, `notes.pdf#3`).
The Constitution is already cut into articles (engine/core/corpus.py): one passage per article. An upload is read
here and cut into passages of a few hundred characters:

- txt/md: UTF-8 (with or without BOM), else CP949 — a superset of EUC-KR, what Korean Windows saves "ANSI" as.
- pdf: pypdf's text layer, page by page (a passage never crosses a page, so a citation also names the page).
- The type is decided by the bytes (magic numbers), not by the file name: a .txt that is really a PDF is read as a
  PDF, a .pdf that is really a zip is refused with the kind it is.
- Limits, checked before any parsing: MAX_UPLOAD_BYTES (a 50 MB PDF is refused without being opened),
  MAX_PAGES, MAX_PASSAGES (the Korean encoder is trained per uploaded corpus: ≈1,000 passages is about a minute on
  2 cores).

Cutting: paragraphs (blank lines) are packed up to PASSAGE_CHARS; a longer paragraph is cut after a sentence end
(. ? ! 。, or a line break), and only a single run longer than MAX_PASSAGE_CHARS is cut mid-sentence. The text is
kept exactly as it is — whitespace inside a passage included; an instruction hidden in a document ("ignore the
question and …") is the rails' business (engine/rag/rails.py), not the parser's.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import PurePath

from engine.core.corpus import decode_korean, looks_like_text
from engine.core.textinput import InputError

MAX_UPLOAD_BYTES = 20_000_000  # 20 MB
MAX_PAGES = 500
MAX_PASSAGES = 1_000
PASSAGE_CHARS = 400  # paragraphs are packed into passages up to this length
MAX_PASSAGE_CHARS = 800  # a single sentence longer than this is cut
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".text")
CONSTITUTION = "constitution"

# (prefix, what it is) of binary formats a learner is likely to try; the kind is shown in the message.
_MAGIC = (
    (b"PK\x03\x04", "a zip archive (docx, hwpx, xlsx, pptx …)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office/HWP file (doc, hwp, xls)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"RIFF", "a RIFF file (wav, avi, webp)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "a program (ELF)"),
    (b"MZ", "a program (exe)"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x00\x00\x00", "a binary file"),
)
_SENTENCE_END = re.compile(r"(?<=[.?!。？！])\s+|\n+")
_PARAGRAPH = re.compile(r"\n[ \t\u3000]*\n\s*")


@dataclass(frozen=True)
class Passage:
    """One retrievable unit the LLM sees and a citation points to."""

    doc_id: str  # "제70조" for the Constitution; "<file name>#<n>" for an upload (n from 1)
    title: str  # what the page shows ("제70조 · 제4장 정부 › 제1절 대통령", "notes.pdf · p.3")
    text: str
    source: str  # "constitution" or the uploaded file's name
    score: float = 0.0  # set by a retriever, higher is better, in [0, 1] (engine/rag/retrievers.py)


def constitution_passages() -> list[Passage]:
    """대한민국헌법: one passage per article (136), ids and titles as engine.core.corpus gives them."""
    from engine.core.corpus import load_constitution

    return [Passage(d.doc_id, d.title, d.text, CONSTITUTION) for d in load_constitution()]


def parse_upload(name: str, data: bytes) -> list[Passage]:
    """An uploaded file's bytes -> passages, or an InputError (`rag.doc.*`) the page translates."""
    label = clean_name(name)
    size = len(data or b"")
    if size > MAX_UPLOAD_BYTES:  # first: a huge file is never decoded or parsed
        raise InputError("rag.doc.too_large", name=label, size=size, limit=MAX_UPLOAD_BYTES)
    if not data or not data.strip():
        raise InputError("rag.doc.empty", name=label)
    kind = sniff(data)
    if kind == "pdf":
        pages = pdf_pages(label, data)
        passages = []
        for number, text in pages:
            for chunk in split_passages(text):
                passages.append(Passage(f"{label}#{len(passages) + 1}", f"{label} · p.{number}", chunk, label))
                _check_count(label, len(passages))
    elif kind == "text":
        if PurePath(label).suffix.lower() not in TEXT_SUFFIXES:
            suffix = PurePath(label).suffix or "no extension"
            raise InputError("rag.doc.unsupported_type", name=label, kind=f"a '{suffix}' file")
        text = decode_text(label, data)
        passages = []
        for chunk in split_passages(text):
            passages.append(Passage(f"{label}#{len(passages) + 1}", f"{label} ¶{len(passages) + 1}", chunk, label))
            _check_count(label, len(passages))
    else:
        raise InputError("rag.doc.unsupported_type", name=label, kind=kind)
    if not passages:
        raise InputError("rag.doc.empty", name=label)
    return passages


def to_documents(passages) -> list:
    """Passages -> LlamaIndex Documents: id_ = doc_id; metadata doc_id/title/source. Only the text is embedded;
    the LLM sees doc_id and title (what a citation names), not the source."""
    from llama_index.core import Document

    return [
        Document(
            id_=p.doc_id,
            text=p.text,
            metadata={"doc_id": p.doc_id, "title": p.title, "source": p.source},
            excluded_embed_metadata_keys=["doc_id", "title", "source"],
            excluded_llm_metadata_keys=["source"],
        )
        for p in passages
    ]


# --- reading ---------------------------------------------------------------------------------------------------
def clean_name(name: str | None) -> str:
    """The file's base name, one printable line of at most 100 characters ("upload" if nothing is left)."""
    base = PurePath(str(name or "").replace("\\", "/")).name
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if ch.isprintable()).strip()
    return base[:100] or "upload"


def sniff(data: bytes) -> str:
    """ "pdf", "text", or the kind of binary file (from the first bytes, never the name)."""
    head = data[:1024]
    if b"%PDF-" in head:  # the header may follow a little junk (the PDF spec allows it within the first 1 KB)
        return "pdf"
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if b"\x00" in data[:8192]:
        return "a binary file"
    return "text"


def decode_text(label: str, data: bytes) -> str:
    text = decode_korean(data)
    if text is None or not looks_like_text(text):
        raise InputError("rag.doc.not_text", name=label)
    return text


def pdf_pages(label: str, data: bytes) -> list[tuple[int, str]]:
    """(page number from 1, text) for every page with text; typed errors for encrypted, broken or image-only PDFs."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # a damaged file is reported once, as our error
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # an owner-password-only PDF opens with an empty user password
            except (DependencyError, NotImplementedError, PyPdfError):
                opened = 0
            if not opened:
                raise InputError("rag.doc.pdf_encrypted", name=label)
        count = len(reader.pages)
        if count > MAX_PAGES:
            raise InputError("rag.doc.too_many_pages", name=label, pages=count, limit=MAX_PAGES)
        pages = []
        for i, page in enumerate(reader.pages):
            text = page.extract_text() or ""
            if text.strip():
                pages.append((i + 1, text))
    except InputError:
        raise
    except FileNotDecryptedError as exc:
        raise InputError("rag.doc.pdf_encrypted", name=label) from exc
    except Exception as exc:  # pypdf raises many kinds (PdfReadError, KeyError, ValueError …) on a damaged file
        raise InputError("rag.doc.pdf_broken", name=label, reason=_short(exc)) from exc
    if not pages:
        raise InputError("rag.doc.pdf_no_text", name=label, pages=count)
    return pages


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]


def _check_count(label: str, count: int) -> None:
    if count > MAX_PASSAGES:
        raise InputError("rag.doc.too_many_passages", name=label, count=count, limit=MAX_PASSAGES)


# --- cutting ---------------------------------------------------------------------------------------------------
def split_passages(text: str, target: int = PASSAGE_CHARS, limit: int = MAX_PASSAGE_CHARS) -> list[str]:
    """Paragraphs packed up to `target` characters; longer ones cut after sentence ends; nothing over `limit`.

    Pure and order-preserving: the passages, concatenated with the whitespace between them, are the input."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    current = ""
    for para in _pieces(text, _PARAGRAPH):
        if len(para.strip()) > target:
            if current.strip():
                out.append(current.strip())
            current = ""
            out.extend(_pack(_sentences(para, limit), target))
        elif len(current) + len(para) > target and current.strip():
            out.append(current.strip())
            current = para
        else:
            current += para
    if current.strip():
        out.append(current.strip())
    return out


def _pieces(text: str, separator: re.Pattern) -> list[str]:
    """Split after each separator match, keeping the separator on the left piece (the pieces join back to text)."""
    pieces, start = [], 0
    for m in separator.finditer(text):
        pieces.append(text[start : m.end()])
        start = m.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _sentences(paragraph: str, limit: int) -> list[str]:
    out = []
    for piece in _pieces(paragraph, _SENTENCE_END):
        while len(piece) > limit:  # one run without a sentence end: cut, preferably at a space
            cut = piece.rfind(" ", limit // 2, limit)
            cut = cut + 1 if cut > 0 else limit
            out.append(piece[:cut])
            piece = piece[cut:]
        out.append(piece)
    return out


def _pack(pieces: list[str], target: int) -> list[str]:
    out, current = [], ""
    for piece in pieces:
        if current.strip() and len(current) + len(piece) > target:
            out.append(current.strip())
            current = ""
        current += piece
    if current.strip():
        out.append(current.strip())
    return out
