"""The vector store: one small typed interface, two Qdrant backends.

Embedded default: Qdrant Edge on disk under `DATA_DIR/qdrant` (one process at a time opens it:
the app opens it once and shares it). With `QDRANT_URL` set: a Qdrant server through
qdrant-client. Callers see only the values in `bot.vectors.model`.

    store = open_vector_store(settings)
    store.ensure_collection(products_spec(image_dim=1280))
    store.upsert(PRODUCTS, [VectorPoint("DR-001", {"image": v, "text": t}, {...})])
    store.search(PRODUCTS, "image", query, limit=8,
                 filter=PayloadFilter(equals={"in_stock": True, "sizes": "M"},
                                      ranges={"price": Range(lte=40)}))
"""

from __future__ import annotations

from bot.settings import Settings
from bot.vectors.model import (
    KEY_FIELD,
    CollectionMismatch,
    CollectionNotFound,
    CollectionSpec,
    FieldType,
    Hit,
    PayloadFilter,
    PointId,
    Range,
    Scalar,
    StorageLocked,
    StoredPoint,
    VectorPoint,
    VectorStore,
    VectorStoreError,
)

PRODUCTS = "products"
KNOWLEDGE = "knowledge"
TEXT_DIM = 384  # all-MiniLM-L6-v2

PRODUCT_INDEXES = {
    "category": FieldType.keyword,
    "price": FieldType.float,
    "currency": FieldType.keyword,
    "in_stock": FieldType.bool,
    "colour": FieldType.keyword,
    "brand": FieldType.keyword,
    "sizes": FieldType.keyword,  # the sizes in stock, a list
}


def products_spec(image_dim: int, text_dim: int = TEXT_DIM) -> CollectionSpec:
    """Collection `products`: vectors `image` (the vision model's size) and `text` (MiniLM)."""
    return CollectionSpec(PRODUCTS, {"image": image_dim, "text": text_dim}, PRODUCT_INDEXES)


def knowledge_spec(text_dim: int = TEXT_DIM) -> CollectionSpec:
    """Collection `knowledge`: FAQ/policy passages, vector `text`, indexed by document."""
    return CollectionSpec(KNOWLEDGE, {"text": text_dim}, {"doc": FieldType.keyword})


def open_vector_store(settings: Settings) -> VectorStore:
    """The configured backend: a Qdrant server when `QDRANT_URL` is set, else embedded."""
    if settings.qdrant_url:
        from bot.vectors.server import ServerVectorStore

        return ServerVectorStore.connect(settings.qdrant_url, search_ef=settings.vector_search_ef)
    from bot.vectors.edge import EdgeVectorStore

    return EdgeVectorStore(settings.data_dir / "qdrant", settings.vector_search_ef)


__all__ = [
    "KEY_FIELD",
    "KNOWLEDGE",
    "PRODUCTS",
    "PRODUCT_INDEXES",
    "TEXT_DIM",
    "CollectionMismatch",
    "CollectionNotFound",
    "CollectionSpec",
    "FieldType",
    "Hit",
    "PayloadFilter",
    "PointId",
    "Range",
    "Scalar",
    "StorageLocked",
    "StoredPoint",
    "VectorPoint",
    "VectorStore",
    "VectorStoreError",
    "knowledge_spec",
    "open_vector_store",
    "products_spec",
]
