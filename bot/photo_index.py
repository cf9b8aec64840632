"""The catalogue in the vector store: collection `products`, vectors `image` and `text`.

    report = ProductIndexer(store, LocalImageEncoder(), MiniLMEncoder()).sync(catalog_items(s))

Idempotent by content hash: a point remembers the hash of the photo bytes (with the image
model's id) and of the text (with the text model's id) it was embedded from, so a re-run embeds
only what changed, and a change of stock or price rewrites the payload without embedding
anything. Points are written batch by batch, so an interrupted run (Ctrl-C) resumes where it
stopped. Unreadable photos are reported at the end, never stop the run.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sqlmodel import Session, col, select

from bot.store.models import Product, ProductVariant
from bot.vectors import (
    PRODUCTS,
    TEXT_DIM,
    CollectionMismatch,
    StoredPoint,
    VectorPoint,
    VectorStore,
    products_spec,
)
from vision.errors import ImageRejected, UnsupportedImage

log = logging.getLogger(__name__)

BATCH = 16
HASH_FIELDS = ("image_hash", "text_hash", "image_model")


# --- what gets indexed ------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogItem:
    """One product as the index sees it."""

    sku: str
    product_id: int
    title: str
    category: str
    price: Decimal
    currency: str
    colour: str
    brand: str
    material: str
    description: str
    stock: dict[str, int]
    image_path: Path | None

    def text(self) -> str:
        """What the text vector is embedded from."""
        return (
            f"{self.title}. {self.category}. {self.colour} {self.material}. {self.brand}. "
            f"{self.description}"
        )

    def payload(self) -> dict[str, Any]:
        """The filterable fields (see PRODUCT_INDEXES) plus what a hit needs to be shown."""
        in_stock = [size for size, units in self.stock.items() if units > 0]
        return {
            "sku": self.sku,
            "product_id": self.product_id,
            "title": self.title,
            "category": self.category.lower(),
            "price": float(self.price),
            "currency": self.currency,
            "in_stock": bool(in_stock),
            "colour": colour_terms(self.colour),
            "brand": self.brand,
            "sizes": size_terms(in_stock),
        }


def colour_terms(colour: str) -> list[str]:
    """`Sage Green` → ["sage green", "sage", "green"]: a filter on any colour word matches."""
    lowered = " ".join(colour.lower().split())
    words = [w for w in re.findall(r"[a-z]+", lowered) if w not in ("and", "with")]
    return list(dict.fromkeys([lowered, *words])) if lowered else []


def size_terms(sizes: Iterable[str]) -> list[str]:
    """Sizes in stock, upper-cased, with two-size fits split ("S/M" also matches S and M)."""
    terms: list[str] = []
    for size in sizes:
        upper = size.strip().upper()
        terms.append(upper)
        if "/" in upper:
            terms.extend(part.strip() for part in upper.split("/") if part.strip())
    return list(dict.fromkeys(terms))


def resolve_image(image_path: str | None, data_dir: Path) -> Path | None:
    """A product's stored image path: absolute as given, relative to DATA_DIR otherwise."""
    if not image_path:
        return None
    path = Path(image_path)
    return path if path.is_absolute() else data_dir / path


def catalog_items(session: Session, data_dir: Path) -> list[CatalogItem]:
    """Every product of the store with its stock per size, in id order."""
    stock: dict[int, dict[str, int]] = {}
    for variant in session.exec(select(ProductVariant).order_by(col(ProductVariant.id))).all():
        stock.setdefault(variant.product_id, {})[variant.size] = variant.stock
    items = []
    for product in session.exec(select(Product).order_by(col(Product.id))).all():
        assert product.id is not None
        items.append(
            CatalogItem(
                sku=product.sku,
                product_id=product.id,
                title=product.title,
                category=product.category,
                price=product.price,
                currency=product.currency,
                colour=product.colour,
                brand=product.brand,
                material=product.material,
                description=product.description,
                stock=stock.get(product.id, {}),
                image_path=resolve_image(product.image_path, data_dir),
            )
        )
    return items


# --- encoders ---------------------------------------------------------------------------------


class ImageEncoder(Protocol):
    """Photos → unit vectors; a photo that cannot be read comes back as its ImageRejected."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, images: Sequence[bytes]) -> list[np.ndarray | ImageRejected]: ...


class TextEncoder(Protocol):
    model_id: str
    dim: int

    def encode(self, texts: Sequence[str]) -> Any: ...


def configured_model() -> tuple[str, Path | None]:
    """The image model the vision service runs (VISION_MODEL / VISION_CLIP_DIR)."""
    from vision.models import DEFAULT_MODEL

    clip_dir = os.environ.get("VISION_CLIP_DIR")
    return os.environ.get("VISION_MODEL") or DEFAULT_MODEL, Path(clip_dir) if clip_dir else None


class LocalImageEncoder:
    """The vision model in this process (catalog import, demo data): same vectors as the
    service's. PyTorch and the weights load on first use."""

    def __init__(
        self, model: str | None = None, clip_dir: Path | None = None, embedder: Any = None
    ) -> None:
        default, default_clip = configured_model()
        self.model = model or default
        self.clip_dir = clip_dir or default_clip
        self._embedder: Any = embedder  # an already loaded vision.ImageEmbedder (tests)

    def _load(self) -> Any:
        if self._embedder is None:
            from vision.embedder import get_embedder

            self._embedder = get_embedder(self.model, self.clip_dir)
        return self._embedder

    @property
    def model_id(self) -> str:
        return str(self._load().model_id)

    @property
    def dim(self) -> int:
        return int(self._load().dim)

    def encode(self, images: Sequence[bytes]) -> list[np.ndarray | ImageRejected]:
        embedder = self._load()
        results: list[np.ndarray | ImageRejected] = []
        arrays, slots = [], []
        for data in images:
            try:
                arrays.append(embedder.prepare(data))
                slots.append(len(results))
                results.append(UnsupportedImage("pending"))
            except ImageRejected as rejected:
                results.append(rejected)
        for slot, embedding in zip(slots, embedder.embed_arrays(arrays), strict=True):
            results[slot] = embedding.vector
        return results


class ServiceImageEncoder:
    """The vision service over HTTP (the app indexing at start-up, without loading PyTorch).
    Synchronous: runs its own event loop, so call it from a worker thread."""

    def __init__(self, url: str, timeout_s: float = 60.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._info: dict[str, Any] | None = None

    def _ready(self) -> dict[str, Any]:
        if self._info is None:
            import json
            import urllib.request

            with urllib.request.urlopen(f"{self.url.rstrip('/')}/readyz", timeout=5) as response:
                self._info = dict(json.loads(response.read()))
        return self._info

    @property
    def model_id(self) -> str:
        return str(self._ready()["model"])

    @property
    def dim(self) -> int:
        return int(self._ready()["dim"])

    def encode(self, images: Sequence[bytes]) -> list[np.ndarray | ImageRejected]:
        from vision.client import VisionClient

        async def run() -> list[np.ndarray | ImageRejected]:
            async with VisionClient(self.url, timeout_s=self.timeout_s) as client:
                results = await client.embed_batch(images)
            return [r if isinstance(r, ImageRejected) else r.vector for r in results]

        return asyncio.run(run())


# --- the indexer ------------------------------------------------------------------------------


@dataclass
class IndexReport:
    """What one run did; `failures` are (sku, reason) for photos that could not be indexed."""

    products: int = 0
    images_embedded: int = 0
    texts_embedded: int = 0
    payload_updated: int = 0
    unchanged: int = 0
    removed: int = 0
    without_image: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.images_embedded + self.texts_embedded + self.payload_updated + self.removed

    def to_json(self) -> dict[str, Any]:
        return {
            "products": self.products,
            "images_embedded": self.images_embedded,
            "texts_embedded": self.texts_embedded,
            "payload_updated": self.payload_updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "without_image": self.without_image,
            "failures": [{"sku": sku, "reason": reason} for sku, reason in self.failures],
        }


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()


class ProductIndexer:
    """Keeps collection `products` in step with the catalogue."""

    def __init__(
        self,
        store: VectorStore,
        images: ImageEncoder,
        texts: TextEncoder,
        batch_size: int = BATCH,
    ) -> None:
        self.store = store
        self.images = images
        self.texts = texts
        self.batch_size = batch_size

    def prepare(self, rebuild: bool = False) -> None:
        """Create the collection; a different vector size (a new model) means a rebuild."""
        spec = products_spec(self.images.dim, getattr(self.texts, "dim", TEXT_DIM))
        if rebuild:
            self.store.drop_collection(PRODUCTS)
        try:
            self.store.ensure_collection(spec)
        except CollectionMismatch:
            log.warning("the image model changed: rebuilding collection %r", PRODUCTS)
            self.store.drop_collection(PRODUCTS)
            self.store.ensure_collection(spec)

    def sync(
        self,
        items: Sequence[CatalogItem],
        prune: bool = True,
        rebuild: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> IndexReport:
        """Index `items`; with `prune`, remove points of products that are not among them."""
        self.prepare(rebuild)
        report = IndexReport(products=len(items))
        stored = {str(p.id): p.payload for p in self.store.scroll(PRODUCTS)}
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            self._index_batch(batch, stored, report)
            if progress is not None:
                progress(len(batch))
        if prune:
            wanted = {item.sku for item in items}
            gone = [sku for sku in stored if sku not in wanted]
            if gone:
                self.store.delete(PRODUCTS, gone)
                report.removed = len(gone)
        if report.changed:
            self.store.optimize(PRODUCTS)
        return report

    def _index_batch(
        self,
        batch: Sequence[CatalogItem],
        stored: dict[str, dict[str, Any]],
        report: IndexReport,
    ) -> None:
        image_model = self.images.model_id
        text_model = str(getattr(self.texts, "model_id", "text"))
        plans = []
        for item in batch:
            data, failure = _read_image(item)
            if failure:
                report.failures.append((item.sku, failure))
            if data is None:
                report.without_image += 1
            image_hash = _digest(image_model, data) if data is not None else ""
            text = item.text()
            text_hash = _digest(text_model, text)
            payload = {
                **item.payload(),
                "image_hash": image_hash,
                "text_hash": text_hash,
                "image_model": image_model,
            }
            old = stored.get(item.sku)
            plans.append((item, data, text, payload, old))
        to_image = [
            (i, data)
            for i, (_, data, _, payload, old) in enumerate(plans)
            if data is not None and (old is None or old.get("image_hash") != payload["image_hash"])
        ]
        to_text = [
            (i, text)
            for i, (_, _, text, payload, old) in enumerate(plans)
            if old is None or old.get("text_hash") != payload["text_hash"]
        ]
        image_vectors: dict[int, list[float]] = {}
        if to_image:
            results = self.images.encode([data for _, data in to_image])
            for (i, _), result in zip(to_image, results, strict=True):
                if isinstance(result, ImageRejected):
                    report.failures.append((plans[i][0].sku, f"unreadable image: {result}"))
                    plans[i][3]["image_hash"] = ""
                else:
                    image_vectors[i] = [float(x) for x in result]
        text_vectors: dict[int, list[float]] = {}
        if to_text:
            encoded = self.texts.encode([text for _, text in to_text])
            for (i, _), vector in zip(to_text, encoded, strict=True):
                text_vectors[i] = [float(x) for x in vector]
        unchanged_ids = [
            plans[i][0].sku
            for i in range(len(plans))
            if i not in image_vectors and i not in text_vectors
            and plans[i][4] is not None and plans[i][4] == plans[i][3]
        ]  # fmt: skip
        keep_vectors = {
            p.id: p
            for p in self._existing(
                [plans[i][0].sku for i in range(len(plans))
                 if plans[i][4] is not None and plans[i][0].sku not in unchanged_ids]
            )
        }  # fmt: skip
        points: list[VectorPoint] = []
        for i, (item, _, _, payload, old) in enumerate(plans):
            if item.sku in unchanged_ids:
                report.unchanged += 1
                continue
            previous = keep_vectors.get(item.sku)
            vectors: dict[str, list[float]] = {}
            if i in image_vectors:
                vectors["image"] = image_vectors[i]
                report.images_embedded += 1
            elif payload["image_hash"] and previous is not None and "image" in previous.vectors:
                vectors["image"] = previous.vectors["image"]
            else:
                payload["image_hash"] = ""
            if i in text_vectors:
                vectors["text"] = text_vectors[i]
                report.texts_embedded += 1
            elif previous is not None and "text" in previous.vectors:
                vectors["text"] = previous.vectors["text"]
            if old is not None and i not in image_vectors and i not in text_vectors:
                report.payload_updated += 1
            points.append(VectorPoint(item.sku, vectors, payload))
        self.store.upsert(PRODUCTS, points)
        for point in points:
            stored[str(point.id)] = dict(point.payload)

    def _existing(self, skus: list[str]) -> list[StoredPoint]:
        return self.store.retrieve(PRODUCTS, skus, with_vectors=True) if skus else []


def _read_image(item: CatalogItem) -> tuple[bytes | None, str | None]:
    """The photo's bytes, or None and why not (no photo at all is not a failure)."""
    if item.image_path is None:
        return None, None
    try:
        data = item.image_path.read_bytes()
    except OSError as error:
        return None, f"cannot read image {item.image_path}: {error.strerror or error}"
    if not data:
        return None, f"image {item.image_path} is empty"
    return data, None


def index_catalog(
    session: Session,
    store: VectorStore,
    data_dir: Path,
    images: ImageEncoder | None = None,
    texts: TextEncoder | None = None,
    rebuild: bool = False,
    progress: Callable[[int], None] | None = None,
) -> IndexReport:
    """Bring `products` in step with every product of the store (the CLI and demo data)."""
    if texts is None:
        from knowledge import MiniLMEncoder

        texts = MiniLMEncoder()
    indexer = ProductIndexer(store, images or LocalImageEncoder(), texts)
    return indexer.sync(catalog_items(session, data_dir), rebuild=rebuild, progress=progress)
