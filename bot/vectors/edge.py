"""Embedded backend: Qdrant Edge (`qdrant-edge-py`), the Qdrant engine inside this process.

One Edge shard per collection under `root/<name>/shard`, with our spec beside it in
`root/<name>/spec.json`. Only one process at a time can open a shard (its write-ahead log is
locked), so the app opens the store once and shares it.

qdrant-edge-py 0.9 reads `MatchValue(True)` as the integer 1, so a boolean never matches. Fields
indexed as `bool` are therefore stored as 0/1 integers (integer index) and turned back into
booleans when read; filters on them are translated the same way.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from bot.vectors.model import (
    CollectionMismatch,
    CollectionNotFound,
    CollectionSpec,
    FieldType,
    Hit,
    PayloadFilter,
    PointId,
    StorageLocked,
    StoredPoint,
    VectorPoint,
    VectorStoreError,
    caller_id,
    storage_id,
    with_key,
)

_SCHEMA = {
    FieldType.keyword: qe.PayloadSchemaType.Keyword,
    FieldType.integer: qe.PayloadSchemaType.Integer,
    FieldType.float: qe.PayloadSchemaType.Float,
    FieldType.bool: qe.PayloadSchemaType.Integer,  # see the module docstring
}


class _Collection:
    def __init__(self, spec: CollectionSpec, shard: qe.EdgeShard) -> None:
        self.spec = spec
        self.shard = shard
        self.bools = frozenset(k for k, t in spec.indexes.items() if t is FieldType.bool)

    def encode(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return {
            k: int(v) if k in self.bools and isinstance(v, bool) else v for k, v in payload.items()
        }

    def decode(self, payload: dict[str, Any]) -> dict[str, Any]:
        for key in self.bools & payload.keys():
            if isinstance(payload[key], int):
                payload[key] = bool(payload[key])
        return payload

    def filter(self, flt: PayloadFilter | None) -> qe.Filter | None:
        if flt is None or flt.is_empty():
            return None
        must: list[Any] = []
        for key, value in flt.equals.items():
            if isinstance(value, bool):
                if key not in self.bools:
                    raise VectorStoreError(
                        f"filtering on the boolean {key!r} needs it indexed as FieldType.bool"
                    )
                value = int(value)
            if isinstance(value, float):
                must.append(qe.FieldCondition(key, range=qe.RangeFloat(gte=value, lte=value)))
            else:
                must.append(qe.FieldCondition(key, match=qe.MatchValue(value)))
        for key, r in flt.ranges.items():
            must.append(
                qe.FieldCondition(key, range=qe.RangeFloat(gte=r.gte, gt=r.gt, lte=r.lte, lt=r.lt))
            )
        for key, values in flt.any_of.items():
            must.append(qe.FieldCondition(key, match=qe.MatchAny(list(values))))  # type: ignore[arg-type]
        must_not: list[Any] = [
            qe.FieldCondition(key, match=qe.MatchAny(list(values)))  # type: ignore[arg-type]
            for key, values in flt.none_of.items()
        ]
        return qe.Filter(must=must or None, must_not=must_not or None)


def _spec_to_json(spec: CollectionSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "vectors": dict(spec.vectors),
        "indexes": {k: v.value for k, v in spec.indexes.items()},
    }


def _spec_from_json(data: Mapping[str, Any]) -> CollectionSpec:
    return CollectionSpec(
        name=data["name"],
        vectors={k: int(v) for k, v in data["vectors"].items()},
        indexes={k: FieldType(v) for k, v in data["indexes"].items()},
    )


def _open_error(path: Path, error: Exception) -> VectorStoreError:
    if "WouldBlock" in str(error) or "lock" in str(error).lower():
        return StorageLocked(
            f"the embedded vector storage {path} is open in another process; stop that "
            f"process (the app holds it while it runs) or use a Qdrant server (QDRANT_URL)"
        )
    return VectorStoreError(f"cannot open the embedded vector storage {path}: {error}")


class EdgeVectorStore:
    """`VectorStore` on Qdrant Edge shards under `root` (DATA_DIR/qdrant in the app);
    `search_ef`: HNSW candidates per search (None: Qdrant's default, its `ef_construct`, 100)."""

    def __init__(self, root: Path, search_ef: int | None = None) -> None:
        self.root = Path(root)
        self.search_params = None if search_ef is None else qe.SearchParams(hnsw_ef=search_ef)
        self._open: dict[str, _Collection] = {}
        self._lock = threading.Lock()  # opening/creating shards, not every read

    # -- collections -------------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"bad collection name {name!r}")
        return self.root / name

    def collection_exists(self, name: str) -> bool:
        return name in self._open or (self._dir(name) / "spec.json").exists()

    def ensure_collection(self, spec: CollectionSpec) -> None:
        with self._lock:
            coll = self._load(spec.name) if self.collection_exists(spec.name) else None
            if coll is None:
                coll = self._create(spec)
            elif dict(coll.spec.vectors) != dict(spec.vectors):
                raise CollectionMismatch(spec.name, coll.spec.vectors, spec.vectors)
            stored = coll.shard.info().payload_schema
            for key, ftype in spec.indexes.items():
                if key not in stored:
                    coll.shard.update(qe.UpdateOperation.create_field_index(key, _SCHEMA[ftype]))
            if dict(coll.spec.indexes) != dict(spec.indexes):
                merged = CollectionSpec(
                    spec.name, spec.vectors, {**coll.spec.indexes, **spec.indexes}
                )
                self._write_spec(merged)
                self._open[spec.name] = _Collection(merged, coll.shard)

    def drop_collection(self, name: str) -> None:
        with self._lock:
            coll = self._open.pop(name, None)
            if coll is not None:
                coll.shard.close()
            shutil.rmtree(self._dir(name), ignore_errors=True)

    def _create(self, spec: CollectionSpec) -> _Collection:
        directory = self._dir(spec.name)
        shutil.rmtree(directory, ignore_errors=True)  # a half-created collection
        directory.mkdir(parents=True)
        config = qe.EdgeConfig(
            vectors={
                name: qe.EdgeVectorParams(size=size, distance=qe.Distance.Cosine)
                for name, size in spec.vectors.items()
            }
        )
        try:
            shard = qe.EdgeShard.create(str(directory / "shard"), config)
        except Exception as error:
            raise _open_error(directory, error) from error
        coll = _Collection(spec, shard)
        self._write_spec(spec)  # last: its presence marks a complete collection
        self._open[spec.name] = coll
        return coll

    def _write_spec(self, spec: CollectionSpec) -> None:
        path = self._dir(spec.name) / "spec.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(_spec_to_json(spec), indent=1))
        tmp.replace(path)

    def _load(self, name: str) -> _Collection:
        coll = self._open.get(name)
        if coll is not None:
            return coll
        directory = self._dir(name)
        try:
            spec = _spec_from_json(json.loads((directory / "spec.json").read_text()))
        except FileNotFoundError:
            raise CollectionNotFound(name) from None
        try:
            shard = qe.EdgeShard.load(str(directory / "shard"))
        except Exception as error:
            raise _open_error(directory, error) from error
        coll = self._open[name] = _Collection(spec, shard)
        return coll

    def _get(self, name: str) -> _Collection:
        coll = self._open.get(name)
        if coll is None:
            with self._lock:
                coll = self._load(name)
        return coll

    # -- points ------------------------------------------------------------------------------

    def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        coll = self._get(collection)
        for point in points:
            unknown = set(point.vectors) - set(coll.spec.vectors)
            if unknown:
                raise VectorStoreError(f"{collection!r} has no vectors named {sorted(unknown)}")
        edge_points = [
            qe.Point(
                storage_id(p.id),
                {name: [float(x) for x in vec] for name, vec in p.vectors.items()},
                coll.encode(with_key(p.id, p.payload)),
            )
            for p in points
        ]
        coll.shard.update(qe.UpdateOperation.upsert_points(edge_points))

    def delete(self, collection: str, ids: Sequence[PointId]) -> None:
        if ids:
            coll = self._get(collection)
            coll.shard.update(qe.UpdateOperation.delete_points([storage_id(i) for i in ids]))

    def search(
        self,
        collection: str,
        vector_name: str,
        vector: Sequence[float],
        limit: int = 10,
        filter: PayloadFilter | None = None,
    ) -> list[Hit]:
        coll = self._get(collection)
        if vector_name not in coll.spec.vectors:
            raise VectorStoreError(f"{collection!r} has no vector named {vector_name!r}")
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest([float(x) for x in vector], using=vector_name),
            filter=coll.filter(filter),
            with_payload=True,
            params=self.search_params,
        )
        hits = []
        for point in coll.shard.query(request):
            payload = coll.decode(dict(point.payload or {}))
            hits.append(Hit(caller_id(point.id, payload), float(point.score), payload))
        return hits

    def retrieve(
        self, collection: str, ids: Sequence[PointId], with_vectors: bool = False
    ) -> list[StoredPoint]:
        if not ids:
            return []
        coll = self._get(collection)
        records = coll.shard.retrieve(
            [storage_id(i) for i in ids], with_payload=True, with_vector=with_vectors
        )
        found = {str(r.id): r for r in records}
        points = []
        for wanted in ids:
            record = found.get(str(storage_id(wanted)))
            if record is not None:
                points.append(self._stored(coll, record, with_vectors))
        return points

    def scroll(
        self, collection: str, filter: PayloadFilter | None = None, batch: int = 256
    ) -> Iterator[StoredPoint]:
        coll = self._get(collection)
        offset: Any = None
        while True:
            request = qe.ScrollRequest(
                offset=offset,
                limit=batch,
                filter=coll.filter(filter),
                with_payload=True,
                with_vector=False,
            )
            records, offset = coll.shard.scroll(request)
            for record in records:
                yield self._stored(coll, record, False)
            if offset is None:
                return

    def count(self, collection: str, filter: PayloadFilter | None = None) -> int:
        coll = self._get(collection)
        return int(coll.shard.count(qe.CountRequest(exact=True, filter=coll.filter(filter))))

    def optimize(self, collection: str) -> None:
        coll = self._get(collection)
        coll.shard.optimize()
        coll.shard.flush()

    def close(self) -> None:
        with self._lock:
            for coll in self._open.values():
                coll.shard.flush()
                coll.shard.close()
            self._open.clear()

    @staticmethod
    def _stored(coll: _Collection, record: Any, with_vectors: bool) -> StoredPoint:
        payload = coll.decode(dict(record.payload or {}))
        vectors: dict[str, list[float]] = {}
        if with_vectors and isinstance(record.vector, dict):
            vectors = {k: list(v) for k, v in record.vector.items()}
        return StoredPoint(caller_id(record.id, payload), payload, vectors)
