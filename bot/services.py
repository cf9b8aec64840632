"""The app's heavier services, opened once per process and shared by the actions.

The embedded vector store (Qdrant Edge) may be opened by one process at a time, so the app opens
it here once; the knowledge base and photo search use that one handle. The MiniLM encoder and
the recommender load in a worker thread at start-up (`warm_up`), so the first customer question
does not pay for it; until then, a call simply waits for the load.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from bot.knowledge_store import open_knowledge_base
from bot.photo_search import PhotoSearch
from bot.recommendations import Recommendations
from bot.shop import Shop
from bot.vectors import VectorStore, open_vector_store
from knowledge import KnowledgeBase

log = logging.getLogger(__name__)


@dataclass
class Services:
    shop: Shop
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _vectors: VectorStore | None = None
    _knowledge: KnowledgeBase | None = None
    _recommendations: Recommendations | None = None
    _photo_search: PhotoSearch | None = None

    def vectors(self) -> VectorStore:
        with self._lock:
            if self._vectors is None:
                self._vectors = open_vector_store(self.shop.settings)
            return self._vectors

    def knowledge(self) -> KnowledgeBase:
        """The knowledge base, indexed from `KNOWLEDGE_DOCS` (only changed sections re-embed)."""
        store = self.vectors()
        with self._lock:
            if self._knowledge is None:
                docs = self.shop.settings.knowledge_docs
                kb = open_knowledge_base(store, docs)
                report = kb.index(docs)
                log.info("knowledge base ready: %s", report.to_json())
                self._knowledge = kb
            return self._knowledge

    def photo_search(self) -> PhotoSearch:
        """Photo search over `vectors()` with the vision service client (one per process)."""
        with self._lock:
            if self._photo_search is None:
                self._photo_search = PhotoSearch(self.shop, self.vectors)
            return self._photo_search

    def recommendations(self) -> Recommendations:
        """The recommender; trains a first model when the data directory has none."""
        with self._lock:
            if self._recommendations is None:
                self._recommendations = Recommendations.load_or_train(
                    self.shop.engine, self.shop.settings.data_dir / "recsys"
                )
            return self._recommendations

    def recommendations_ready(self) -> bool:
        return self._recommendations is not None

    def reload_recommendations(self) -> bool:
        """Pick up a model that `bot recsys train` (or the schedule) wrote; True when it did."""
        return self.recommendations().reload(self.shop.settings.data_dir / "recsys")

    def warm_up(self) -> None:
        """Load everything a first question needs (run in a worker thread at start-up)."""
        loaders = (("knowledge", self.knowledge), ("recommendations", self.recommendations))
        for name, load in loaders:
            try:
                load()
            except Exception:  # the action that needs it reports the problem to the customer
                log.exception("could not load the %s service", name)

    def close(self) -> None:
        with self._lock:
            if self._vectors is not None:
                self._vectors.close()
                self._vectors = None
            self._knowledge = None
