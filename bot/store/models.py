"""The shop's tables (sqlmodel on SQLAlchemy 2).

Times are aware UTC datetimes, money is `Decimal` with two places, statuses are str enums
stored as their plain values. The Alembic migrations in `migrations/versions/` create exactly
these tables; `tests/test_store_schema.py` checks that the two agree.
"""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .columns import EnumText, Money, UTCDateTime, utcnow

# Deterministic constraint names, so later migrations can address them on both backends.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class OrderStatus(StrEnum):
    placed = "placed"
    paid = "paid"
    shipped = "shipped"
    delivered = "delivered"
    cancelled = "cancelled"
    returned = "returned"


class ReturnStatus(StrEnum):
    requested = "requested"  # customer asked; parcel not back yet
    received = "received"  # parcel is back at the warehouse
    refunded = "refunded"  # money sent back: the item is returned
    rejected = "rejected"  # not accepted; the item may be returned again


OPEN_RETURN_STATUSES = frozenset({ReturnStatus.requested, ReturnStatus.received})


class Direction(StrEnum):
    inbound = "in"
    outbound = "out"


class MessageStatus(StrEnum):
    received = "received"  # inbound, stored, not yet answered
    handled = "handled"  # inbound, the bot (or staff) has dealt with it
    pending = "pending"  # outbound, waiting for the channel to accept it
    delivered = "delivered"  # outbound, the channel accepted it


def _utc(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime(), **kwargs)


class Customer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)  # stored lower-case
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    postcode: str = Field(max_length=20)
    country: str = Field(max_length=2)  # ISO 3166-1 alpha-2
    created_at: datetime = _utc(default_factory=utcnow)


class ChannelIdentity(SQLModel, table=True):
    """Who someone is on a channel (Telegram user id, web session); linked once verified."""

    __tablename__ = "channel_identity"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    external_id: str = Field(max_length=128)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    created_at: datetime = _utc(default_factory=utcnow)
    unreachable_at: datetime | None = _utc(default=None)  # they blocked the bot


class Product(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=32, unique=True)
    title: str = Field(max_length=200)
    description: str = Field(sa_type=Text)
    category: str = Field(max_length=50, index=True)
    brand: str = Field(max_length=100)
    material: str = Field(max_length=100)
    colour: str = Field(max_length=50)
    price: Decimal = Field(sa_type=Money())
    currency: str = Field(default="EUR", max_length=3)
    image_path: str | None = Field(default=None, max_length=500)


class ProductVariant(SQLModel, table=True):
    __tablename__ = "product_variant"
    __table_args__ = (CheckConstraint("stock >= 0", name="stock_not_negative"),)

    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="product.id", index=True)
    sku: str = Field(max_length=48, unique=True)
    size: str = Field(max_length=20)
    colour: str = Field(max_length=50)
    stock: int = Field(default=0)


class Order(SQLModel, table=True):
    __tablename__ = "shop_order"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=6, unique=True)  # six digits, e.g. "104522"
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    status: OrderStatus = Field(sa_type=EnumText(OrderStatus), index=True)
    email: str = Field(max_length=254)  # as given at checkout (guest orders have no customer)
    shipping_name: str = Field(max_length=200)
    shipping_line1: str = Field(max_length=200)
    shipping_line2: str | None = Field(default=None, max_length=200)
    shipping_city: str = Field(max_length=100)
    shipping_postcode: str = Field(max_length=20)
    shipping_country: str = Field(max_length=2)
    total: Decimal = Field(sa_type=Money())
    currency: str = Field(default="EUR", max_length=3)
    placed_at: datetime = _utc()
    paid_at: datetime | None = _utc(default=None)
    # Shipment rows hold the carrier details; these two mirror the status change so the
    # return window can be judged from the order alone.
    shipped_at: datetime | None = _utc(default=None)
    delivered_at: datetime | None = _utc(default=None)
    cancelled_at: datetime | None = _utc(default=None)
    updated_at: datetime = _utc(default_factory=utcnow)


class OrderItem(SQLModel, table=True):
    __tablename__ = "order_item"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="shop_order.id", index=True)
    variant_id: int = Field(foreign_key="product_variant.id", index=True)
    title: str = Field(max_length=200)  # snapshot: the catalogue may change later
    size: str = Field(max_length=20)
    quantity: int
    unit_price: Decimal = Field(sa_type=Money())


class Shipment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="shop_order.id", index=True)
    carrier: str = Field(max_length=50)
    tracking_number: str = Field(max_length=64)
    shipped_at: datetime = _utc()
    expected_delivery: date | None = None
    delivered_at: datetime | None = _utc(default=None)


class ReturnRequest(SQLModel, table=True):
    __tablename__ = "return_request"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=16, unique=True)  # "RT-000123"
    order_id: int = Field(foreign_key="shop_order.id", index=True)
    # None: the whole order is being returned.
    order_item_id: int | None = Field(default=None, foreign_key="order_item.id", index=True)
    reason: str = Field(max_length=500)
    status: ReturnStatus = Field(sa_type=EnumText(ReturnStatus))
    created_at: datetime = _utc(default_factory=utcnow)


class Conversation(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: str = Field(primary_key=True, max_length=200)  # the Rasa sender id
    channel: str = Field(max_length=32)
    external_id: str = Field(max_length=128)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    created_at: datetime = _utc(default_factory=utcnow)


class Message(SQLModel, table=True):
    """One inbox (direction `in`) or outbox (direction `out`) entry."""

    __table_args__ = (
        UniqueConstraint("conversation_id", "client_message_id"),
        Index("ix_message_conversation_created", "conversation_id", "created_at"),
        Index("ix_message_direction_status", "direction", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversation.id", max_length=200)
    direction: Direction = Field(sa_type=EnumText(Direction, 3))
    client_message_id: str | None = Field(default=None, max_length=128)
    text: str | None = Field(default=None, sa_type=Text)
    payload: str | None = Field(default=None, sa_type=Text)
    body: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # outbound reply object
    # `metadata` is reserved on declarative classes, hence the attribute name.
    meta: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JSON, nullable=False)
    )
    status: MessageStatus = Field(sa_type=EnumText(MessageStatus))
    attempts: int = Field(default=0)
    reply_to: int | None = Field(default=None, foreign_key="message.id", index=True)
    created_at: datetime = _utc(default_factory=utcnow)
    delivered_at: datetime | None = _utc(default=None)


class VerificationAttempt(SQLModel, table=True):
    """An order-ownership check; failures feed the lockout. No FK: any sender id may try."""

    __tablename__ = "verification_attempt"
    __table_args__ = (
        Index("ix_verification_attempt_conversation_created", "conversation_id", "created_at"),
        Index("ix_verification_attempt_order_created", "order_number", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(max_length=200)
    order_number: str = Field(max_length=64)
    success: bool
    created_at: datetime = _utc(default_factory=utcnow)


from . import campaigns as campaigns  # noqa: E402  (its tables join this metadata)
from . import channel_state as channel_state  # noqa: E402  (its tables join this metadata)
from . import interactions as interactions  # noqa: E402  (its table joins this metadata)
from . import support as support  # noqa: E402  (its tables join this metadata)
