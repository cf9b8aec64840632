"""Clicks on product cards flow back as interactions for the next recommender training."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import select

from actions.clicks import record_card_click, tag_recommended
from actions.parsing import payload_args
from bot.channels.base import Button
from bot.store import conversations
from bot.store.db import session_scope
from bot.store.interactions import Interaction, InteractionKind
from bot.store.models import Customer, Product

pytest_plugins = ("tests.store_fixtures",)

SENDER = "web:click-test-session"


def _setup(engine: Engine, linked: bool) -> tuple[int, Product]:
    with session_scope(engine) as session:
        customer = session.exec(select(Customer)).first()
        product = session.exec(select(Product)).first()
        assert customer is not None and customer.id is not None and product is not None
        conversations.get_or_create_conversation(session, "web", "click-test-session")
        if linked:
            conversations.link_customer(session, SENDER, customer.id)
        session.expunge(product)
        return customer.id, product


def _clicks(engine: Engine) -> list[Interaction]:
    with session_scope(engine) as session:
        found = list(session.exec(select(Interaction)))
        for row in found:
            session.expunge(row)
        return found


def test_tagging_keeps_the_payload_and_marks_the_source() -> None:
    tagged = tag_recommended(Button("Details", '/product_question{"product": "Linen Shirt"}'))
    assert tagged.title == "Details"
    assert payload_args(tagged.payload) == {"product": "Linen Shirt", "via": "rec"}
    assert tag_recommended(Button("Yes", "/affirm")).payload == '/affirm{"via":"rec"}'
    assert tag_recommended(Button("Site", "https://example.com")).payload == "https://example.com"


def test_a_recommended_card_click_is_stored_for_the_linked_customer(demo_engine: Engine) -> None:
    customer_id, product = _setup(demo_engine, linked=True)
    button = tag_recommended(
        Button("Details", f'/product_question{{"product": "{product.title}"}}')
    )
    with session_scope(demo_engine) as session:
        assert record_card_click(session, SENDER, button.payload)
        assert record_card_click(session, SENDER, f'/similar_items{{"product_id": {product.id}}}')
    clicks = _clicks(demo_engine)
    assert [(c.customer_id, c.product_id, c.kind, c.source) for c in clicks] == [
        (customer_id, product.id, InteractionKind.click, "recommendation"),
        (customer_id, product.id, InteractionKind.click, "chat"),
    ]


def test_nothing_is_stored_without_a_customer_or_a_known_product(demo_engine: Engine) -> None:
    _, product = _setup(demo_engine, linked=False)
    with session_scope(demo_engine) as session:
        assert not record_card_click(
            session, SENDER, f'/product_question{{"product": "{product.title}"}}'
        )
    _setup(demo_engine, linked=True)
    with session_scope(demo_engine) as session:
        assert not record_card_click(
            session, SENDER, '/product_question{"product": "No Such Thing"}'
        )
        assert not record_card_click(session, SENDER, "/similar_items{broken json")
        assert not record_card_click(session, SENDER, "/greet")
        assert not record_card_click(session, SENDER, "is the linen shirt available in M?")
    assert _clicks(demo_engine) == []
