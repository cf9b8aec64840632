"""What a campaign says: variants with placeholders, product cards and tracked link buttons.

Every campaign message ends with an "Unsubscribe" button (the chat's own unsubscribe intent,
so it works the same as typing it). Link buttons point at `/r/<token>`: the app records the
click on the delivery row and redirects to the marketer's address; the token is signed, so
nobody can forge clicks for other deliveries.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlmodel import Session, col, select

from ..catalog import facts
from ..channels.base import Button, ProductCard, Reply
from ..recommendations import Filters, Recommendations
from ..store.models import Product

PLACEHOLDERS = ("first_name", "last_name", "country")
UNSUBSCRIBE = Button("Unsubscribe", "/unsubscribe")
MAX_TEXT = 2000


class LinkButton(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=40)
    url: str = Field(max_length=500)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("a button link must be a full http(s) address")
        return value.strip()


class CardSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["none", "fixed", "picked"] = "none"  # picked: per-recipient recommendations
    product_ids: list[int] = Field(default_factory=list, max_length=5)
    count: int = Field(default=3, ge=1, le=5)
    max_price: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _fixed_needs_products(self) -> CardSpec:
        if self.mode == "fixed" and not self.product_ids:
            raise ValueError("fixed product cards need at least one product")
        return self


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="A", min_length=1, max_length=32)
    share: int = Field(default=100, ge=0, le=100)  # percent of recipients
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    cards: CardSpec = Field(default_factory=CardSpec)
    buttons: list[LinkButton] = Field(default_factory=list, max_length=3)

    @field_validator("text")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
        except ValueError as error:
            raise ValueError(f"the text has a broken placeholder ({error})") from error
        unknown = sorted({f for f in fields if f not in PLACEHOLDERS})
        if unknown:
            names = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder(s) {unknown}; use {names}")
        return value


def check_variants(variants: list[Variant]) -> list[Variant]:
    names = [v.name for v in variants]
    if not variants:
        raise ValueError("a campaign needs at least one message")
    if len(set(names)) != len(names):
        raise ValueError("variant names must differ")
    if sum(v.share for v in variants) != 100:
        raise ValueError("the variants' shares must add up to 100%")
    return variants


@dataclass(frozen=True)
class Person:
    customer_id: int | None
    first_name: str
    last_name: str = ""
    country: str = ""


class LinkSigner:
    """`/r/<token>` addresses for (delivery, button) pairs, signed with the app's secret."""

    def __init__(self, secret: str, public_url: str) -> None:
        self._serializer = URLSafeSerializer(secret, salt="campaign-link")
        self.public_url = public_url.rstrip("/")

    def link(self, delivery_id: int, button: int) -> str:
        return f"{self.public_url}/r/{self._serializer.dumps([delivery_id, button])}"

    def read(self, token: str) -> tuple[int, int] | None:
        try:
            value = self._serializer.loads(token)
        except BadSignature:
            return None
        if (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            return int(value[0]), int(value[1])
        return None


def fill(text: str, person: Person) -> str:
    values = {"first_name": person.first_name, "last_name": person.last_name}
    values["country"] = person.country
    return text.format_map(values)


def render(
    session: Session,
    variant: Variant,
    person: Person,
    *,
    links: Callable[[int], str] | None,
    recommender: Recommendations | None,
) -> Reply:
    """The message one recipient gets (`links(i)` is the tracked address of button i; None
    in a preview shows the marketer's own address)."""
    cards = _cards(session, variant.cards, person, recommender)
    buttons = tuple(
        Button(b.title, links(i) if links is not None else b.url)
        for i, b in enumerate(variant.buttons)
    )
    return Reply(text=fill(variant.text, person), buttons=(*buttons, UNSUBSCRIBE), cards=cards)


def _cards(
    session: Session, spec: CardSpec, person: Person, recommender: Recommendations | None
) -> tuple[ProductCard, ...]:
    if spec.mode == "none":
        return ()
    if spec.mode == "fixed":
        products = session.exec(select(Product).where(col(Product.id).in_(spec.product_ids))).all()
        by_id = {p.id: p for p in products}
        chosen = [facts(session, by_id[i]) for i in spec.product_ids if i in by_id]
        return tuple(_card(f.card(), "") for f in chosen if f.sizes_in_stock)
    if recommender is None:
        return ()
    suggestions = recommender.recommend(
        person.customer_id, n=spec.count, filters=Filters(max_price=spec.max_price), session=session
    )
    ids = [s.product_id for s in suggestions]
    products = session.exec(select(Product).where(col(Product.id).in_(ids))).all()
    by_id = {p.id: p for p in products}
    return tuple(
        _card(facts(session, by_id[s.product_id]).card(), "Picked for you")
        for s in suggestions
        if s.product_id in by_id
    )


def _card(card: ProductCard, label: str) -> ProductCard:
    if not label:
        return card
    return ProductCard(
        product_id=card.product_id,
        title=card.title,
        subtitle=f"{label} · {card.subtitle}",
        price=card.price,
        currency=card.currency,
        image_url=card.image_url,
        buttons=card.buttons,
    )


def variants_from_json(data: list[dict[str, Any]]) -> list[Variant]:
    return [Variant.model_validate(v) for v in data]
