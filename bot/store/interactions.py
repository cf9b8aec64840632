"""What customers do with products: views, clicks, add-to-cart and purchases, for recommendations.

Model and repository functions. `models.py` imports this module at its end so that Alembic
sees the table; migration `0003_interactions` creates it. Purchases are read from the orders
themselves (`purchases_from_orders`); the `interaction` table holds what orders do not show
(views and clicks on recommendation cards, cart additions, imported history).
`load_interactions` hands both to `recsys` as arrays (user id = customer id, item id = product
id, both as strings).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Index
from sqlmodel import Field, Session, SQLModel, col, select

from .columns import EnumText, UTCDateTime, utcnow
from .models import Order, OrderItem, OrderStatus, ProductVariant

if TYPE_CHECKING:  # numpy/scipy load only where recommendations are trained
    from recsys import Interactions


class InteractionKind(StrEnum):
    view = "view"
    click = "click"
    cart = "cart"
    purchase = "purchase"


# How much one event says about a customer's taste, relative to a purchase.
DEFAULT_WEIGHTS: dict[InteractionKind, float] = {
    InteractionKind.view: 0.1,
    InteractionKind.click: 0.25,
    InteractionKind.cart: 0.5,
    InteractionKind.purchase: 1.0,
}

# Order items of these orders are purchases; placed (unpaid), cancelled and returned are not.
PURCHASED_STATUSES = (OrderStatus.paid, OrderStatus.shipped, OrderStatus.delivered)


class Interaction(SQLModel, table=True):
    __table_args__ = (
        Index("ix_interaction_customer_created", "customer_id", "created_at"),
        Index("ix_interaction_created_at", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id")
    product_id: int = Field(foreign_key="product.id", index=True)
    kind: InteractionKind = Field(sa_type=EnumText(InteractionKind, 16))
    weight: float
    created_at: datetime = Field(sa_type=UTCDateTime(), default_factory=utcnow)
    source: str = Field(max_length=32)  # "chat", "web", "telegram", "campaign", "import"...


def record_interaction(
    session: Session,
    customer_id: int,
    product_id: int,
    kind: InteractionKind | str,
    *,
    source: str = "chat",
    weight: float | None = None,
    at: datetime | None = None,
) -> Interaction:
    """Store one event (weight defaults to the kind's `DEFAULT_WEIGHTS`); not committed."""
    kind = InteractionKind(kind)
    event = Interaction(
        customer_id=customer_id,
        product_id=product_id,
        kind=kind,
        weight=DEFAULT_WEIGHTS[kind] if weight is None else weight,
        created_at=at or utcnow(),
        source=source,
    )
    session.add(event)
    session.flush()
    return event


def interactions_since(session: Session, since: datetime | None = None) -> list[Interaction]:
    """Stored events from `since` on (all when None), oldest first."""
    query = select(Interaction)
    if since is not None:
        query = query.where(col(Interaction.created_at) >= since)
    return list(session.exec(query.order_by(col(Interaction.created_at), col(Interaction.id))))


@dataclass(frozen=True)
class Purchase:
    customer_id: int
    product_id: int
    order_id: int
    at: datetime  # when the order was placed: one order is one basket


def purchases_from_orders(
    session: Session, since: datetime | None = None, customer_id: int | None = None
) -> list[Purchase]:
    """Products in paid, shipped or delivered orders of registered customers, oldest first."""
    query = (
        select(Order.customer_id, ProductVariant.product_id, Order.id, Order.placed_at)
        .join(OrderItem, col(OrderItem.order_id) == col(Order.id))
        .join(ProductVariant, col(ProductVariant.id) == col(OrderItem.variant_id))
        .where(col(Order.status).in_(PURCHASED_STATUSES), col(Order.customer_id).is_not(None))
        .distinct()
        .order_by(col(Order.placed_at), col(Order.id))
    )
    if since is not None:
        query = query.where(col(Order.placed_at) >= since)
    if customer_id is not None:
        query = query.where(col(Order.customer_id) == customer_id)
    return [
        Purchase(int(customer), int(product), int(order), at)
        for customer, product, order, at in session.exec(query)
        if customer is not None and order is not None
    ]


def ordered_products(session: Session, customer_id: int) -> list[tuple[int, datetime]]:
    """(product id, placed at) of every product in the customer's orders that were not
    cancelled, newest first: what recommendations must not offer again."""
    query = (
        select(ProductVariant.product_id, Order.placed_at)
        .join(OrderItem, col(OrderItem.variant_id) == col(ProductVariant.id))
        .join(Order, col(Order.id) == col(OrderItem.order_id))
        .where(col(Order.customer_id) == customer_id, col(Order.status) != OrderStatus.cancelled)
        .order_by(col(Order.placed_at).desc())
    )
    return [(int(product), at) for product, at in session.exec(query)]


def load_interactions(session: Session, since: datetime | None = None) -> Interactions:
    """Order purchases plus stored events as `recsys.Interactions` (ids as strings)."""
    from recsys import Interactions

    users: list[str] = []
    items: list[str] = []
    times: list[int] = []
    weights: list[float] = []
    for purchase in purchases_from_orders(session, since):
        users.append(str(purchase.customer_id))
        items.append(str(purchase.product_id))
        times.append(int(purchase.at.timestamp()))
        weights.append(DEFAULT_WEIGHTS[InteractionKind.purchase])
    for event in interactions_since(session, since):
        users.append(str(event.customer_id))
        items.append(str(event.product_id))
        times.append(int(event.created_at.timestamp()))
        weights.append(float(event.weight))
    return Interactions.from_rows(users, items, times, weights)
