"""What the ticket page shows besides the transcript: orders, products, the bot's understanding."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp
from sqlmodel import Session, col, or_, select

from bot.channels.base import ProductCard
from bot.rasa_client import server_for
from bot.store import orders, support
from bot.store.models import Order, Product, ProductVariant
from bot.store.orders import OrderView

RECENT_ORDERS = 5
PRODUCT_RESULTS = 8
INTENTS_SHOWN = 8


def recent_orders(session: Session, conversation_id: str) -> list[OrderView]:
    """The linked customer's latest orders (by account or by the account's e-mail)."""
    customer = support.customer_of(session, conversation_id)
    if customer is None:
        return []
    stmt = (
        select(Order)
        .where(or_(col(Order.customer_id) == customer.id, col(Order.email) == customer.email))
        .order_by(col(Order.placed_at).desc())
        .limit(RECENT_ORDERS)
    )
    return [orders.order_view(session, order) for order in session.exec(stmt).all()]


def search_products(session: Session, query: str) -> list[tuple[Product, int]]:
    """Products whose title, category, colour or brand contain every word; with total stock.

    A plain store search for now; the vector search replaces it behind the same call later.
    """
    words = [w for w in query.lower().split() if w][:6]
    if not words:
        return []
    stmt = select(Product)
    for word in words:
        pattern = f"%{word}%"
        stmt = stmt.where(
            or_(
                col(Product.title).ilike(pattern),
                col(Product.category).ilike(pattern),
                col(Product.colour).ilike(pattern),
                col(Product.brand).ilike(pattern),
            )
        )
    products = list(session.exec(stmt.order_by(col(Product.title)).limit(PRODUCT_RESULTS)).all())
    stock: dict[int, int] = {}
    if products:
        ids = [p.id for p in products if p.id is not None]
        variants = select(ProductVariant).where(col(ProductVariant.product_id).in_(ids))
        for variant in session.exec(variants).all():
            stock[variant.product_id] = stock.get(variant.product_id, 0) + variant.stock
    return [(p, stock.get(p.id or 0, 0)) for p in products]


def product_card(product: Product, in_stock: int) -> ProductCard:
    assert product.id is not None
    availability = "in stock" if in_stock > 0 else "sold out"
    return ProductCard(
        product_id=product.id,
        title=product.title,
        subtitle=f"{product.colour} · {product.material} · {availability}",
        price=str(product.price),
        currency=product.currency,
        image_url=product.image_path,
    )


def product_by_id(session: Session, product_id: int) -> tuple[Product, int] | None:
    product = session.get(Product, product_id)
    if product is None:
        return None
    variants = select(ProductVariant).where(ProductVariant.product_id == product_id)
    return product, sum(v.stock for v in session.exec(variants).all())


async def understood_intents(
    http: aiohttp.ClientSession, rasa_urls: list[str], conversation_id: str
) -> list[dict[str, Any]] | None:
    """The last user turns as Rasa parsed them (intent, confidence), newest first; None when
    Rasa cannot be asked. Read from Rasa's tracker over its HTTP API."""
    base = server_for(conversation_id, rasa_urls)
    url = f"{base}/conversations/{conversation_id}/tracker"
    try:
        async with http.get(url, params={"include_events": "ALL"}) as response:
            if response.status != 200:
                return None
            tracker = await response.json()
    except (aiohttp.ClientError, TimeoutError):
        return None
    turns = []
    for event in reversed(tracker.get("events") or []):
        if event.get("event") != "user":
            continue
        intent = (event.get("parse_data") or {}).get("intent") or {}
        if not intent.get("name") or intent.get("name") == "session_start":
            continue
        stamp = event.get("timestamp")
        turns.append(
            {
                "text": event.get("text") or "",
                "intent": intent.get("name"),
                "confidence": float(intent.get("confidence") or 0.0),
                "at": datetime.fromtimestamp(stamp).astimezone() if stamp else None,
            }
        )
        if len(turns) >= INTENTS_SHOWN:
            break
    return turns
