"""The demo shop: complete, coherent around `today`, deterministic, replaceable."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.demo_data import write_demo_shop
from bot.store.conversations import get_or_create_conversation
from bot.store.db import session_scope
from bot.store.errors import DemoDataConflict
from bot.store.models import (
    Conversation,
    Customer,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    ProductVariant,
    ReturnRequest,
    ReturnStatus,
    Shipment,
)
from bot.store.orders import OrderView, list_order_views, return_eligibility
from tests.conftest_store import TODAY

pytest_plugins = ("tests.store_fixtures",)

POSTCODE_FORMATS = {
    "DE": r"\d{5}",
    "NL": r"\d{4} [A-Z]{2}",
    "GB": r"[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}",
    "FR": r"\d{5}",
    "ES": r"\d{5}",
    "US": r"\d{5}",
    "AT": r"\d{4}",
    "IT": r"\d{5}",
}


def test_catalogue_is_big_and_varied(demo_engine: Engine) -> None:
    with session_scope(demo_engine) as session:
        products = session.exec(select(Product)).all()
        variants = session.exec(select(ProductVariant)).all()
    assert len(products) >= 40
    assert len({p.category for p in products}) >= 6
    assert 5 <= len({p.brand for p in products}) <= 6
    assert all(p.currency == "EUR" and p.price > Decimal(0) for p in products)
    for product in products:
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", product.description) if s]
        assert 1 <= len(sentences) <= 3, product.description
        assert product.title and product.material and product.colour
    sizes = Counter(v.product_id for v in variants)
    assert all(p.id is not None and 2 <= sizes[p.id] <= 6 for p in products)
    in_stock = {v.product_id for v in variants if v.stock > 0}
    sold_out = [p for p in products if p.id not in in_stock]
    assert 1 <= len(sold_out) <= 5
    assert any(v.stock == 0 and v.product_id in in_stock for v in variants)
    assert len({v.sku for v in variants}) == len(variants)


def test_customers_live_in_several_countries(demo_engine: Engine) -> None:
    with session_scope(demo_engine) as session:
        customers = session.exec(select(Customer)).all()
    assert len(customers) >= 12
    assert {"DE", "NL", "GB", "FR", "ES", "US"} <= {c.country for c in customers}
    for customer in customers:
        assert re.fullmatch(r"[a-z.]+@example\.com", customer.email)
        assert re.fullmatch(POSTCODE_FORMATS[customer.country], customer.postcode)


def test_orders_cover_every_state_coherently(demo_engine: Engine) -> None:
    views = {view.number: view for view in _views(demo_engine)}
    numbers = sorted(views)
    assert len(numbers) >= 36
    assert numbers == [str(n) for n in range(104501, 104501 + len(numbers))]
    statuses = Counter(view.status for view in views.values())
    assert set(statuses) == set(OrderStatus)
    start_of_today = datetime.combine(TODAY, time(), tzinfo=UTC)
    delivered = [v for v in views.values() if v.status is OrderStatus.delivered]
    windows = {return_eligibility(v, TODAY, 30).eligible for v in delivered}
    assert windows == {True, False}  # recent deliveries and ones outside the window
    for view in views.values():
        assert view.items and view.total == sum(i.unit_price * i.quantity for i in view.items)
        assert view.placed_at < start_of_today
        if view.status is OrderStatus.shipped:
            assert view.carrier and view.tracking_number
            assert view.expected_delivery and date.fromisoformat(view.expected_delivery) > TODAY
        if view.status in (OrderStatus.delivered, OrderStatus.returned):
            assert view.carrier and view.delivered_at and view.delivered_at < start_of_today
        if view.status in (OrderStatus.placed, OrderStatus.paid, OrderStatus.cancelled):
            assert view.carrier is None and view.delivered_at is None
    with session_scope(demo_engine) as session:
        cancelled = session.exec(select(Order).where(Order.status == OrderStatus.cancelled)).all()
        assert all(o.cancelled_at and o.cancelled_at > o.placed_at for o in cancelled)
        _assert_returns(session)


def _assert_returns(session: Session) -> None:
    returned = session.exec(select(Order).where(Order.status == OrderStatus.returned)).all()
    requests = session.exec(select(ReturnRequest)).all()
    by_order = Counter(r.order_id for r in requests)
    for order in returned:
        assert order.id is not None
        items = session.exec(select(OrderItem).where(OrderItem.order_id == order.id)).all()
        assert by_order[order.id] == len(items)
    assert any(r.status is ReturnStatus.requested for r in requests)  # an open return exists
    numbers = sorted(r.number for r in requests)
    assert numbers == [f"RT-{n:06d}" for n in range(1, len(numbers) + 1)]
    now = datetime.combine(TODAY, time(), tzinfo=UTC)
    assert all(r.created_at < now for r in requests)


def _views(engine: Engine) -> list[OrderView]:
    with session_scope(engine) as session:
        return list_order_views(session)


def _snapshot(engine: Engine) -> tuple[Sequence[tuple[object, ...]], ...]:
    """Everything the demo wrote, without database ids (PostgreSQL sequences move on)."""
    with session_scope(engine) as session:
        products = [
            (p.sku, p.title, p.description, p.category, p.brand, p.material, p.colour, p.price)
            for p in session.exec(select(Product).order_by(col(Product.sku)))
        ]
        stock = [
            (v.sku, v.size, v.stock)
            for v in session.exec(select(ProductVariant).order_by(col(ProductVariant.sku)))
        ]
        customers = [
            (c.email, c.first_name, c.last_name, c.postcode, c.country)
            for c in session.exec(select(Customer).order_by(col(Customer.email)))
        ]
        orders = [
            (o.number, o.status, o.email, o.shipping_name, o.shipping_postcode, o.total,
             o.placed_at, o.paid_at, o.shipped_at, o.delivered_at, o.cancelled_at)
            for o in session.exec(select(Order).order_by(col(Order.number)))
        ]  # fmt: skip
        shipments = sorted(
            (s.carrier, s.tracking_number, s.shipped_at, s.expected_delivery, s.delivered_at)
            for s in session.exec(select(Shipment))
        )
        returns = [
            (r.number, r.reason, r.status, r.created_at)
            for r in session.exec(select(ReturnRequest).order_by(col(ReturnRequest.number)))
        ]
        items = [
            (i.title, i.size, i.quantity, i.unit_price)
            for v in list_order_views(session)
            for i in v.items
        ]
    return products, stock, customers, orders, shipments, returns, items


def test_same_day_gives_the_same_shop_and_rewriting_replaces_it(demo_engine: Engine) -> None:
    first = _snapshot(demo_engine)
    with session_scope(demo_engine) as session:
        summary = write_demo_shop(session, TODAY)
    assert _snapshot(demo_engine) == first
    assert summary.orders == len(first[3]) and summary.products == len(first[0])
    assert summary.customers == len(first[2]) and summary.returns == len(first[5])
    assert sum(summary.orders_by_status.values()) == summary.orders
    assert summary.sold_out_products >= 1


def test_another_day_moves_the_dates_only(demo_engine: Engine) -> None:
    first = _views(demo_engine)
    with session_scope(demo_engine) as session:
        write_demo_shop(session, TODAY + timedelta(days=10))
    later = _views(demo_engine)
    assert [(v.number, v.status, v.email, v.total) for v in first] == [
        (v.number, v.status, v.email, v.total) for v in later
    ]
    assert [v.placed_at + timedelta(days=10) for v in first] == [v.placed_at for v in later]


def test_rewrite_keeps_conversations_but_unlinks_them(demo_engine: Engine) -> None:
    with session_scope(demo_engine) as session:
        customer = session.exec(select(Customer)).first()
        assert customer is not None
        conversation = get_or_create_conversation(session, "web", "abc12345")
        conversation.customer_id = customer.id
        session.add(conversation)
    with session_scope(demo_engine) as session:
        write_demo_shop(session, TODAY)
    with session_scope(demo_engine) as session:
        kept = session.get(Conversation, "web:abc12345")
        assert kept is not None and kept.customer_id is None


def test_refuses_to_overwrite_data_that_is_not_the_demo(demo_engine: Engine) -> None:
    with session_scope(demo_engine) as session:
        session.add(
            Product(
                sku="REAL-1", title="A real product", description="Ours.", category="shirts",
                brand="Real", material="cotton", colour="red", price=Decimal("10.00"),
            )
        )  # fmt: skip
    with pytest.raises(DemoDataConflict, match="1 products"), session_scope(demo_engine) as s:
        write_demo_shop(s, TODAY)
    with session_scope(demo_engine) as session:
        assert session.exec(select(Product).where(Product.sku == "REAL-1")).first()
