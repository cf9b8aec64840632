"""A press on a product card's button is a click: stored as an interaction for the recommender.

Cards from recommendations tag their buttons' payloads with `"via": "rec"`, so the click is
stored with source `recommendation`; other cards' clicks are stored with source `chat`. Only
chats linked to a customer (verified once) leave a trace: an anonymous click has nobody to learn
for.
"""

from __future__ import annotations

import json

from sqlmodel import Session, select

from actions.parsing import PAYLOAD_RE, payload_args
from bot.channels.base import Button
from bot.store import conversations
from bot.store.interactions import InteractionKind, record_interaction
from bot.store.models import Product

CARD_INTENTS = frozenset({"product_question", "product_availability", "similar_items"})
RECOMMENDED = "rec"


def tag_recommended(button: Button) -> Button:
    """The same button with `"via": "rec"` in its payload (payloads without JSON gain one)."""
    match = PAYLOAD_RE.match(button.payload.strip())
    if match is None:
        return button
    args = {**payload_args(button.payload), "via": RECOMMENDED}
    return Button(button.title, f"/{match['intent']}{json.dumps(args, separators=(',', ':'))}")


def _clicked_product(session: Session, args: dict[str, object]) -> Product | None:
    product_id = args.get("product_id")
    if isinstance(product_id, int) and not isinstance(product_id, bool):
        return session.get(Product, product_id)
    title = args.get("product")
    if isinstance(title, str) and title:
        return session.exec(select(Product).where(Product.title == title)).first()
    return None


def record_card_click(session: Session, conversation_id: str, text: str) -> bool:
    """Store a click when `text` is a card button's payload in a customer's chat."""
    match = PAYLOAD_RE.match(text.strip())
    if match is None or match["intent"] not in CARD_INTENTS:
        return False
    customer_id = conversations.linked_customer_id(session, conversation_id)
    if customer_id is None:
        return False
    args = payload_args(text)
    product = _clicked_product(session, args)
    if product is None or product.id is None:
        return False
    source = "recommendation" if args.get("via") == RECOMMENDED else "chat"
    record_interaction(session, customer_id, product.id, InteractionKind.click, source=source)
    return True
