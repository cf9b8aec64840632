"""The knowledge base: index the documents into a passage store, retrieve passages for a question.

The store is anything that satisfies `PassageStore` (the app adapts its Qdrant vector store to
it; `MemoryPassages` is a numpy one for tools and tests). Indexing is idempotent: every chunk
carries a hash of its text, title and embedding model; only new or changed chunks are embedded,
and chunks of removed sections or documents are deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from knowledge.documents import DOCS_DIR, Chunk, chunk_documents, load_documents
from knowledge.encoder import TextEncoder
from knowledge.spelling import Speller

DEFAULT_THRESHOLD = 0.40
"""Best passage score below which the caller should ask to rephrase or offer a human.
Calibrated with `bot knowledge eval` on tests/knowledge_eval.yml (see bench/results)."""


class StoredEntry(NamedTuple):
    id: str
    content_hash: str


class ScoredEntry(NamedTuple):
    id: str
    score: float
    payload: Mapping[str, Any]


class PassageStore(Protocol):
    """Where passages live. Ids are UUID strings; payloads are JSON-able dicts."""

    def prepare(self, dim: int) -> None:
        """Create the storage for `dim`-sized vectors if missing."""

    def stored(self) -> list[StoredEntry]:
        """Every stored passage's id and content hash (payload field `hash`)."""

    def put(self, entries: Sequence[tuple[str, Sequence[float], Mapping[str, Any]]]) -> None:
        """Insert or replace (id, vector, payload) entries."""

    def remove(self, ids: Sequence[str]) -> None: ...

    def nearest(self, vector: Sequence[float], limit: int) -> list[ScoredEntry]:
        """The closest passages, best first; score is cosine similarity."""


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved section: quote `text` under `title`."""

    doc: str
    title: str
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class Answer:
    """Passages for a question, best first. `confident` is False when the best score is below
    the threshold: ask the customer to rephrase, or offer a human."""

    question: str
    passages: list[Passage]
    threshold: float

    @property
    def confident(self) -> bool:
        return bool(self.passages) and self.passages[0].score >= self.threshold

    @property
    def best(self) -> Passage | None:
        return self.passages[0] if self.passages else None


@dataclass(frozen=True, slots=True)
class IndexReport:
    documents: int
    chunks: int
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    embedded_docs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "chunks": self.chunks,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "embedded_docs": self.embedded_docs,
        }


def _payload(chunk: Chunk, model: str) -> dict[str, Any]:
    return {
        "doc": chunk.doc,
        "doc_title": chunk.doc_title,
        "title": chunk.title,
        "headings": list(chunk.headings),
        "text": chunk.text,
        "hash": chunk.content_hash(model),
    }


class KnowledgeBase:
    """Retrieval over the shop's documents."""

    def __init__(
        self,
        store: PassageStore,
        encoder: TextEncoder,
        threshold: float = DEFAULT_THRESHOLD,
        speller: Speller | None = None,
    ) -> None:
        """`speller` fixes typos in questions (see `knowledge.spelling`); None: questions are
        embedded as typed."""
        self.store = store
        self.encoder = encoder
        self.threshold = threshold
        self.speller = speller

    def index(
        self,
        docs_dir: Path = DOCS_DIR,
        progress: Callable[[str], None] | None = None,
    ) -> IndexReport:
        """Bring the store in line with the documents in `docs_dir` (idempotent)."""
        documents = load_documents(docs_dir)
        chunks = chunk_documents(documents)
        model = self.encoder.model_id
        self.store.prepare(self.encoder.dim)
        stored = {entry.id: entry.content_hash for entry in self.store.stored()}
        wanted = {chunk.id: chunk for chunk in chunks}
        changed = [c for c in chunks if stored.get(c.id) != c.content_hash(model)]
        added = sum(1 for c in changed if c.id not in stored)
        if changed:
            if progress:
                progress(f"embedding {len(changed)} of {len(chunks)} passages")
            vectors = self.encoder.encode([c.embedding_text() for c in changed])
            self.store.put(
                [
                    (c.id, vec.tolist(), _payload(c, model))
                    for c, vec in zip(changed, vectors, strict=True)
                ]
            )
        removed = [entry_id for entry_id in stored if entry_id not in wanted]
        self.store.remove(removed)
        return IndexReport(
            documents=len(documents),
            chunks=len(chunks),
            added=added,
            updated=len(changed) - added,
            unchanged=len(chunks) - len(changed),
            removed=len(removed),
            embedded_docs=sorted({c.doc for c in changed}),
        )

    def search(self, question: str, limit: int = 3) -> list[Passage]:
        """The `limit` best passages for a question, best first."""
        question = " ".join(question.split())
        if not question:
            return []
        if self.speller is not None:
            question = self.speller.correct(question)
        [vector] = self.encoder.encode([question])
        hits = self.store.nearest(vector.tolist(), limit)
        return [
            Passage(
                doc=str(h.payload.get("doc", "")),
                title=str(h.payload.get("title", "")),
                text=str(h.payload.get("text", "")),
                score=float(h.score),
            )
            for h in hits
        ]

    def ask(self, question: str, limit: int = 3) -> Answer:
        """Passages plus the decision whether they are good enough to quote."""
        return Answer(question, self.search(question, limit), self.threshold)

    def rank_documents(self, question: str, limit: int = 3, depth: int = 12) -> list[str]:
        """Document ids in order of their best passage (for evaluation)."""
        ranked: list[str] = []
        for passage in self.search(question, depth):
            if passage.doc not in ranked:
                ranked.append(passage.doc)
        return ranked[:limit]


class MemoryPassages:
    """`PassageStore` in memory with exact numpy search."""

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._payloads: dict[str, Mapping[str, Any]] = {}

    def prepare(self, dim: int) -> None:
        if self._vectors.shape[1] != dim:
            self._ids, self._payloads = [], {}
            self._vectors = np.zeros((0, dim), dtype=np.float32)

    def stored(self) -> list[StoredEntry]:
        return [StoredEntry(i, str(self._payloads[i].get("hash", ""))) for i in self._ids]

    def put(self, entries: Sequence[tuple[str, Sequence[float], Mapping[str, Any]]]) -> None:
        self.remove([entry_id for entry_id, _, _ in entries])
        if not entries:
            return
        rows = np.asarray([vec for _, vec, _ in entries], dtype=np.float32)
        rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        self._vectors = np.vstack([self._vectors, rows])
        for entry_id, _, payload in entries:
            self._ids.append(entry_id)
            self._payloads[entry_id] = dict(payload)

    def remove(self, ids: Sequence[str]) -> None:
        drop = set(ids) & set(self._payloads)
        if not drop:
            return
        keep = [k for k, entry_id in enumerate(self._ids) if entry_id not in drop]
        self._vectors = self._vectors[keep]
        self._ids = [self._ids[k] for k in keep]
        for entry_id in drop:
            del self._payloads[entry_id]

    def nearest(self, vector: Sequence[float], limit: int) -> list[ScoredEntry]:
        if not self._ids:
            return []
        query = np.asarray(vector, dtype=np.float32)
        scores = self._vectors @ (query / max(float(np.linalg.norm(query)), 1e-12))
        order = np.argsort(-scores)[:limit]
        return [
            ScoredEntry(self._ids[k], float(scores[k]), self._payloads[self._ids[k]]) for k in order
        ]
