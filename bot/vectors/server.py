"""Server backend: a Qdrant server through qdrant-client (`QDRANT_URL`).

The same class runs on qdrant-client's in-memory mode (`QdrantClient(":memory:")`), which speaks
the same client API; the tests use that. Local mode ignores payload indexes (it scans), a
server builds them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from bot.vectors.model import (
    CollectionMismatch,
    CollectionNotFound,
    CollectionSpec,
    FieldType,
    Hit,
    PayloadFilter,
    PointId,
    StoredPoint,
    VectorPoint,
    VectorStoreError,
    caller_id,
    storage_id,
    with_key,
)

_SCHEMA = {
    FieldType.keyword: qm.PayloadSchemaType.KEYWORD,
    FieldType.integer: qm.PayloadSchemaType.INTEGER,
    FieldType.float: qm.PayloadSchemaType.FLOAT,
    FieldType.bool: qm.PayloadSchemaType.BOOL,
}


def _filter(flt: PayloadFilter | None) -> qm.Filter | None:
    if flt is None or flt.is_empty():
        return None
    must: list[Any] = []
    for key, value in flt.equals.items():
        if isinstance(value, float):
            must.append(qm.FieldCondition(key=key, range=qm.Range(gte=value, lte=value)))
        else:
            must.append(qm.FieldCondition(key=key, match=qm.MatchValue(value=value)))
    for key, r in flt.ranges.items():
        must.append(
            qm.FieldCondition(key=key, range=qm.Range(gte=r.gte, gt=r.gt, lte=r.lte, lt=r.lt))
        )
    for key, values in flt.any_of.items():
        must.append(qm.FieldCondition(key=key, match=qm.MatchAny(any=list(values))))
    must_not: list[Any] = [
        qm.FieldCondition(key=key, match=qm.MatchAny(any=list(values)))
        for key, values in flt.none_of.items()
    ]
    return qm.Filter(must=must or None, must_not=must_not or None)


class ServerVectorStore:
    """`VectorStore` on a Qdrant server, or on qdrant-client's local mode for tests."""

    def __init__(self, client: QdrantClient, search_ef: int | None = None) -> None:
        self.client = client
        self.search_params = None if search_ef is None else qm.SearchParams(hnsw_ef=search_ef)

    @classmethod
    def connect(
        cls, url: str, api_key: str | None = None, timeout: int = 10, search_ef: int | None = None
    ) -> ServerVectorStore:
        client = QdrantClient(
            url=url, api_key=api_key or None, timeout=timeout, check_compatibility=False
        )
        return cls(client, search_ef)

    def collection_exists(self, name: str) -> bool:
        return bool(self.client.collection_exists(name))

    def ensure_collection(self, spec: CollectionSpec) -> None:
        if not self.client.collection_exists(spec.name):
            self.client.create_collection(
                spec.name,
                vectors_config={
                    name: qm.VectorParams(size=size, distance=qm.Distance.COSINE)
                    for name, size in spec.vectors.items()
                },
            )
        else:
            params = self.client.get_collection(spec.name).config.params.vectors
            stored = {k: v.size for k, v in params.items()} if isinstance(params, dict) else {}
            if stored != dict(spec.vectors):
                raise CollectionMismatch(spec.name, stored, spec.vectors)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # local mode warns that indexes have no effect
            for key, ftype in spec.indexes.items():
                self.client.create_payload_index(spec.name, key, field_schema=_SCHEMA[ftype])

    def drop_collection(self, name: str) -> None:
        if self.client.collection_exists(name):
            self.client.delete_collection(name)

    def _check(self, name: str) -> None:
        if not self.client.collection_exists(name):
            raise CollectionNotFound(name)

    def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        self._check(collection)
        structs = [
            qm.PointStruct(
                id=storage_id(p.id),
                vector={name: [float(x) for x in vec] for name, vec in p.vectors.items()},
                payload=with_key(p.id, p.payload),
            )
            for p in points
        ]
        try:
            self.client.upsert(collection, points=structs, wait=True)
        except ValueError as error:  # local mode: unknown vector name
            raise VectorStoreError(str(error)) from error

    def delete(self, collection: str, ids: Sequence[PointId]) -> None:
        if ids:
            self._check(collection)
            selector = qm.PointIdsList(points=[storage_id(i) for i in ids])
            self.client.delete(collection, points_selector=selector, wait=True)

    def search(
        self,
        collection: str,
        vector_name: str,
        vector: Sequence[float],
        limit: int = 10,
        filter: PayloadFilter | None = None,
    ) -> list[Hit]:
        self._check(collection)
        try:
            response = self.client.query_points(
                collection,
                query=[float(x) for x in vector],
                using=vector_name,
                query_filter=_filter(filter),
                search_params=self.search_params,
                limit=limit,
                with_payload=True,
            )
        except ValueError as error:
            raise VectorStoreError(str(error)) from error
        hits = []
        for point in response.points:
            payload = dict(point.payload or {})
            hits.append(Hit(caller_id(point.id, payload), float(point.score), payload))
        return hits

    def retrieve(
        self, collection: str, ids: Sequence[PointId], with_vectors: bool = False
    ) -> list[StoredPoint]:
        if not ids:
            return []
        self._check(collection)
        records = self.client.retrieve(
            collection, [storage_id(i) for i in ids], with_payload=True, with_vectors=with_vectors
        )
        found = {str(r.id): r for r in records}
        points = []
        for wanted in ids:
            record = found.get(str(storage_id(wanted)))
            if record is not None:
                points.append(self._stored(record, with_vectors))
        return points

    def scroll(
        self, collection: str, filter: PayloadFilter | None = None, batch: int = 256
    ) -> Iterator[StoredPoint]:
        self._check(collection)
        offset: Any = None
        while True:
            records, offset = self.client.scroll(
                collection,
                scroll_filter=_filter(filter),
                limit=batch,
                offset=offset,
                with_payload=True,
                with_vectors=False,
            )
            for record in records:
                yield self._stored(record, False)
            if offset is None:
                return

    def count(self, collection: str, filter: PayloadFilter | None = None) -> int:
        self._check(collection)
        return int(self.client.count(collection, count_filter=_filter(filter), exact=True).count)

    def optimize(self, collection: str) -> None:
        """The server indexes in the background."""

    def close(self) -> None:
        self.client.close()

    @staticmethod
    def _stored(record: Any, with_vectors: bool) -> StoredPoint:
        payload = dict(record.payload or {})
        vectors: dict[str, list[float]] = {}
        if with_vectors and isinstance(record.vector, dict):
            vectors = {k: [float(x) for x in v] for k, v in record.vector.items()}
        return StoredPoint(caller_id(record.id, payload), payload, vectors)
