"""The vector-store interface: one suite, run on Qdrant Edge (embedded) and qdrant-client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from bot.settings import Settings
from bot.vectors import (
    CollectionMismatch,
    CollectionNotFound,
    CollectionSpec,
    FieldType,
    PayloadFilter,
    Range,
    StorageLocked,
    VectorPoint,
    VectorStore,
    VectorStoreError,
    knowledge_spec,
    open_vector_store,
    products_spec,
)
from bot.vectors.edge import EdgeVectorStore
from bot.vectors.server import ServerVectorStore

IMAGE_DIM = 16
TEXT_DIM = 8


def _unit(seed: int, dim: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=dim)
    return (v / np.linalg.norm(v)).tolist()


# sku, category, price, in_stock, colour, sizes in stock
CATALOG = [
    ("DR-001", "dresses", 89.9, True, "sage green", ["XS", "S", "M"]),
    ("DR-002", "dresses", 149.0, False, "champagne", []),
    ("DR-003", "dresses", 39.9, True, "heather grey", ["M", "L"]),
    ("SH-001", "shirts", 49.9, True, "light blue", ["S", "M", "L", "XL"]),
    ("SH-003", "shirts", 19.9, True, "white", ["XS", "S"]),
    ("SN-001", "shoes", 119.0, True, "white", ["38", "39", "42"]),
    ("SN-007", "shoes", 169.0, False, "dark brown", []),
    ("AC-003", "accessories", 29.9, True, "mustard", ["S/M"]),
]


def _point(i: int, row: tuple[str, str, float, bool, str, list[str]]) -> VectorPoint:
    sku, category, price, in_stock, colour, sizes = row
    payload = {
        "category": category,
        "price": price,
        "currency": "EUR",
        "in_stock": in_stock,
        "colour": colour,
        "brand": "Northwind",
        "sizes": sizes,
        "title": f"product {sku}",
    }
    vectors = {"image": _unit(i, IMAGE_DIM), "text": _unit(100 + i, TEXT_DIM)}
    return VectorPoint(sku, vectors, payload)


@pytest.fixture(scope="module", params=["edge", "qdrant-client"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VectorStore]:
    # One store per backend for the module (creating an on-disk shard costs a second of fsync);
    # `store` resets its contents for every test.
    opened: VectorStore
    if request.param == "edge":
        opened = EdgeVectorStore(tmp_path_factory.mktemp("edge") / "qdrant")
    else:
        opened = ServerVectorStore(QdrantClient(":memory:"))
    yield opened
    opened.close()


@pytest.fixture
def store(backend: VectorStore) -> VectorStore:
    spec = products_spec(IMAGE_DIM, TEXT_DIM)
    if backend.collection_exists("products"):
        try:
            backend.ensure_collection(spec)
        except CollectionMismatch:
            backend.drop_collection("products")
    backend.ensure_collection(spec)
    backend.delete("products", [p.id for p in backend.scroll("products")])
    backend.drop_collection("knowledge")
    backend.upsert("products", [_point(i, row) for i, row in enumerate(CATALOG)])
    return backend


def _ids(hits: list) -> set:  # type: ignore[type-arg]
    return {h.id for h in hits}


def test_nearest_first_with_payload_and_caller_ids(store: VectorStore) -> None:
    hits = store.search("products", "image", _unit(3, IMAGE_DIM), limit=3)
    assert hits[0].id == "SH-001"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].payload["category"] == "shirts"
    assert hits[0].payload["in_stock"] is True
    assert "_key" not in hits[0].payload
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    text_hits = store.search("products", "text", _unit(105, TEXT_DIM), limit=1)
    assert text_hits[0].id == "SN-001"


def test_filters(store: VectorStore) -> None:
    query = _unit(0, IMAGE_DIM)

    def found(flt: PayloadFilter) -> set[str]:
        hits = store.search("products", "image", query, limit=20, filter=flt)
        return {str(h.id) for h in hits}

    in_stock = {row[0] for row in CATALOG if row[3]}
    assert found(PayloadFilter(equals={"in_stock": True})) == in_stock
    assert found(PayloadFilter(equals={"in_stock": False})) == {"DR-002", "SN-007"}
    assert found(PayloadFilter(ranges={"price": Range(gte=30, lte=90)})) == {
        "DR-001",
        "DR-003",
        "SH-001",
    }
    assert found(PayloadFilter(ranges={"price": Range(lt=30)})) == {"SH-003", "AC-003"}
    assert found(PayloadFilter(equals={"category": "dresses"})) == {"DR-001", "DR-002", "DR-003"}
    assert found(PayloadFilter(equals={"colour": "white"})) == {"SH-003", "SN-001"}
    assert found(PayloadFilter(equals={"sizes": "M"})) == {"DR-001", "DR-003", "SH-001"}
    assert found(PayloadFilter(any_of={"sizes": ["XS", "38"]})) == {"DR-001", "SH-003", "SN-001"}
    assert found(PayloadFilter(none_of={"category": ["dresses", "shoes"]})) == {
        "SH-001",
        "SH-003",
        "AC-003",
    }
    combined = PayloadFilter(
        equals={"in_stock": True, "category": "dresses", "sizes": "M"},
        ranges={"price": Range(lte=40)},
    )
    assert found(combined) == {"DR-003"}
    assert found(PayloadFilter(equals={"price": 49.9})) == {"SH-001"}
    assert found(PayloadFilter()) == {row[0] for row in CATALOG}
    assert store.count("products", PayloadFilter(equals={"in_stock": True})) == len(in_stock)


def test_upsert_is_idempotent_and_replaces(store: VectorStore) -> None:
    again = [_point(i, row) for i, row in enumerate(CATALOG)]
    store.upsert("products", again)
    store.upsert("products", again)
    assert store.count("products") == len(CATALOG)
    changed = VectorPoint(
        "DR-002",
        {"image": _unit(1, IMAGE_DIM)},
        {
            **again[1].payload,
            "in_stock": True,
            "sizes": ["S"],
        },
    )
    store.upsert("products", [changed])
    assert store.count("products") == len(CATALOG)
    [point] = store.retrieve("products", ["DR-002"], with_vectors=True)
    assert point.payload["in_stock"] is True
    assert point.payload["sizes"] == ["S"]
    assert set(point.vectors) == {"image"}  # upsert replaces the whole point
    assert np.allclose(point.vectors["image"], _unit(1, IMAGE_DIM), atol=1e-5)


def test_retrieve_keeps_order_and_skips_unknown(store: VectorStore) -> None:
    points = store.retrieve("products", ["SN-001", "nope", "DR-001"])
    assert [p.id for p in points] == ["SN-001", "DR-001"]
    assert points[0].vectors == {}
    assert points[1].payload["price"] == pytest.approx(89.9)


def test_delete(store: VectorStore) -> None:
    store.delete("products", ["DR-001", "SN-007", "never-there"])
    assert store.count("products") == len(CATALOG) - 2
    assert store.retrieve("products", ["DR-001", "SN-007"]) == []
    assert "DR-001" not in _ids(store.search("products", "image", _unit(0, IMAGE_DIM), limit=20))
    store.delete("products", [])


def test_scroll_pages_through_everything(store: VectorStore) -> None:
    seen = [p.id for p in store.scroll("products", batch=3)]
    assert sorted(map(str, seen)) == sorted(row[0] for row in CATALOG)
    only_dresses = PayloadFilter(equals={"category": "dresses"})
    dresses = {p.id for p in store.scroll("products", only_dresses)}
    assert dresses == {"DR-001", "DR-002", "DR-003"}


def test_int_and_uuid_ids(store: VectorStore) -> None:
    store.ensure_collection(knowledge_spec(TEXT_DIM))
    uid = "0b6ad4f0-1c2e-4d8e-9f10-2a3b4c5d6e7f"
    store.upsert(
        "knowledge",
        [
            VectorPoint(7, {"text": _unit(1, TEXT_DIM)}, {"doc": "a"}),
            VectorPoint(uid, {"text": _unit(2, TEXT_DIM)}, {"doc": "b"}),
        ],
    )
    hits = store.search("knowledge", "text", _unit(1, TEXT_DIM), limit=2)
    assert [h.id for h in hits] == [7, uid]
    assert store.count("knowledge", PayloadFilter(equals={"doc": "b"})) == 1
    store.optimize("knowledge")


def test_collection_lifecycle_and_errors(store: VectorStore) -> None:
    store.ensure_collection(products_spec(IMAGE_DIM, TEXT_DIM))  # idempotent
    assert store.count("products") == len(CATALOG)
    with pytest.raises(CollectionMismatch):
        store.ensure_collection(products_spec(IMAGE_DIM * 2, TEXT_DIM))
    with pytest.raises(CollectionNotFound):
        store.search("nothing", "text", _unit(0, TEXT_DIM))
    with pytest.raises(VectorStoreError):
        store.upsert("products", [VectorPoint("X", {"sound": [1.0, 0.0]}, {})])
    with pytest.raises(ValueError, match="reserved"):
        store.upsert("products", [VectorPoint("X", {"text": _unit(0, TEXT_DIM)}, {"_key": 1})])
    store.drop_collection("products")
    assert not store.collection_exists("products")
    store.drop_collection("products")
    store.ensure_collection(products_spec(IMAGE_DIM * 2, TEXT_DIM))
    assert store.count("products") == 0


def test_edge_persists_and_is_held_by_one_process_at_a_time(tmp_path: Path) -> None:
    root = tmp_path / "qdrant"
    first = EdgeVectorStore(root)
    spec = CollectionSpec("things", {"v": 4}, {"in_stock": FieldType.bool})
    first.ensure_collection(spec)
    first.upsert("things", [VectorPoint("a", {"v": [1, 0, 0, 0]}, {"in_stock": True})])
    with pytest.raises(StorageLocked):
        EdgeVectorStore(root).count("things")
    first.close()
    again = EdgeVectorStore(root)
    assert again.count("things", PayloadFilter(equals={"in_stock": True})) == 1
    [hit] = again.search("things", "v", [0.9, 0.1, 0, 0])
    assert hit.id == "a"
    assert hit.payload == {"in_stock": True}
    again.close()


def test_settings_choose_the_backend(tmp_path: Path) -> None:
    embedded = open_vector_store(Settings(data_dir=tmp_path, qdrant_url=""))
    assert isinstance(embedded, EdgeVectorStore)
    assert embedded.root == tmp_path / "qdrant"
    assert embedded.search_params is not None and embedded.search_params.hnsw_ef == 256
    server = open_vector_store(Settings(data_dir=tmp_path, qdrant_url="http://127.0.0.1:6333"))
    assert isinstance(server, ServerVectorStore)
    assert server.search_params is not None and server.search_params.hnsw_ef == 256
    server.close()


def test_the_hnsw_search_width_is_configurable(tmp_path: Path) -> None:
    """`VECTOR_SEARCH_EF` reaches both engines' searches (the bench measures its recall)."""
    settings = Settings(data_dir=tmp_path, qdrant_url="", vector_search_ef=64)
    embedded = open_vector_store(settings)
    assert isinstance(embedded, EdgeVectorStore)
    assert embedded.search_params is not None and embedded.search_params.hnsw_ef == 64
    server = open_vector_store(settings.model_copy(update={"qdrant_url": "http://127.0.0.1:6333"}))
    assert isinstance(server, ServerVectorStore)
    assert server.search_params is not None and server.search_params.hnsw_ef == 64
    server.close()
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        Settings(data_dir=tmp_path, vector_search_ef=0)


def test_search_with_a_set_hnsw_width_finds_the_same(store: VectorStore) -> None:
    query = _unit(3, IMAGE_DIM)
    before = [h.id for h in store.search("products", "image", query, limit=5)]
    if isinstance(store, EdgeVectorStore):
        store.search_params = qe.SearchParams(hnsw_ef=512)
    else:
        assert isinstance(store, ServerVectorStore)
        store.search_params = qm.SearchParams(hnsw_ef=512)
    try:
        after = [h.id for h in store.search("products", "image", query, limit=5)]
    finally:
        store.search_params = None
    assert after == before
