"""Serving on the demo shop: business rules, reasons, cold starts, similar and complete."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from bot.recommendations import Filters, Recommendations, train
from bot.store.db import session_scope
from bot.store.interactions import (
    InteractionKind,
    interactions_since,
    load_interactions,
    ordered_products,
    purchases_from_orders,
    record_interaction,
)
from bot.store.models import Customer, Order, OrderStatus, Product, ProductVariant
from recsys import Precomputed, latest
from tests.conftest_store import NOW

pytest_plugins = ("tests.store_fixtures",)


@pytest.fixture
def shop(demo_engine: Engine, tmp_path: Path) -> Recommendations:
    train(demo_engine, tmp_path, now=NOW)
    return Recommendations.load_or_train(demo_engine, tmp_path)


def customers(engine: Engine) -> list[int]:
    with Session(engine) as session:
        return [c.id for c in session.exec(select(Customer)) if c.id is not None]


def in_stock(engine: Engine) -> set[int]:
    with Session(engine) as session:
        return set(
            session.exec(select(ProductVariant.product_id).where(col(ProductVariant.stock) > 0))
        )


def test_purchases_come_from_paid_shipped_delivered_orders(demo_engine: Engine) -> None:
    with Session(demo_engine) as session:
        purchases = purchases_from_orders(session)
        statuses = {o.id: o.status for o in session.exec(select(Order))}
        loaded = load_interactions(session)
    assert purchases
    assert {statuses[p.order_id] for p in purchases} <= {
        OrderStatus.paid, OrderStatus.shipped, OrderStatus.delivered
    }  # fmt: skip
    assert len(loaded) == len(purchases)
    assert set(loaded.user_ids.tolist()) == {str(p.customer_id) for p in purchases}


def test_recorded_interactions_are_loaded(demo_engine: Engine) -> None:
    with session_scope(demo_engine) as session:
        customer = session.exec(select(Customer)).first()
        product = session.exec(select(Product)).first()
        assert customer and customer.id and product and product.id
        event = record_interaction(session, customer.id, product.id, "click", at=NOW)
        assert event.kind is InteractionKind.click and event.weight == 0.25
    with Session(demo_engine) as session:
        assert [e.id for e in interactions_since(session, NOW - timedelta(minutes=1))] == [event.id]
        assert interactions_since(session, NOW + timedelta(minutes=1)) == []
        loaded = load_interactions(session)
    assert str(product.id) in loaded.item_ids[loaded.user_ids == str(customer.id)].tolist()


def test_recommend_never_offers_sold_out_or_ordered_products(
    shop: Recommendations, demo_engine: Engine
) -> None:
    stocked = in_stock(demo_engine)
    served = 0
    for customer_id in customers(demo_engine):
        with Session(demo_engine) as session:
            ordered = {p for p, _ in ordered_products(session, customer_id)}
        suggestions = shop.recommend(customer_id, n=5)
        assert len(suggestions) == 5
        served += len(suggestions)
        ids = [s.product_id for s in suggestions]
        assert len(set(ids)) == len(ids)
        assert set(ids) <= stocked
        assert not set(ids) & ordered
        assert all(s.reason for s in suggestions)
        categories = [s.category for s in suggestions]
        assert max(categories.count(c) for c in categories) <= 2
    assert served


def test_personal_reasons_mention_the_last_order(
    shop: Recommendations, demo_engine: Engine
) -> None:
    reasons = {s.reason for c in customers(demo_engine) for s in shop.recommend(c, n=5)}
    assert any("last order" in r or "you ordered" in r for r in reasons), reasons


def test_sold_out_after_training_and_new_orders_are_respected(
    shop: Recommendations, demo_engine: Engine
) -> None:
    customer_id = customers(demo_engine)[0]
    first = shop.recommend(customer_id, n=3)
    gone = first[0].product_id
    with session_scope(demo_engine) as session:
        session.exec(
            update(ProductVariant).where(col(ProductVariant.product_id) == gone).values(stock=0)
        )
    shop.invalidate()
    assert gone not in [s.product_id for s in shop.recommend(customer_id, n=5)]

    # An order placed after training: its products are no longer offered.
    bought = shop.recommend(customer_id, n=1)[0].product_id
    with session_scope(demo_engine) as session:
        order = session.exec(
            select(Order).where(
                Order.customer_id == customer_id, Order.status != OrderStatus.cancelled
            )
        ).first()
        variant = session.exec(
            select(ProductVariant).where(ProductVariant.product_id == bought)
        ).first()
        assert order and order.id and variant and variant.id
        from bot.store.models import OrderItem

        session.add(
            OrderItem(
                order_id=order.id, variant_id=variant.id, title="x", size=variant.size,
                quantity=1, unit_price=Decimal("1.00"),
            )
        )  # fmt: skip
    assert bought not in [s.product_id for s in shop.recommend(customer_id, n=5)]


def test_cold_start_customer_gets_popular_items(shop: Recommendations, demo_engine: Engine) -> None:
    with session_scope(demo_engine) as session:
        newcomer = Customer(
            email="new@example.com", first_name="N", last_name="C", postcode="1000", country="BE"
        )
        session.add(newcomer)
        session.flush()
        newcomer_id = newcomer.id
    stocked = in_stock(demo_engine)
    for who in (newcomer_id, None):
        suggestions = shop.recommend(who, n=4)
        assert len(suggestions) == 4
        assert {s.product_id for s in suggestions} <= stocked
        assert all(s.reason.startswith("popular in ") for s in suggestions)


def test_filters_price_and_category(shop: Recommendations, demo_engine: Engine) -> None:
    customer_id = customers(demo_engine)[1]
    cheap = shop.recommend(customer_id, n=5, filters=Filters(max_price=Decimal("40")))
    assert cheap and all(s.price <= Decimal("40") for s in cheap)
    category = cheap[0].category
    only = shop.recommend(
        customer_id, n=3, filters=Filters(category=category, max_per_category=None)
    )
    assert only and all(s.category == category for s in only)


def test_similar_and_cheaper(shop: Recommendations, demo_engine: Engine) -> None:
    with Session(demo_engine) as session:
        products = list(session.exec(select(Product).order_by(col(Product.price).desc())))
    expensive = products[0]
    assert expensive.id is not None
    similar = shop.similar(expensive.id, n=5)
    assert similar and expensive.id not in [s.product_id for s in similar]
    assert all(s.reason for s in similar)
    cheaper = shop.similar(expensive.id, n=5, filters=Filters(max_price=expensive.price))
    assert cheaper and all(s.price <= expensive.price for s in cheaper)
    assert {s.product_id for s in similar} <= in_stock(demo_engine)


def test_complete_the_basket(shop: Recommendations, demo_engine: Engine) -> None:
    with Session(demo_engine) as session:
        jacket = session.exec(select(Product).where(col(Product.title).contains("Jacket"))).first()
        jacket = jacket or session.exec(select(Product)).first()
    assert jacket and jacket.id
    suggestions = shop.complete([jacket.id], n=3)
    assert len(suggestions) == 3
    assert jacket.id not in [s.product_id for s in suggestions]
    assert all(s.reason for s in suggestions)


def test_new_product_is_reached_through_its_content(demo_engine: Engine, tmp_path: Path) -> None:
    with session_scope(demo_engine) as session:
        model = session.exec(select(Product).order_by(col(Product.id))).first()
        assert model
        twin = Product(
            sku="NEW-TWIN", title=model.title + " Edition", description=model.description,
            category=model.category, brand=model.brand, material=model.material,
            colour=model.colour, price=model.price,
        )  # fmt: skip
        session.add(twin)
        session.flush()
        session.add(ProductVariant(product_id=twin.id, sku="NEW-TWIN-M", size="M",
                                   colour=model.colour, stock=5))  # fmt: skip
        twin_id, model_id = twin.id, model.id
    assert twin_id and model_id
    shop = Recommendations.load_or_train(demo_engine, tmp_path)
    artefact = Precomputed.load(latest(tmp_path) or tmp_path)
    assert not artefact.sold[artefact.item_index[str(twin_id)]]
    similar = shop.similar(model_id, n=3)
    assert twin_id in [s.product_id for s in similar]
    reverse = shop.similar(twin_id, n=3)
    assert reverse and model_id in [s.product_id for s in reverse]


def test_reload_switches_to_a_newer_artefact(shop: Recommendations, demo_engine: Engine,
                                            tmp_path: Path) -> None:  # fmt: skip
    assert not shop.reload(tmp_path)
    train(demo_engine, tmp_path, now=NOW + timedelta(days=1))
    assert shop.reload(tmp_path)
    assert shop.recommend(customers(demo_engine)[0], n=2)


def test_calls_inside_a_write_transaction_use_its_session(
    shop: Recommendations, demo_engine: Engine
) -> None:
    """Actions ask inside `shop.transaction`; on SQLite a second session would wait for ever."""
    from actions.recommend import Request, answer

    customer = customers(demo_engine)[0]
    shop.invalidate()  # the facts must be read through the caller's session
    with session_scope(demo_engine) as session:
        picked = shop.recommend(customer, 3, session=session)
        alike = shop.similar(picked[0].product_id, 3, session=session)
        goes = shop.complete([picked[0].product_id], 2, customer_id=customer, session=session)
        result = answer(
            session, shop, "web:nobody", "recommend something", Request("for_you", False, None)
        )
    assert picked and alike and goes
    assert result.cards and result.text == "Popular in the shop right now:"
