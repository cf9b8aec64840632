"""Typed values of the vector store: what goes in, what comes out, and the store's contract."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

PointId = int | str
"""An unsigned integer or any string. Strings that are not UUIDs (a SKU such as `DR-001`) are
stored under a UUIDv5 derived from them, with the string kept in the payload field `_key`;
callers always see their own id."""

Scalar = str | int | float | bool
KEY_FIELD = "_key"
_ID_NAMESPACE = uuid.UUID("6f1c5a43-8f0e-4d55-9c1a-3d2b1f0e7a10")


class VectorStoreError(Exception):
    """Base class; the message says what to do next."""


class CollectionNotFound(VectorStoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"vector collection {name!r} does not exist yet: index it first")
        self.name = name


class CollectionMismatch(VectorStoreError):
    """The stored collection has other vector names or sizes than the spec asks for."""

    def __init__(self, name: str, stored: Mapping[str, int], wanted: Mapping[str, int]) -> None:
        super().__init__(
            f"vector collection {name!r} stores vectors {dict(stored)} but {dict(wanted)} were "
            f"asked for (the embedding model changed?): drop the collection and re-index it"
        )
        self.name = name


class StorageLocked(VectorStoreError):
    """Embedded storage is opened by another process (one process at a time may open it)."""


class FieldType(StrEnum):
    """Type of a payload index. A list of keywords (sizes) is indexed as `keyword`."""

    keyword = "keyword"
    integer = "integer"
    float = "float"
    bool = "bool"


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    """A collection: named dense vectors (cosine distance) and the payload fields to index."""

    name: str
    vectors: Mapping[str, int]
    indexes: Mapping[str, FieldType] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VectorPoint:
    """One point to write. `upsert` replaces the whole point: vectors not given are dropped."""

    id: PointId
    vectors: Mapping[str, Sequence[float]]
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredPoint:
    """A point read back; `vectors` is empty unless asked for (normalised for cosine)."""

    id: PointId
    payload: dict[str, Any]
    vectors: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hit:
    """A search result: higher `score` is closer (cosine similarity, -1..1)."""

    id: PointId
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Range:
    gte: float | None = None
    gt: float | None = None
    lte: float | None = None
    lt: float | None = None


@dataclass(frozen=True, slots=True)
class PayloadFilter:
    """All conditions must hold.

    `equals`: field == value; for a list field (sizes) the list contains the value.
    `ranges`: numeric bounds. `any_of`: the field (or one of its list values) is one of these.
    `none_of`: the field is none of these.
    """

    equals: Mapping[str, Scalar] = field(default_factory=dict)
    ranges: Mapping[str, Range] = field(default_factory=dict)
    any_of: Mapping[str, Sequence[str | int]] = field(default_factory=dict)
    none_of: Mapping[str, Sequence[str | int]] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.equals or self.ranges or self.any_of or self.none_of)


class VectorStore(Protocol):
    """The operations the app uses; both backends implement exactly these."""

    def ensure_collection(self, spec: CollectionSpec) -> None:
        """Create the collection and its payload indexes if missing (idempotent)."""

    def drop_collection(self, name: str) -> None:
        """Delete the collection and all its points (no error when it does not exist)."""

    def collection_exists(self, name: str) -> bool: ...

    def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None: ...

    def delete(self, collection: str, ids: Sequence[PointId]) -> None:
        """Delete these points; unknown ids are ignored."""

    def search(
        self,
        collection: str,
        vector_name: str,
        vector: Sequence[float],
        limit: int = 10,
        filter: PayloadFilter | None = None,
    ) -> list[Hit]: ...

    def retrieve(
        self, collection: str, ids: Sequence[PointId], with_vectors: bool = False
    ) -> list[StoredPoint]:
        """The points that exist among `ids`, in the order asked for."""

    def scroll(
        self, collection: str, filter: PayloadFilter | None = None, batch: int = 256
    ) -> Iterator[StoredPoint]:
        """Every point (payload only) matching the filter, in id order."""

    def count(self, collection: str, filter: PayloadFilter | None = None) -> int: ...

    def optimize(self, collection: str) -> None:
        """Build indexes after a bulk load (embedded engine); a server does it by itself."""

    def close(self) -> None: ...


def storage_id(point_id: PointId) -> int | str:
    """The id the engine stores: ints and UUID strings as they are, other strings as UUIDv5."""
    if isinstance(point_id, bool):
        raise TypeError("a point id is an int or a str, not a bool")
    if isinstance(point_id, int):
        if point_id < 0:
            raise ValueError(f"point ids must be unsigned, got {point_id}")
        return point_id
    try:
        return str(uuid.UUID(point_id))
    except ValueError:
        return str(uuid.uuid5(_ID_NAMESPACE, point_id))


def with_key(point_id: PointId, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload to store: the caller's string id kept when it had to be mapped."""
    stored = dict(payload)
    if KEY_FIELD in stored:
        raise ValueError(f"payload field {KEY_FIELD!r} is reserved for the point's own id")
    if isinstance(point_id, str) and storage_id(point_id) != point_id:
        stored[KEY_FIELD] = point_id
    return stored


def caller_id(raw_id: object, payload: dict[str, Any]) -> PointId:
    """The caller's id of a stored point; removes `_key` from `payload`."""
    key = payload.pop(KEY_FIELD, None)
    if isinstance(key, str):
        return key
    if isinstance(raw_id, int):
        return raw_id
    return str(raw_id)
