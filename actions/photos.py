"""Photo search in chat: "find something like this" with a photo, and "similar items" of a card.

A channel stores the customer's photo content-addressed and sends the turn as the payload
`/photo_search` with `metadata["media"] = {"id": <sha256>, ...}` and the caption in
`metadata["caption"]`. Follow-up buttons carry their arguments as JSON after the intent:
`/photo_search{"photo": "<sha256>", "offset": 5, "caption": "..."}` (more results) and
`/similar_items{"product_id": 12, "cheaper": true, "offset": 0}` (image neighbours of a product).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlmodel import Session

from actions.clicks import record_card_click
from actions.parsing import payload_args
from actions.products import search_answer
from bot.catalog import ProductFacts, content_words, facts, resolve
from bot.channels.base import Button, ProductCard
from bot.photo_search import (
    PAGE,
    PhotoIndexMissing,
    PhotoNotFound,
    PhotoResults,
    ProductNotIndexed,
)
from bot.search_filters import SearchConstraints, parse_constraints
from bot.services import Services
from bot.shop import Shop
from bot.store.models import Product
from vision.client import VisionUnavailable
from vision.errors import ImageRejected

log = logging.getLogger(__name__)

MEDIA_ID_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_CAPTION = 200

ASK_FOR_PHOTO = (
    "Send me a photo of what you have in mind — use the 📎 button, drop the picture into the "
    "chat or paste it — and I'll find the most similar items we have. You can add a caption "
    'such as "under 40" or "in blue, size M".'
)
VISION_DOWN = (
    "Sorry, photo search is briefly unavailable. Meanwhile, tell me in words what you're "
    'looking for (for example "blue linen shirt under 60") and I\'ll search the shop by text.'
)
NOT_INDEXED = (
    "Sorry, photo search isn't ready yet. Tell me in words what you're looking for and I'll "
    "search the shop by text."
)
UNREADABLE = (
    "I couldn't read that picture. Please send a photo as a JPEG, PNG or WebP file (under 10 MB)."
)
PHOTO_GONE = "I can't find that photo any more — could you send it again?"


@dataclass
class Reply:
    text: str
    cards: list[ProductCard] = field(default_factory=list)
    buttons: list[Button] = field(default_factory=list)

    def send(self, dispatcher: CollectingDispatcher) -> None:
        dispatcher.utter_message(
            text=self.text,
            buttons=[b.to_json() for b in self.buttons],
            json_message={"cards": [c.to_json() for c in self.cards]} if self.cards else None,
        )


def _offset(args: dict[str, Any]) -> int:
    try:
        return max(0, min(int(args.get("offset", 0)), 500))
    except (TypeError, ValueError):
        return 0


def _payload(intent: str, **args: Any) -> str:
    return f"/{intent}{json.dumps(args, separators=(', ', ': '))}"


def similar_payload(product_id: int, cheaper: bool = False, offset: int = 0) -> str:
    args: dict[str, Any] = {"product_id": product_id}
    if cheaper:
        args["cheaper"] = True
    if offset:
        args["offset"] = offset
    return _payload("similar_items", **args)


def photo_card(product: ProductFacts) -> ProductCard:
    """A product card with the photo-search buttons: more like this, cheaper, details."""
    return replace(
        product.card(),
        buttons=(
            Button("More like this", similar_payload(product.id)),
            Button("Cheaper", similar_payload(product.id, cheaper=True)),
            Button("Details", _payload("product_question", product=product.title)),
        ),
    )


def looks_like_text(name: str) -> str:
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"That looks like {article} {name}."


def _described(constraints: SearchConstraints) -> str:
    described = constraints.describe()
    return f" for {described}" if described else ""


def load_cards(
    session: Session, results: PhotoResults, constraints: SearchConstraints
) -> list[ProductCard]:
    """Cards for the matches, re-checked against the store (stock moves faster than the index)."""
    cards = []
    for match in results.matches:
        product = session.get(Product, match.product_id)
        if product is None:
            continue
        item = facts(session, product)
        if constraints.in_stock and not item.sizes_in_stock:
            continue
        if constraints.size is not None:
            sizes = {s.upper(): units for s, units in item.stock.items()}
            if not any(units > 0 for s, units in sizes.items() if constraints.size in s.split("/")):
                continue
        cards.append(photo_card(item))
    return cards


def compose(
    results: PhotoResults,
    cards: list[ProductCard],
    constraints: SearchConstraints,
    first_page: bool,
    more: str | None,
    subject: str = "",
) -> Reply:
    lines = []
    if first_page and results.looks_like is not None:
        lines.append(looks_like_text(results.looks_like))
    if not cards:
        if first_page:
            lines.append(
                f"Sorry, I couldn't find anything like that{_described(constraints)} in stock "
                "right now. Try another photo, or tell me in words what you're looking for."
            )
        else:
            lines.append("That's everything similar I have in stock.")
        return Reply(" ".join(lines))
    if results.loosened:
        lines.append(
            f"I found nothing{_described(constraints)} in that {results.loosened}… "
            f"these come closest{subject}:"
        )
    elif first_page:
        lines.append(f"Here are the closest matches{_described(constraints)}{subject}:")
    else:
        lines.append("Here are more:")
    buttons = [Button("Show more", more)] if more and results.has_more else []
    return Reply(" ".join(lines), cards, buttons)


def media_of(message: dict[str, Any], args: dict[str, Any]) -> str | None:
    """The stored photo's id: the message's metadata (channels) or a button's arguments."""
    metadata = message.get("metadata") or {}
    for key in ("media", "photo"):
        media = metadata.get(key) if isinstance(metadata, dict) else None
        if isinstance(media, dict) and isinstance(media.get("id"), str):
            return str(media["id"])
    photo = args.get("photo")
    return photo if isinstance(photo, str) and MEDIA_ID_RE.match(photo) else None


def caption_of(message: dict[str, Any], args: dict[str, Any]) -> str:
    metadata = message.get("metadata") or {}
    caption = metadata.get("caption") if isinstance(metadata, dict) else None
    if not isinstance(caption, str):
        caption = args.get("caption")
    if not isinstance(caption, str):
        text = str(message.get("text") or "")
        caption = "" if text.startswith("/") else text
    return caption[:MAX_CAPTION]


class ActionPhotoSearch(Action):
    """The customer sent a photo (or pressed "Show more" under photo results)."""

    def __init__(self, shop: Shop, services: Services) -> None:
        self.shop = shop
        self.services = services

    def name(self) -> str:
        return "action_photo_search"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        message: dict[str, Any] = tracker.latest_message or {}
        args = payload_args(str(message.get("text") or ""))
        media_id = media_of(message, args)
        if media_id is None:
            Reply(ASK_FOR_PHOTO).send(dispatcher)
            return []
        caption = caption_of(message, args)
        reply = await self.answer(media_id, caption, _offset(args))
        reply.send(dispatcher)
        return []

    async def answer(self, media_id: str, caption: str, offset: int = 0) -> Reply:
        constraints = parse_constraints(caption)
        search = self.services.photo_search()
        try:
            results = await search.by_photo(media_id, constraints, offset)
        except VisionUnavailable as error:
            log.warning("photo search: %s", error)
            return await self._text_instead(VISION_DOWN, caption)
        except PhotoIndexMissing as error:
            log.error("photo search: %s", error)
            return await self._text_instead(NOT_INDEXED, caption)
        except ImageRejected:
            return Reply(UNREADABLE)
        except PhotoNotFound:
            return Reply(PHOTO_GONE)
        cards = await self.shop.transaction(lambda s: load_cards(s, results, constraints))
        more = _payload("photo_search", photo=media_id, offset=offset + PAGE, caption=caption)
        return compose(results, cards, constraints, offset == 0, more)

    async def _text_instead(self, apology: str, caption: str) -> Reply:
        """The apology; with a caption worth searching for, the text search's cards too."""
        if not content_words(caption):
            return Reply(apology)
        found = await self.shop.transaction(lambda s: search_answer(s, caption))
        if not found.cards:
            return Reply(apology)
        return Reply(f"{apology}\n{found.text}", found.cards)


class ActionSimilarItems(Action):
    """Image neighbours of a product: a card's "More like this" / "Cheaper" / "Similar items"."""

    def __init__(self, shop: Shop, services: Services) -> None:
        self.shop = shop
        self.services = services

    def name(self) -> str:
        return "action_similar_items"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        message: dict[str, Any] = tracker.latest_message or {}
        text = str(message.get("text") or "")
        args = payload_args(text)
        product_id = args.get("product_id")
        phrase = None if text.startswith("/") else text
        current = tracker.get_slot("product") if "product" in tracker.slots else None
        named = [str(v) for v in tracker.get_latest_entity_values("product")]
        sender = tracker.sender_id

        def find(session: Session) -> ProductFacts | None:
            record_card_click(session, sender, text)  # a card's button: remember the click
            return _find_product(session, product_id, named[0] if named else current)

        product = await self.shop.transaction(find)
        if product is None:
            Reply(
                "Which product should I find similar items for? Tell me its name, or press "
                '"Similar items" on a product card.'
            ).send(dispatcher)
            return []
        cheaper = args.get("cheaper") is True or bool(
            phrase and re.search(r"\bcheaper\b", phrase, re.I)
        )
        constraints = parse_constraints(phrase or "")
        reply = await self.answer(product, constraints, cheaper, _offset(args))
        reply.send(dispatcher)
        return [SlotSet("product", product.title)] if "product" in tracker.slots else []

    async def answer(
        self, product: ProductFacts, constraints: SearchConstraints, cheaper: bool, offset: int
    ) -> Reply:
        search = self.services.photo_search()
        try:
            results = await search.similar_to(
                product.sku,
                constraints,
                cheaper_than=Decimal(product.price) if cheaper else None,
                offset=offset,
            )
        except ProductNotIndexed:
            return Reply(f"Sorry, I have no photo of the {product.title} to compare with.")
        except PhotoIndexMissing as error:
            log.error("similar items: %s", error)
            return Reply(NOT_INDEXED)
        cards = await self.shop.transaction(lambda s: load_cards(s, results, constraints))
        more = similar_payload(product.id, cheaper, offset + PAGE)
        subject = f" {'cheaper than' if cheaper else 'to'} the {product.title}"
        if not cards and offset == 0:
            what = "cheaper than" if cheaper else "similar to"
            return Reply(f"Sorry, I have nothing in stock {what} the {product.title} right now.")
        return compose(results, cards, constraints, offset == 0, more, subject)


def _find_product(session: Session, product_id: Any, phrase: str | None) -> ProductFacts | None:
    if product_id is not None:
        try:
            found = session.get(Product, int(product_id))
        except (TypeError, ValueError):
            found = None
        return facts(session, found) if found is not None else None
    if phrase:
        product, _ = resolve(session, phrase)
        return product
    return None
