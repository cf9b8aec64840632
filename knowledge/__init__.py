"""The shop's FAQ and policy documents (markdown in `docs/`) and retrieval over them.

    kb = KnowledgeBase(store, MiniLMEncoder(), speller=Speller.for_documents(DOCS_DIR, ...))
    kb.index(DOCS_DIR)               # idempotent: embeds only new or changed sections
    answer = kb.ask("can i send it back if it doesnt fit")
    if answer.confident: quote answer.best.title and answer.best.text
    else: ask to rephrase, or offer a human

`store` is any `PassageStore` (the app passes its Qdrant collection `knowledge`).
"""

from knowledge.base import (
    DEFAULT_THRESHOLD,
    Answer,
    IndexReport,
    KnowledgeBase,
    MemoryPassages,
    Passage,
    PassageStore,
    ScoredEntry,
    StoredEntry,
)
from knowledge.documents import DOCS_DIR, Chunk, Document, chunk_document, load_documents
from knowledge.encoder import MINILM, MINILM_DIM, MiniLMEncoder, TextEncoder, minilm_vocabulary
from knowledge.spelling import Speller

__all__ = [
    "DEFAULT_THRESHOLD",
    "DOCS_DIR",
    "MINILM",
    "MINILM_DIM",
    "Answer",
    "Chunk",
    "Document",
    "IndexReport",
    "KnowledgeBase",
    "MemoryPassages",
    "MiniLMEncoder",
    "Passage",
    "PassageStore",
    "ScoredEntry",
    "Speller",
    "StoredEntry",
    "TextEncoder",
    "chunk_document",
    "load_documents",
    "minilm_vocabulary",
]
