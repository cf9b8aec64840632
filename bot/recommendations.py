"""Recommendations served in-process: what actions (and campaigns) call.

    shop = Recommendations.load_or_train(engine, settings.data_dir / "recsys")
    for s in shop.recommend(customer_id, n=5, filters=Filters(max_price=Decimal("50"))):
        s.product_id, s.title, s.price, s.reason   # one card per suggestion
    shop.similar(product_id, n=5, filters=Filters(max_price=price))   # "similar but cheaper"
    shop.complete([product_id, ...], n=3)                              # "what goes with it?"

Lists come from the latest artefact that `bot recsys train` wrote (top-N per customer, item
neighbours, trending); the rules that change faster than a model come from the store at request
time: in stock (some variant with stock > 0), never a product the customer already ordered (any
order that was not cancelled, including orders placed after training), price range, category,
at most `max_per_category` items of one category. Product facts are cached for
`facts_ttl_seconds`; the customer's orders are read on every call (one indexed query).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from recsys import Precomputed, latest, precompute

from .store.interactions import load_interactions, ordered_products
from .store.models import Product, ProductVariant

# Trending is popularity halved every 14 days, scaled to the top item: above this, the item
# sold well in the last days ("this week").
TRENDING_NOW = 0.25


@dataclass(frozen=True)
class Filters:
    """What the customer asked for; None means no limit."""

    category: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    max_per_category: int | None = 2
    exclude: frozenset[int] = frozenset()  # product ids not to show (e.g. already on screen)


@dataclass(frozen=True)
class Suggestion:
    """One product card: what to show and the one-line reason why."""

    product_id: int
    sku: str
    title: str
    category: str
    colour: str
    price: Decimal
    currency: str
    image_path: str | None
    score: float
    reason: str


@dataclass(frozen=True)
class _Facts:
    """Product facts over the artefact's item positions (unknown products are dropped)."""

    products: dict[int, Product]
    product_at: list[int]  # item position -> product id (-1: product gone)
    in_stock: NDArray[np.bool_]
    price: NDArray[np.float64]
    category: list[str]
    loaded_at: float


@dataclass
class _Candidates:
    scores: dict[int, float] = field(default_factory=dict)  # item position -> score
    reasons: dict[int, str] = field(default_factory=dict)

    def add(self, item: int, score: float, reason: str, override: bool = False) -> None:
        if item < 0 or score <= 0:
            return
        before = self.scores.get(item)
        self.scores[item] = (before or 0.0) + score
        if before is None or override:
            self.reasons[item] = reason


class Recommendations:
    def __init__(
        self,
        engine: Engine,
        model: Precomputed,
        facts_ttl_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        source: Path | None = None,
    ) -> None:
        self.engine = engine
        self.model = model
        self.source = source
        self.facts_ttl_seconds = facts_ttl_seconds
        self._clock = clock
        self._items = model.item_index
        self._users = model.user_index
        self._facts: _Facts | None = None

    # ---- life cycle -------------------------------------------------------------------

    @classmethod
    def load_or_train(cls, engine: Engine, directory: Path, **kwargs: object) -> Recommendations:
        """The newest artefact in `directory`; trains one first when there is none."""
        path = latest(directory) or train(engine, directory)
        return cls(engine, Precomputed.load(path), source=path, **kwargs)  # type: ignore[arg-type]

    def reload(self, directory: Path) -> bool:
        """Switch to a newer artefact if training wrote one; True when it did."""
        path = latest(directory)
        if path is None or path == self.source:
            return False
        self.model = Precomputed.load(path)
        self.source = path
        self._items = self.model.item_index
        self._users = self.model.user_index
        self._facts = None
        return True

    def invalidate(self) -> None:
        """Forget cached product facts (stock, prices) so the next call reads them again."""
        self._facts = None

    # ---- the API ------------------------------------------------------------------------

    def recommend(
        self,
        customer_id: int | None,
        n: int = 5,
        filters: Filters | None = None,
        session: Session | None = None,
    ) -> list[Suggestion]:
        """Products for this customer (None: an anonymous visitor) with a reason each.

        Every method takes the caller's `session` when it runs inside a transaction (SQLite
        allows one writer: a second session of the same thread would wait for ever)."""
        filters = filters or Filters()
        facts = self._product_facts(session)
        with self._session(session) as reading:
            ordered = ordered_products(reading, customer_id) if customer_id is not None else []
        bought = {product for product, _ in ordered}
        candidates = _Candidates()
        row = self._users.get(str(customer_id)) if customer_id is not None else None
        if row is not None:
            for item, score in zip(
                self.model.user_top[row].tolist(), self.model.user_scores[row].tolist(), strict=True
            ):
                candidates.add(item, score, "customers who bought what you bought chose this")
        if ordered:  # the last order, even one placed after training
            last_time = ordered[0][1]
            for product, moment in ordered:
                if moment == last_time:
                    self._add_neighbours(candidates, product, facts, 0.8, last_order=True)
        fallback = self.model.newcomers if row is None and not ordered else self.model.trending
        self._add_popular(candidates, fallback, facts, weight=0.05 if candidates.scores else 1.0)
        return self._cut(candidates, facts, filters, n, exclude_products=bought)

    def similar(
        self,
        product_id: int,
        n: int = 5,
        filters: Filters | None = None,
        customer_id: int | None = None,
        session: Session | None = None,
    ) -> list[Suggestion]:
        """Products like this one (bought together or alike in content); e.g. cheaper ones
        with `Filters(max_price=...)`. With `customer_id`, their past orders are left out."""
        filters = filters or Filters(max_per_category=None)
        facts = self._product_facts(session)
        candidates = _Candidates()
        self._add_neighbours(candidates, product_id, facts, 1.0, last_order=False, alike=True)
        bought = self._bought(customer_id, session)
        return self._cut(candidates, facts, filters, n, exclude_products=bought | {product_id})

    def complete(
        self,
        basket: Sequence[int],
        n: int = 3,
        filters: Filters | None = None,
        customer_id: int | None = None,
        session: Session | None = None,
    ) -> list[Suggestion]:
        """What goes with these products: bought-together items, other categories first."""
        filters = filters or Filters()
        facts = self._product_facts(session)
        candidates = _Candidates()
        for product in basket:
            self._add_neighbours(candidates, product, facts, 1.0, last_order=False)
        basket_categories = {facts.products[p].category for p in basket if p in facts.products}
        for item in list(candidates.scores):
            if facts.category[item] in basket_categories:
                candidates.scores[item] *= 0.5  # a second jacket does not "go with" a jacket
        bought = self._bought(customer_id, session)
        return self._cut(candidates, facts, filters, n, exclude_products=bought | set(basket))

    def category_affinity(
        self, customer_ids: Sequence[int], top: int = 10, session: Session | None = None
    ) -> dict[int, str]:
        """Each known customer's strongest category: the most common one among their top
        recommendations (what the model expects them to want next)."""
        facts = self._product_facts(session)
        result: dict[int, str] = {}
        for customer_id in customer_ids:
            row = self._users.get(str(customer_id))
            if row is None:
                continue
            counts: dict[str, float] = {}
            for rank, item in enumerate(self.model.user_top[row][:top].tolist()):
                if item >= 0 and facts.product_at[item] >= 0:
                    category = facts.category[item]
                    counts[category] = counts.get(category, 0.0) + 1.0 / (1 + rank)
            if counts:
                result[customer_id] = max(counts, key=lambda c: (counts[c], c))
        return result

    # ---- internals ----------------------------------------------------------------------

    @contextmanager
    def _session(self, session: Session | None) -> Iterator[Session]:
        """The caller's session, or a short one of our own."""
        if session is not None:
            yield session
            return
        with Session(self.engine) as own:
            yield own

    def _bought(self, customer_id: int | None, session: Session | None = None) -> set[int]:
        if customer_id is None:
            return set()
        with self._session(session) as reading:
            return {product for product, _ in ordered_products(reading, customer_id)}

    def _add_neighbours(
        self,
        candidates: _Candidates,
        product_id: int,
        facts: _Facts,
        weight: float,
        last_order: bool,
        alike: bool = False,
    ) -> None:
        item = self._items.get(str(product_id))
        if item is None or item >= len(self.model.neighbours):
            return
        title = facts.products[product_id].title if product_id in facts.products else "it"
        ids = self.model.neighbours[item].tolist()
        scores = self.model.neighbour_scores[item].tolist()
        links = self.model.bought_together[item].tolist()
        for other, score, together in zip(ids, scores, links, strict=True):
            if other < 0:
                continue
            new = not bool(self.model.sold[other])
            if last_order:
                reason = (
                    "bought together with your last order"
                    if together
                    else f"new in {facts.category[other]}, like the {title} you ordered"
                    if new
                    else f"goes with the {title} you ordered"
                )
            elif alike:
                reason = (
                    f"customers who looked at the {title} also bought this"
                    if together
                    else f"similar to the {title}"
                )
            else:
                reason = f"often bought with the {title}" if together else f"goes with the {title}"
            candidates.add(other, weight * score, reason, override=True)

    def _add_popular(
        self, candidates: _Candidates, scores: NDArray[np.float32], facts: _Facts, weight: float
    ) -> None:
        order = np.argsort(-scores, kind="stable")[:200]
        for item in order.tolist():
            if scores[item] <= 0:
                break
            when = " this week" if self.model.trending[item] >= TRENDING_NOW else ""
            reason = f"popular in {facts.category[item]}{when}"
            candidates.add(item, weight * float(scores[item]), reason)

    def _cut(
        self,
        candidates: _Candidates,
        facts: _Facts,
        filters: Filters,
        n: int,
        exclude_products: set[int],
    ) -> list[Suggestion]:
        ranked = sorted(candidates.scores.items(), key=lambda pair: (-pair[1], pair[0]))
        per_category: dict[str, int] = {}
        chosen: list[Suggestion] = []
        for item, score in ranked:
            product_id = facts.product_at[item]
            if product_id < 0 or not facts.in_stock[item]:
                continue
            if product_id in exclude_products or product_id in filters.exclude:
                continue
            product = facts.products[product_id]
            if filters.category and product.category.lower() != filters.category.lower():
                continue
            if filters.min_price is not None and product.price < filters.min_price:
                continue
            if filters.max_price is not None and product.price > filters.max_price:
                continue
            if filters.max_per_category is not None:
                if per_category.get(product.category, 0) >= filters.max_per_category:
                    continue
                per_category[product.category] = per_category.get(product.category, 0) + 1
            chosen.append(_suggestion(product, score, candidates.reasons[item]))
            if len(chosen) == n:
                break
        return chosen

    def _product_facts(self, session: Session | None = None) -> _Facts:
        now = self._clock()
        if self._facts is not None and now - self._facts.loaded_at < self.facts_ttl_seconds:
            return self._facts
        with self._session(session) as reading:
            products = {p.id: p for p in reading.exec(select(Product)) if p.id is not None}
            stocked = set(
                reading.exec(
                    select(ProductVariant.product_id)
                    .group_by(col(ProductVariant.product_id))
                    .having(func.sum(ProductVariant.stock) > 0)
                )
            )
        n = len(self.model.items)
        product_at = [-1] * n
        in_stock = np.zeros(n, dtype=bool)
        price = np.zeros(n, dtype=np.float64)
        category = [""] * n
        for item, key in enumerate(self.model.items.tolist()):
            product = products.get(int(key)) if key.isdigit() else None
            if product is None or product.id is None:
                continue
            product_at[item] = product.id
            in_stock[item] = product.id in stocked
            price[item] = float(product.price)
            category[item] = product.category
        self._facts = _Facts(products, product_at, in_stock, price, category, now)
        return self._facts


def _suggestion(product: Product, score: float, reason: str) -> Suggestion:
    assert product.id is not None
    return Suggestion(
        product_id=product.id,
        sku=product.sku,
        title=product.title,
        category=product.category,
        colour=product.colour,
        price=product.price,
        currency=product.currency,
        image_path=product.image_path,
        score=round(float(score), 4),
        reason=reason,
    )


def product_texts(session: Session) -> dict[str, str]:
    """Content of every product for TF-IDF: title, description, category, colour, material."""
    return {
        str(p.id): " ".join((p.title, p.description, p.category, p.colour, p.material, p.brand))
        for p in session.exec(select(Product))
    }


def train(engine: Engine, directory: Path, now: datetime | None = None, top_n: int = 50) -> Path:
    """Train on the store's orders and interactions and write a new artefact; its path."""
    with Session(engine) as session:
        interactions = load_interactions(session)
        texts = product_texts(session)
    moment = int((now or datetime.now(UTC)).timestamp())
    model = precompute(interactions, items=texts, now=moment, top_n=top_n)
    return model.save(directory)
