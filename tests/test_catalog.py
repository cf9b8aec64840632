"""Finding products by what customers call them, and answering product questions from the store."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from actions.products import answer, aspect_of, search_answer
from bot.catalog import requested_size, resolve
from bot.search_filters import parse_constraints
from bot.store.db import session_scope

pytest_plugins = ("tests.store_fixtures",)


@pytest.fixture
def demo(demo_engine: Engine) -> Engine:
    return demo_engine


@pytest.mark.parametrize(
    ("phrase", "title"),
    [
        ("linen shirt", "Linen Camp-Collar Shirt"),
        ("the oxford shirt", "Oxford Button-Down Shirt"),
        ("trail runners", "Trail Running Shoes"),
        ("denim jacket", "Denim Trucker Jacket"),
        ("merino jumper", "Merino Crew Jumper"),
        ("slim jeans", "Slim Stretch Jeans"),
        ("tote bag", "Pebbled Leather Tote"),
        ("is the linen shirt available in M", "Linen Camp-Collar Shirt"),
    ],
)
def test_products_are_found_by_what_customers_call_them(
    demo: Engine, phrase: str, title: str
) -> None:
    with session_scope(demo) as session:
        product, candidates = resolve(session, phrase)
    assert product is not None and product.title == title and candidates == []


def test_an_ambiguous_name_gives_the_candidates_to_ask_about(demo: Engine) -> None:
    with session_scope(demo) as session:
        product, candidates = resolve(session, "jeans")
        result = answer(session, "how much are the jeans?", [], None)
    assert product is None
    assert len(candidates) >= 2 and all("Jeans" in c.title for c in candidates)
    assert "which one" in result.text and len(result.buttons) == len(result.cards) >= 2


def test_unknown_products_are_not_invented(demo: Engine) -> None:
    with session_scope(demo) as session:
        assert resolve(session, "pizza margherita") == (None, [])
        assert "couldn't find" in answer(session, "do you sell pizza margherita", [], None).text


def test_answers_come_from_the_store(demo: Engine) -> None:
    with session_scope(demo) as session:
        shirt, _ = resolve(session, "linen shirt")
        assert shirt is not None
        material = answer(session, "what is the linen shirt made of?", [], None)
        price = answer(session, "how much is the linen shirt", [], None)
        sold_out = next(size for size, units in shirt.stock.items() if units == 0)
        available = next(size for size, units in shirt.stock.items() if units > 0)
        no = answer(session, f"is the linen shirt available in {sold_out}?", [], None)
        yes = answer(session, f"do you have the linen shirt in {available}", [], None)
    assert shirt.material in material.text
    assert f"{shirt.price:.2f}" in price.text
    assert no.text.startswith("Sorry") and sold_out in no.text
    assert yes.text.startswith("Yes") and available in yes.text
    assert material.cards and material.cards[0].product_id == shirt.id
    assert material.product == shirt.title


def test_follow_up_questions_use_the_product_under_discussion(demo: Engine) -> None:
    with session_scope(demo) as session:
        result = answer(session, "how much is it?", [], "Trail Running Shoes")
    assert "Trail Running Shoes" in result.text and "costs" in result.text


def test_difference_between_two_products(demo: Engine) -> None:
    with session_scope(demo) as session:
        question = "what's the difference between the slim jeans and the selvedge jeans?"
        result = answer(session, question, [], None)
    assert "Slim Stretch Jeans" in result.text and "Straight-Leg Selvedge Jeans" in result.text
    assert len(result.cards) == 2


def test_aspects_and_sizes() -> None:
    assert aspect_of("what is it made of") == "material"
    assert aspect_of("how much are the trail runners") == "price"
    assert aspect_of("is it available in M") == "availability"
    assert aspect_of("difference between X and Y") == "compare"
    assert requested_size("is it in M?", ["S", "M", "L"]) == "M"
    assert requested_size("size 42 please", ["41", "42"]) == "42"
    assert requested_size("is it good", ["S", "M"]) is None


def test_text_search_applies_the_filters(demo: Engine) -> None:
    with session_scope(demo) as session:
        result = search_answer(session, "summer dress under 80")
        jeans = search_answer(session, "blue jeans")
        bag = search_answer(session, "leather bag")
    assert result.text.startswith("Here's what I found") and result.cards
    assert all(float(card.price) <= 80 for card in result.cards)
    assert all("Dress" in card.title for card in result.cards)
    assert jeans.cards and all("Jeans" in card.title for card in jeans.cards)
    assert bag.cards[0].title == "Pebbled Leather Tote"


def test_nothing_matching_loosens_filters_and_says_so(demo: Engine) -> None:
    with session_scope(demo) as session:
        result = search_answer(session, "purple jeans under 20")
    assert "nothing" in result.text and result.cards


def test_parse_constraints() -> None:
    wanted = parse_constraints("red summer dress under 40")
    assert wanted.category == "dresses" and "red" in wanted.colours
    assert wanted.max_price == 40 and wanted.min_price is None
    assert parse_constraints("in blue, size M").size == "M"
    between = parse_constraints("jumper between 50 and 100 euros")
    assert (between.min_price, between.max_price) == (50, 100)
    assert parse_constraints("sneakers over €100").min_price == 100
