"""Recommendations in chat: "recommend something", "what goes with the denim jacket?",
"anything similar but cheaper?" — product cards with a one-line reason each."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlmodel import Session, col, select

from actions.clicks import tag_recommended
from bot.catalog import ProductFacts, facts, resolve
from bot.channels.base import Button, ProductCard
from bot.recommendations import Filters, Recommendations, Suggestion
from bot.search_filters import parse_constraints
from bot.services import Services
from bot.shop import Shop
from bot.store.conversations import linked_customer_id
from bot.store.models import Product

log = logging.getLogger(__name__)

GOES_WITH_RE = re.compile(
    r"\b(goes? with|go with|wear with|match(?:es)?|pair with|to complete|complete the look)\b",
    re.IGNORECASE,
)
SIMILAR_RE = re.compile(r"\b(similar|alike|like (?:this|that|it)|same kind)\b", re.IGNORECASE)
CHEAPER_RE = re.compile(r"\b(cheaper|less expensive|lower price|budget)\b", re.IGNORECASE)
PRODUCT_AFTER_RE = re.compile(
    r"\b(?:goes? with|go with|wear with|match(?:es)?|pair with|similar to|like)"
    r"\s+(?:the|my|a|an)?\s*(.+?)[?.!]*$",
    re.IGNORECASE,
)
NOTHING = (
    "I couldn't find anything in stock that fits right now. Tell me what you're looking for "
    '(for example "a blue shirt under 40") and I\'ll search the shop.'
)
UNAVAILABLE = (
    "Sorry, suggestions aren't available right now. Tell me what you're looking for "
    '(for example "a blue shirt under 40") and I\'ll search the shop.'
)


@dataclass(frozen=True)
class Request:
    kind: str  # "for_you", "goes_with", "similar"
    cheaper: bool
    phrase: str | None  # the product they named, if any


def read_request(text: str, product_entity: str | None, current: str | None) -> Request:
    cheaper = bool(CHEAPER_RE.search(text))
    named = PRODUCT_AFTER_RE.search(text)
    phrase = product_entity or (named.group(1).strip() if named else None)
    if GOES_WITH_RE.search(text):
        return Request("goes_with", cheaper, phrase or current)
    if SIMILAR_RE.search(text) or cheaper:
        return Request("similar", cheaper, phrase or current)
    return Request("for_you", cheaper, phrase)


def card(product: ProductFacts, reason: str) -> ProductCard:
    base = product.card()
    return ProductCard(
        product_id=base.product_id,
        title=base.title,
        subtitle=f"{reason} · {base.subtitle}",
        price=base.price,
        currency=base.currency,
        image_url=base.image_url,
        buttons=tuple(tag_recommended(b) for b in base.buttons),
    )


def cards_for(session: Session, suggestions: list[Suggestion]) -> list[ProductCard]:
    ids = [s.product_id for s in suggestions]
    products = {
        p.id: p for p in session.exec(select(Product).where(col(Product.id).in_(ids))).all()
    }
    return [
        card(facts(session, products[s.product_id]), s.reason)
        for s in suggestions
        if s.product_id in products
    ]


@dataclass
class Answer:
    text: str
    cards: list[ProductCard]
    product: str | None = None
    buttons: tuple[Button, ...] = ()


def answer(
    session: Session, recs: Recommendations, sender: str, text: str, request: Request
) -> Answer:
    customer = linked_customer_id(session, sender)
    wanted = parse_constraints(text)
    if request.kind != "for_you" and request.phrase:
        product, candidates = resolve(session, request.phrase)
        if product is None and candidates:
            return Answer(
                "Which one do you mean?",
                [c.card() for c in candidates],
                buttons=tuple(
                    Button(c.title, f'/recommend{{"product": "{c.title}"}}') for c in candidates
                ),
            )
        if product is not None:
            if request.kind == "goes_with":
                found = recs.complete([product.id], 3, customer_id=customer, session=session)
                head = f"These go well with the {product.title}:"
            else:
                limit = product.price if request.cheaper else wanted.max_price
                filters = Filters(max_price=limit, max_per_category=None)
                found = recs.similar(product.id, 5, filters, customer_id=customer, session=session)
                if request.cheaper:
                    found = [s for s in found if s.price < product.price]
                adjective = "cheaper" if request.cheaper else "similar"
                head = f"Here are some {adjective} alternatives to the {product.title}:"
            if not found:
                return Answer(NOTHING, [], product.title)
            return Answer(head, cards_for(session, found), product.title)
    filters = Filters(
        category=wanted.category, min_price=wanted.min_price, max_price=wanted.max_price
    )
    found = recs.recommend(customer, 5, filters, session=session)
    if not found:
        return Answer(NOTHING, [])
    head = "Picked for you:" if customer is not None else "Popular in the shop right now:"
    return Answer(head, cards_for(session, found))


class ActionRecommend(Action):
    NAME = "action_recommend"

    def __init__(self, shop: Shop, services: Services) -> None:
        self.shop = shop
        self.services = services

    def name(self) -> str:
        return self.NAME

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        message: dict[str, Any] = tracker.latest_message or {}
        text = str(message.get("text") or "")
        entity = next(iter(tracker.get_latest_entity_values("product")), None)
        request = read_request(text, entity, tracker.get_slot("product"))
        try:
            recs = await asyncio.to_thread(self.services.recommendations)
        except Exception:
            log.exception("recommendations unavailable")
            dispatcher.utter_message(text=UNAVAILABLE)
            return []
        sender = tracker.sender_id
        result = await self.shop.transaction(lambda s: answer(s, recs, sender, text, request))
        dispatcher.utter_message(
            text=result.text,
            buttons=[b.to_json() for b in result.buttons],
            json_message={"cards": [c.to_json() for c in result.cards]} if result.cards else None,
        )
        return [SlotSet("product", result.product)] if result.product else []


def _order_products(session: Session, order_number: str) -> list[int]:
    from bot.store.models import Order, OrderItem, ProductVariant

    query = (
        select(ProductVariant.product_id)
        .join(OrderItem, col(OrderItem.variant_id) == col(ProductVariant.id))
        .join(Order, col(Order.id) == col(OrderItem.order_id))
        .where(Order.number == order_number)
    )
    return sorted(set(session.exec(query).all()))


async def one_suggestion(
    shop: Shop, services: Services, sender: str, order_number: str
) -> ProductCard | None:
    """After an order-status answer: one product that goes with that order, or nothing.

    Only when the recommender is already loaded; a suggestion never delays the answer."""
    if not services.recommendations_ready():
        return None
    recs = services.recommendations()

    def work(session: Session) -> ProductCard | None:
        basket = _order_products(session, order_number)
        customer = linked_customer_id(session, sender)
        found = recs.complete(basket, 1, customer_id=customer, session=session) if basket else []
        cards = cards_for(session, found)
        return cards[0] if cards else None

    try:
        return await shop.transaction(work)
    except Exception:  # a suggestion is a nicety; the order answer stands without it
        log.exception("no suggestion after the order status")
        return None
