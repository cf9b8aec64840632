"""The catalogue as customers talk about it: find products by what they call them, and describe
them (stock per size, material, price) from the store.

Names are matched word by word, forgivingly ("trail runners" finds the Trail Running Shoes,
"linen shirt" the Linen Camp-Collar Shirt); when several products fit equally well the caller
asks the customer which one they mean.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from rapidfuzz import fuzz
from sqlmodel import Session, col, select

from bot.channels.base import Button, ProductCard
from bot.search_filters import SearchConstraints
from bot.store.models import Product, ProductVariant

STOPWORDS = frozenset(
    """a about an and any are available availability be between big can cheap colour color
    compare cost costs could difference different do does for from got have how i in is it its
    it's left made make material me much my of on or please price size sizes still stock tell
    than the there this vs versus what whats which with would you your""".split()
)
SIZE_RE = re.compile(r"^(xxs|xs|s|m|l|xl|xxl|\d{2}(\.\d)?)$", re.IGNORECASE)
WORD_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*", re.IGNORECASE)
TOKEN_MATCH = 80
SYNONYMS = {
    "bag": ("tote", "backpack"),
    "sneakers": ("trainers",),
    "trainers": ("sneakers", "running"),
    "jumper": ("sweater", "pullover", "crew"),
    "sweater": ("jumper",),
    "pants": ("trousers", "jeans"),
    "coat": ("jacket", "overcoat"),
    "hat": ("beanie", "cap"),
    "tshirt": ("tee",),
    "t-shirt": ("tee",),
}  # rapidfuzz ratio for two words to count as the same word


@dataclass(frozen=True)
class ProductFacts:
    """What the assistant can say about one product."""

    id: int
    title: str
    category: str
    colour: str
    material: str
    brand: str
    description: str
    price: Decimal
    currency: str
    stock: dict[str, int]  # size -> units, in catalogue order
    image_path: str | None
    sku: str = ""

    @property
    def sizes_in_stock(self) -> list[str]:
        return [size for size, units in self.stock.items() if units > 0]

    def card(self) -> ProductCard:
        sizes = ", ".join(self.sizes_in_stock) or "sold out"
        return ProductCard(
            product_id=self.id,
            title=self.title,
            subtitle=f"{self.colour} · {self.material} · sizes: {sizes}",
            price=f"{self.price:.2f}",
            currency=self.currency,
            image_url=f"/media/products/{self.id}" if self.image_path else None,
            buttons=(
                Button("Sizes in stock", f'/product_availability{{"product": "{self.title}"}}'),
                Button("Details", f'/product_question{{"product": "{self.title}"}}'),
                Button("Similar items", f'/similar_items{{"product_id": {self.id}}}'),
            ),
        )


def content_words(text: str) -> list[str]:
    words = [w.lower() for w in WORD_RE.findall(text)]
    return [w for w in words if w not in STOPWORDS and not SIZE_RE.match(w)]


def _word_matches(word: str, vocabulary: list[str]) -> bool:
    """Same word, a typo of it, or the same stem ("runners" / "running")."""
    return any(
        fuzz.ratio(word, candidate) >= TOKEN_MATCH
        or (min(len(word), len(candidate)) >= 5 and word[:4] == candidate[:4])
        for candidate in vocabulary
    )


def _vocabulary(product: Product) -> list[str]:
    words = content_words(f"{product.title} {product.category} {product.colour}")
    singular = [w[:-1] for w in words if w.endswith("s") and len(w) > 3]
    return words + singular


@dataclass(frozen=True)
class Match:
    product: Product
    matched: int  # query words found in the product's name, category or colour
    closeness: float  # how close the whole phrase is to the title (tie-breaker)


def find_products(session: Session, phrase: str, limit: int = 5) -> list[Match]:
    """Products whose name fits `phrase`, best first; empty when nothing fits."""
    words = content_words(phrase)
    if not words:
        return []
    matches = []
    for product in session.exec(select(Product)).all():
        vocabulary = _vocabulary(product)
        matched = sum(1 for word in words if _word_matches(word, vocabulary))
        if matched:
            closeness = fuzz.token_set_ratio(" ".join(words), product.title.lower())
            matches.append(Match(product, matched, closeness))
    matches.sort(key=lambda m: (-m.matched, -m.closeness, m.product.title))
    best = matches[0].matched if matches else 0
    needed = max(1, (len(words) + 1) // 2)  # at least half of what they said must fit
    return [m for m in matches if m.matched == best and best >= needed][:limit]


def resolve(session: Session, phrase: str) -> tuple[ProductFacts | None, list[ProductFacts]]:
    """One product when the phrase clearly names it; otherwise the candidates to ask about."""
    matches = find_products(session, phrase)
    if not matches:
        return None, []
    top = matches[0]
    clear = len(matches) == 1 or top.closeness - matches[1].closeness >= 15
    if clear:
        return facts(session, top.product), []
    return None, [facts(session, m.product) for m in matches]


def facts(session: Session, product: Product) -> ProductFacts:
    variants = session.exec(
        select(ProductVariant)
        .where(ProductVariant.product_id == product.id)
        .order_by(col(ProductVariant.id))
    ).all()
    assert product.id is not None
    return ProductFacts(
        id=product.id,
        title=product.title,
        category=product.category,
        colour=product.colour,
        material=product.material,
        brand=product.brand,
        description=product.description,
        price=product.price,
        currency=product.currency,
        stock={v.size: v.stock for v in variants},
        image_path=product.image_path,
        sku=product.sku,
    )


def requested_size(text: str, known_sizes: list[str]) -> str | None:
    """The size a customer asks about ("in M", "size 42"), if it is one this product comes in."""
    lowered = {size.lower(): size for size in known_sizes}
    for word in re.findall(r"[A-Za-z0-9/]+", text):
        if word.lower() in lowered and (word.isupper() or word.isdigit() or len(word) > 1):
            return lowered[word.lower()]
    return None


def money(amount: Decimal, currency: str) -> str:
    symbol = {"EUR": "€", "GBP": "£", "USD": "$"}.get(currency)
    return f"{symbol}{amount:.2f}" if symbol else f"{amount:.2f} {currency}"


def search_products(
    session: Session, constraints: SearchConstraints, limit: int = 5
) -> list[ProductFacts]:
    """Products that satisfy the constraints, the best text matches first, then cheapest."""
    query = select(Product)
    if constraints.category:
        query = query.where(Product.category == constraints.category)
    if constraints.max_price is not None:
        query = query.where(col(Product.price) <= constraints.max_price)
    if constraints.min_price is not None:
        query = query.where(col(Product.price) >= constraints.min_price)
    ranked: list[tuple[int, Decimal, ProductFacts]] = []
    for product in session.exec(query).all():
        colour = product.colour.lower()
        if constraints.colours and not any(c in colour for c in constraints.colours):
            continue
        item = facts(session, product)
        if constraints.size is not None:
            sizes = {s.upper(): units for s, units in item.stock.items()}
            if sizes.get(constraints.size.upper(), 0) <= 0:
                continue
        elif constraints.in_stock and not item.sizes_in_stock:
            continue
        title = _vocabulary(product)
        text = content_words(f"{product.description} {product.material}")
        relevance = 0
        for word in constraints.words:
            forms = (word, *SYNONYMS.get(word, ()))
            if any(_word_matches(form, title) for form in forms):
                relevance += 2  # named in the title counts more than in the description
            elif any(_word_matches(form, text) for form in forms):
                relevance += 1
        ranked.append((relevance, product.price, item))
    ranked.sort(key=lambda r: (-r[0], r[1], r[2].title))
    return [item for _, _, item in ranked[:limit]]
