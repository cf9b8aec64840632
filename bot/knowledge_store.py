"""The knowledge base on the app's vector store (Qdrant collection `knowledge`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.vectors import KNOWLEDGE, CollectionSpec, FieldType, VectorPoint, VectorStore
from knowledge import (
    DOCS_DIR,
    KnowledgeBase,
    MiniLMEncoder,
    ScoredEntry,
    Speller,
    StoredEntry,
    TextEncoder,
    minilm_vocabulary,
)


class VectorPassages:
    """`knowledge.PassageStore` on a collection of the vector store (vector `text`)."""

    def __init__(self, store: VectorStore, collection: str = KNOWLEDGE) -> None:
        self.store = store
        self.collection = collection

    def prepare(self, dim: int) -> None:
        spec = CollectionSpec(self.collection, {"text": dim}, {"doc": FieldType.keyword})
        self.store.ensure_collection(spec)

    def stored(self) -> list[StoredEntry]:
        return [
            StoredEntry(str(p.id), str(p.payload.get("hash", "")))
            for p in self.store.scroll(self.collection)
        ]

    def put(self, entries: Sequence[tuple[str, Sequence[float], Mapping[str, Any]]]) -> None:
        points = [VectorPoint(i, {"text": vec}, payload) for i, vec, payload in entries]
        for start in range(0, len(points), 256):
            self.store.upsert(self.collection, points[start : start + 256])

    def remove(self, ids: Sequence[str]) -> None:
        self.store.delete(self.collection, list(ids))

    def nearest(self, vector: Sequence[float], limit: int) -> list[ScoredEntry]:
        hits = self.store.search(self.collection, "text", vector, limit=limit)
        return [ScoredEntry(str(h.id), h.score, h.payload) for h in hits]


def open_knowledge_base(
    store: VectorStore,
    docs_dir: Path = DOCS_DIR,
    encoder: TextEncoder | None = None,
    collection: str = KNOWLEDGE,
) -> KnowledgeBase:
    """The knowledge base the chat uses; MiniLM loads on the first question or index run."""
    speller = Speller.for_documents(docs_dir, minilm_vocabulary()) if docs_dir.is_dir() else None
    return KnowledgeBase(
        VectorPassages(store, collection), encoder or MiniLMEncoder(), speller=speller
    )
