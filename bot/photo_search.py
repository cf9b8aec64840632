"""Photo search: a customer's photo (or a product's own photo) → the nearest products.

The photo is embedded by the vision service (over HTTP, `VISION_URL`) and looked up in the
collection `products` (vector `image`) with the caption's constraints as payload filters. When
the filters leave nothing, they are loosened one at a time (colour, then price) and the caller is
told which one was dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from bot.media import MediaStore
from bot.search_filters import SearchConstraints
from bot.shop import Shop
from bot.vectors import PRODUCTS, Hit, PayloadFilter, Range, VectorStore, VectorStoreError
from vision.client import VisionClient
from vision.values import ImageLabel

log = logging.getLogger(__name__)

PAGE = 5
LOOKS_LIKE_THRESHOLD = 0.35
LABELS = 5
# ImageNet classes a shop's customer photographs, as the shop would name them. The model's top
# class is said aloud ("looks like a sneaker") only when it is one of these and the model is
# sure enough: ImageNet also knows "vestment", "apron" and "pajamas", which insult a dress.
SHOP_NAMES = {
    "T-shirt": "T-shirt", "sweatshirt": "sweatshirt", "cardigan": "cardigan",
    "jeans": "pair of jeans", "miniskirt": "miniskirt", "overskirt": "skirt",
    "hoop skirt": "skirt", "gown": "gown", "suit": "suit", "trench coat": "trench coat",
    "fur coat": "fur coat", "poncho": "poncho", "cloak": "cloak", "kimono": "kimono",
    "abaya": "abaya", "bikini": "bikini", "one-piece bathing suit": "swimsuit",
    "swim trunks / shorts": "pair of shorts", "sneaker": "sneaker", "slip-on shoe": "shoe",
    "clogs": "clog", "sandal": "sandal", "cowboy boot": "boot", "cowboy hat": "hat",
    "sombrero": "sombrero", "backpack": "backpack", "purse": "handbag",
    "messenger bag": "messenger bag", "wallet": "wallet", "sunglasses": "pair of sunglasses",
    "necklace": "necklace", "mitten": "mitten", "sock": "sock", "stole scarf": "scarf",
    "bow tie": "bow tie", "Windsor tie": "tie", "bra": "bra",
}  # fmt: skip


class PhotoNotFound(Exception):
    """The photo id is not (or no longer) in the media store."""


class PhotoIndexMissing(Exception):
    """The catalogue is not indexed (or was indexed with another image model)."""


class ProductNotIndexed(Exception):
    """The product has no photo vector (no photo, or an unreadable one)."""


@dataclass(frozen=True)
class Match:
    product_id: int
    sku: str
    score: float


@dataclass(frozen=True)
class PhotoResults:
    matches: list[Match]
    looks_like: str | None = None  # what the photo shows, in the shop's words
    loosened: str | None = None  # "colour" or "colour and price" when those filters were dropped
    has_more: bool = False


def payload_filter(
    constraints: SearchConstraints,
    cheaper_than: Decimal | None = None,
    exclude_sku: str | None = None,
) -> PayloadFilter:
    """The caption's constraints as a filter on the `products` payload."""
    equals: dict[str, str | bool] = {}
    if constraints.in_stock:
        equals["in_stock"] = True
    if constraints.category:
        equals["category"] = constraints.category
    if constraints.size:
        equals["sizes"] = constraints.size.upper()
    low = float(constraints.min_price) if constraints.min_price is not None else None
    high = float(constraints.max_price) if constraints.max_price is not None else None
    below = float(cheaper_than) if cheaper_than is not None else None
    ranges = {}
    if low is not None or high is not None or below is not None:
        ranges["price"] = Range(gte=low, lte=high, lt=below)
    any_of = {"colour": list(constraints.colours)} if constraints.colours else {}
    none_of = {"sku": [exclude_sku]} if exclude_sku else {}
    return PayloadFilter(equals=equals, ranges=ranges, any_of=any_of, none_of=none_of)


def loosenings(constraints: SearchConstraints) -> list[tuple[SearchConstraints, str | None]]:
    """The constraints as given, then without colour, then without colour and price."""
    steps: list[tuple[SearchConstraints, str | None]] = [(constraints, None)]
    if constraints.colours:
        steps.append((replace(constraints, colours=()), "colour"))
    if constraints.min_price is not None or constraints.max_price is not None:
        steps.append(
            (replace(constraints, colours=(), min_price=None, max_price=None),
             "colour and price" if constraints.colours else "price")
        )  # fmt: skip
    return steps


class PhotoSearch:
    """One per process (see `Services.photo_search`); holds the pooled vision client."""

    def __init__(
        self,
        shop: Shop,
        vectors: Callable[[], VectorStore],
        vision_url: str | None = None,
        media: MediaStore | None = None,
    ) -> None:
        settings = shop.settings
        self.shop = shop
        self.vectors = vectors
        self.vision_url = vision_url or settings.vision_url
        self.media = media or MediaStore(
            settings.data_dir / "media", settings.telegram_max_photo_bytes
        )
        self._client: VisionClient | None = None

    @property
    def vision(self) -> VisionClient:
        """The pooled client (created in the running event loop on first use)."""
        if self._client is None:
            self._client = VisionClient(self.vision_url, timeout_s=10.0, retries=2)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def photo_bytes(self, media_id: str) -> bytes:
        path = self.media.path_of(media_id)
        if path is None:
            raise PhotoNotFound(media_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError as error:
            raise PhotoNotFound(media_id) from error

    async def by_photo(
        self, media_id: str, constraints: SearchConstraints, offset: int = 0, limit: int = PAGE
    ) -> PhotoResults:
        """Products that look like the stored photo; raises VisionUnavailable, ImageRejected,
        PhotoNotFound, PhotoIndexMissing."""
        data = await self.photo_bytes(media_id)
        embedding = await self.vision.embed(data, labels=LABELS)
        results = self._nearest(
            embedding.vector.tolist(), embedding.model, constraints, offset, limit
        )
        return replace(results, looks_like=looks_like(embedding.labels))

    async def similar_to(
        self,
        sku: str,
        constraints: SearchConstraints,
        cheaper_than: Decimal | None = None,
        offset: int = 0,
        limit: int = PAGE,
    ) -> PhotoResults:
        """Image neighbours of a product (itself excluded); raises ProductNotIndexed."""
        try:
            found = self.vectors().retrieve(PRODUCTS, [sku], with_vectors=True)
        except VectorStoreError as error:
            raise PhotoIndexMissing(str(error)) from error
        if not found or "image" not in found[0].vectors:
            raise ProductNotIndexed(sku)
        point = found[0]
        model = str(point.payload.get("image_model", ""))
        return self._nearest(
            point.vectors["image"], model, constraints, offset, limit, cheaper_than, sku
        )

    def _nearest(
        self,
        vector: Sequence[float],
        model: str,
        constraints: SearchConstraints,
        offset: int,
        limit: int,
        cheaper_than: Decimal | None = None,
        exclude_sku: str | None = None,
    ) -> PhotoResults:
        store = self.vectors()
        try:
            if not store.collection_exists(PRODUCTS):
                raise PhotoIndexMissing("the catalogue has not been indexed yet")
            hits: list[Hit] = []
            loosened: str | None = None
            for wanted, dropped in loosenings(constraints):
                flt = payload_filter(wanted, cheaper_than, exclude_sku)
                hits = store.search(PRODUCTS, "image", vector, offset + limit + 1, flt)
                if hits:
                    loosened = dropped
                    break
        except VectorStoreError as error:
            raise PhotoIndexMissing(str(error)) from error
        if hits and hits[0].payload.get("image_model") != model:
            raise PhotoIndexMissing(
                f"the catalogue was indexed with {hits[0].payload.get('image_model')!r}, the "
                f"vision service runs {model!r}: run `bot catalog reindex`"
            )
        page = hits[offset : offset + limit]
        return PhotoResults(
            matches=[_match(hit) for hit in page],
            loosened=loosened,
            has_more=len(hits) > offset + limit,
        )


def looks_like(labels: Sequence[ImageLabel]) -> str | None:
    """The shop's name for the model's top ImageNet class, when it is sure and it is apparel."""
    if not labels or labels[0].probability < LOOKS_LIKE_THRESHOLD:
        return None
    return SHOP_NAMES.get(labels[0].name)


def _match(hit: Hit) -> Match:
    return Match(int(hit.payload["product_id"]), str(hit.id), hit.score)
