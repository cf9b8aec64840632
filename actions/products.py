"""Product questions: "is the linen shirt available in M?", "what is the oxford shirt made of?",
"how much are the trail runners?", "difference between the slim and the selvedge jeans"."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlmodel import Session

from actions.clicks import record_card_click
from bot.catalog import ProductFacts, money, requested_size, resolve, search_products
from bot.channels.base import Button, ProductCard
from bot.search_filters import SearchConstraints, parse_constraints
from bot.shop import Shop

COMPARE_RE = re.compile(r"\b(?:difference|differ|compare|versus|vs\.?|better)\b", re.IGNORECASE)
SPLIT_RE = re.compile(r"\s+(?:and|or|vs\.?|versus)\s+|,", re.IGNORECASE)


@dataclass
class Answer:
    text: str
    cards: list[ProductCard] = field(default_factory=list)
    buttons: list[Button] = field(default_factory=list)
    product: str | None = None  # the product now under discussion


def aspect_of(text: str) -> str:
    lowered = text.lower()
    if COMPARE_RE.search(lowered):
        return "compare"
    if re.search(r"\b(made of|material|fabric|wool|cotton|what is it made)\b", lowered):
        return "material"
    if re.search(r"\b(how much|price|cost|expensive|cheap)\b", lowered):
        return "price"
    if re.search(r"\b(available|in stock|stock|have .* in|size|sizes|left)\b", lowered):
        return "availability"
    return "overview"


def availability(product: ProductFacts, text: str) -> str:
    size = requested_size(text, list(product.stock))
    in_stock = product.sizes_in_stock
    if size is not None:
        units = product.stock[size]
        if units > 0:
            few = f" (only {units} left)" if units <= 3 else ""
            return f"Yes — the {product.title} is in stock in {size}{few}."
        others = f" It's available in {', '.join(in_stock)}." if in_stock else ""
        return f"Sorry, the {product.title} is sold out in {size}.{others}"
    if not in_stock:
        return f"Sorry, the {product.title} is sold out in every size at the moment."
    return f"The {product.title} is in stock in {', '.join(in_stock)}."


def describe(product: ProductFacts, aspect: str, text: str) -> str:
    if aspect == "material":
        return f"The {product.title} is made of {product.material}. {product.description}"
    if aspect == "price":
        return f"The {product.title} costs {money(product.price, product.currency)}."
    if aspect == "availability":
        return availability(product, text)
    return (
        f"{product.title} by {product.brand} ({product.colour}, {product.material}), "
        f"{money(product.price, product.currency)}. {product.description} "
        f"{availability(product, text)}"
    )


def compare(first: ProductFacts, second: ProductFacts) -> str:
    def line(p: ProductFacts) -> str:
        sizes = ", ".join(p.sizes_in_stock) or "sold out"
        return (
            f"• {p.title}: {money(p.price, p.currency)}, {p.material}, {p.colour}; "
            f"in stock: {sizes}. {p.description}"
        )

    return f"Here's how they compare:\n{line(first)}\n{line(second)}"


def ask_which(candidates: list[ProductFacts], text: str) -> Answer:
    return Answer(
        text="I have a few that could match — which one do you mean?",
        cards=[c.card() for c in candidates],
        buttons=[
            Button(c.title, f'/product_question{{"product": "{c.title}"}}') for c in candidates
        ],
    )


def answer(session: Session, text: str, mentioned: list[str], current: str | None) -> Answer:
    """Resolve the product(s) the customer means and answer from the store's attributes."""
    aspect = aspect_of(text)
    phrases = mentioned or ([current] if current else [])
    if aspect == "compare":
        if len(phrases) < 2:
            phrases = [p for p in SPLIT_RE.split(re.sub(r".*\bbetween\b", "", text)) if p.strip()]
        resolved = [resolve(session, phrase) for phrase in phrases[:2]]
        products = [one for one, _ in resolved if one is not None]
        if len(products) == 2 and products[0].id != products[1].id:
            return Answer(compare(*products), cards=[p.card() for p in products])
    if not phrases:
        phrases = [text]
    product, candidates = resolve(session, phrases[0])
    if product is None and candidates:
        return ask_which(candidates, text)
    if product is None:
        return Answer(
            "Sorry, I couldn't find that product. Could you tell me its name as it appears in "
            'the shop (for example "linen camp-collar shirt")?'
        )
    return Answer(describe(product, aspect, text), cards=[product.card()], product=product.title)


class ActionProductQuestion(Action):
    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    def name(self) -> str:
        return "action_product_question"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        message: dict[str, Any] = tracker.latest_message or {}
        text = str(message.get("text") or "")
        mentioned = [str(v) for v in tracker.get_latest_entity_values("product")]
        current = tracker.get_slot("product")
        sender = tracker.sender_id

        def work(session: Session) -> Answer:
            record_card_click(session, sender, text)  # a card's button: remember the click
            return answer(session, text, mentioned, current)

        result = await self.shop.transaction(work)
        dispatcher.utter_message(
            text=result.text,
            buttons=[b.to_json() for b in result.buttons],
            json_message={"cards": [c.to_json() for c in result.cards]} if result.cards else None,
        )
        return [SlotSet("product", result.product)] if result.product else []


def search_answer(session: Session, text: str) -> Answer:
    """Cards for "red summer dress under 40"; when nothing fits, loosen one filter at a time
    and say which."""
    wanted = parse_constraints(text)
    attempts = [
        (wanted, None),
        (replace(wanted, colours=()), "in that colour"),
        (replace(wanted, colours=(), min_price=None, max_price=None), "in that colour and price"),
    ]
    for constraints, dropped in attempts:
        found = search_products(session, constraints, limit=5)
        if found:
            if dropped is None:
                head = f"Here's what I found{_for(wanted)}:"
            else:
                head = f"I found nothing{_for(wanted)} {dropped}… these come closest:"
            return Answer(head, cards=[p.card() for p in found])
    return Answer(
        "Sorry, I couldn't find anything like that in the shop. Try other words, or ask me "
        "about a category (dresses, shirts, trousers, jackets, shoes, knitwear, accessories)."
    )


def _for(constraints: SearchConstraints) -> str:
    described = constraints.describe()
    return f" for {described}" if described else ""


class ActionProductSearch(Action):
    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    def name(self) -> str:
        return "action_product_search"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        text = str((tracker.latest_message or {}).get("text") or "")
        result = await self.shop.transaction(lambda s: search_answer(s, text))
        dispatcher.utter_message(
            text=result.text,
            json_message={"cards": [c.to_json() for c in result.cards]} if result.cards else None,
        )
        return []
