"""The shop's markdown documents and their chunks (one chunk per heading section)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parent / "docs"
"""The demo shop's documents; a shop points `bot knowledge index --docs` at its own folder."""

MAX_WORDS = 180  # MiniLM reads 256 word pieces; longer sections are split at paragraphs
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_NAMESPACE = uuid.UUID("2f8d7c1e-5b4a-4e39-8a61-0c9e3d7f4b22")
TITLE_SEPARATOR = " › "


@dataclass(frozen=True, slots=True)
class Document:
    id: str  # path below the docs folder without `.md`, e.g. "returns-and-refunds"
    title: str  # the first `# ` heading, else the file name
    text: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """One heading section of a document: what is embedded and what the customer is shown."""

    doc: str
    doc_title: str
    headings: tuple[str, ...]  # the heading path below the document title
    text: str
    part: int = 0  # a long section is split into parts 0, 1, ...

    @property
    def title(self) -> str:
        return TITLE_SEPARATOR.join((self.doc_title, *self.headings))

    @property
    def id(self) -> str:
        """Stable across runs: the document and the heading path (and the part number)."""
        key = "\x1f".join((self.doc, *self.headings, str(self.part)))
        return str(uuid.uuid5(_NAMESPACE, key))

    def embedding_text(self) -> str:
        return f"{self.title}\n{self.text}"

    def content_hash(self, model: str) -> str:
        """Changes when the text, the title or the embedding model changes."""
        digest = hashlib.sha256(f"{model}\n{self.embedding_text()}".encode())
        return digest.hexdigest()[:32]


def load_documents(folder: Path = DOCS_DIR) -> list[Document]:
    """Every `*.md` below `folder`, sorted by path. Raises FileNotFoundError for no folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no documents folder at {folder}")
    documents = []
    for path in sorted(folder.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        doc_id = path.relative_to(folder).with_suffix("").as_posix()
        documents.append(Document(doc_id, _title(text) or path.stem, text))
    return documents


def _title(text: str) -> str | None:
    for line in text.splitlines():
        match = _HEADING.match(line)
        if match and len(match.group(1)) == 1:
            return match.group(2).strip()
    return None


def chunk_document(document: Document, max_words: int = MAX_WORDS) -> list[Chunk]:
    """Split at every heading; the H1 is the document title. Empty sections are skipped."""
    chunks: list[Chunk] = []
    stack: list[tuple[int, str]] = []
    body: list[str] = []
    in_fence = False
    seen_title = False

    def flush() -> None:
        text = "\n".join(body).strip()
        body.clear()
        if not text:
            return
        path = tuple(h for _, h in stack)
        for number, part in enumerate(_split(text, max_words)):
            chunks.append(Chunk(document.id, document.title, path, part, number))

    for line in document.text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match is None:
            body.append(line)
            continue
        flush()
        level, heading = len(match.group(1)), match.group(2).strip()
        if level == 1 and not seen_title:
            seen_title = True
            stack.clear()
            continue
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, heading))
    flush()
    return _deduplicate(chunks)


def _deduplicate(chunks: list[Chunk]) -> list[Chunk]:
    """Two sections with the same heading path would share an id: number the later ones on."""
    seen: set[tuple[tuple[str, ...], int]] = set()
    unique = []
    for chunk in chunks:
        part = chunk.part
        while (chunk.headings, part) in seen:
            part += 1000
        seen.add((chunk.headings, part))
        unique.append(Chunk(chunk.doc, chunk.doc_title, chunk.headings, chunk.text, part))
    return unique


def _split(text: str, max_words: int) -> list[str]:
    """Paragraph groups of at most `max_words` words; a longer paragraph (a table) stays whole."""
    paragraphs = [_unwrap(p) for p in re.split(r"\n\s*\n", text) if p.strip()]
    parts: list[str] = []
    current: list[str] = []
    words = 0
    for paragraph in paragraphs:
        n = len(paragraph.split())
        if current and words + n > max_words:
            parts.append("\n\n".join(current))
            current, words = [], 0
        current.append(paragraph)
        words += n
    if current:
        parts.append("\n\n".join(current))
    return parts


_LINE_START = re.compile(r"^\s*([-*+]\s|\d+[.)]\s|\|)")


def _unwrap(paragraph: str) -> str:
    """Join hard-wrapped lines (chat bubbles wrap by themselves); keep list items and tables."""
    lines: list[str] = []
    for raw in paragraph.strip().splitlines():
        line = raw.strip()
        if lines and not _LINE_START.match(raw) and not lines[-1].startswith("|"):
            lines[-1] = f"{lines[-1]} {line}"
        else:
            lines.append(line)
    return "\n".join(lines)


def chunk_documents(documents: Iterable[Document], max_words: int = MAX_WORDS) -> list[Chunk]:
    chunks: list[Chunk] = []
    for document in documents:
        chunks.extend(chunk_document(document, max_words))
    return chunks


def document_ids(chunks: Sequence[Chunk]) -> list[str]:
    return sorted({c.doc for c in chunks})
