"""Turn what a shopper writes ("red summer dress under 40", "in blue, size M") into filters.

The same constraints serve the store search and the vector search (photo captions included).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "dresses": ("dress", "dresses", "sundress", "gown"),
    "shirts": ("shirt", "shirts", "blouse", "tee", "t-shirt", "tshirt", "top", "tops"),
    "trousers": ("trousers", "pants", "jeans", "chinos", "chino", "denims"),
    "jackets": ("jacket", "jackets", "coat", "coats", "overcoat", "parka", "puffer", "shell"),
    "shoes": ("shoes", "shoe", "sneakers", "sneaker", "trainers", "boots", "boot", "loafers",
              "espadrilles", "runners"),
    "knitwear": ("jumper", "jumpers", "sweater", "sweaters", "cardigan", "knit", "knitwear",
                 "pullover", "roll-neck"),
    "accessories": ("bag", "bags", "tote", "belt", "beanie", "hat", "cap", "scarf", "gloves",
                    "backpack", "accessories"),
}  # fmt: skip
COLOURS = (
    "black white grey gray navy blue green olive red burgundy pink lilac purple yellow mustard "
    "orange rust terracotta brown tan camel beige sand stone cream ecru ivory khaki indigo "
    "charcoal champagne cognac oatmeal"
).split()
COLOUR_FAMILIES = {
    "blue": ("blue", "navy", "indigo", "denim", "slate"),
    "grey": ("grey", "gray", "charcoal", "melange", "stone"),
    "gray": ("grey", "gray", "charcoal"),
    "green": ("green", "olive", "sage", "khaki", "forest", "bottle"),
    "red": ("red", "burgundy", "rust", "terracotta"),
    "brown": ("brown", "tan", "camel", "cognac", "tobacco"),
    "beige": ("beige", "sand", "oatmeal", "camel", "stone", "ecru", "cream"),
    "white": ("white", "ivory", "ecru", "cream"),
    "yellow": ("yellow", "mustard"),
    "purple": ("purple", "lilac"),
}
FILLER = frozenset(
    "a an any anything are can do find for have i in is like looking me need show some "
    "something the want with you please".split()
)

_NUMBER = r"(\d+(?:[.,]\d{1,2})?)"
_MAX_WORDS = r"under|below|less than|cheaper than|max(?:imum)?|up to|no more than|<"
_MAX_RE = re.compile(rf"(?:{_MAX_WORDS})\s*[€$£]?\s*{_NUMBER}", re.IGNORECASE)
_MIN_RE = re.compile(
    rf"(?:over|above|more than|at least|min(?:imum)?|from|>)\s*[€$£]?\s*{_NUMBER}", re.IGNORECASE
)
_BETWEEN_RE = re.compile(
    rf"between\s*[€$£]?\s*{_NUMBER}\s*(?:and|-|to)\s*[€$£]?\s*{_NUMBER}", re.IGNORECASE
)
_SIZE_RE = re.compile(r"\bsize\s+([A-Za-z]{1,3}|\d{2})\b|\b(XXS|XS|XXL|XL)\b|\bin\s+(S|M|L)\b")


@dataclass(frozen=True)
class SearchConstraints:
    """Structured filters plus the words left to match against product text."""

    category: str | None = None
    colours: tuple[str, ...] = ()  # any of these colour words
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    size: str | None = None
    in_stock: bool = True
    words: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        parts = []
        if self.colours:
            parts.append(self.colours[0])
        if self.category:
            parts.append(self.category)
        if self.size:
            parts.append(f"in size {self.size}")
        if self.max_price is not None:
            parts.append(f"under {self.max_price}")
        if self.min_price is not None:
            parts.append(f"over {self.min_price}")
        return " ".join(parts)


def _price(text: str) -> Decimal:
    return Decimal(text.replace(",", "."))


def parse_constraints(text: str) -> SearchConstraints:
    lowered = text.lower()
    min_price = max_price = None
    if between := _BETWEEN_RE.search(lowered):
        low, high = sorted((_price(between.group(1)), _price(between.group(2))))
        min_price, max_price = low, high
        lowered = lowered.replace(between.group(0), " ")
    else:
        if found := _MAX_RE.search(lowered):
            max_price = _price(found.group(1))
            lowered = lowered.replace(found.group(0), " ")
        if found := _MIN_RE.search(lowered):
            min_price = _price(found.group(1))
            lowered = lowered.replace(found.group(0), " ")
    size = None
    if found := _SIZE_RE.search(text):
        size = next(group for group in found.groups() if group).upper()
        lowered = lowered.replace(found.group(0).lower(), " ")
    words = re.findall(r"[a-z]+(?:-[a-z]+)?", lowered)
    category = next(
        (name for name, aliases in CATEGORY_WORDS.items() if any(w in aliases for w in words)),
        None,
    )
    colour_words = [w for w in words if w in COLOURS]
    colours: tuple[str, ...] = ()
    if colour_words:
        colours = COLOUR_FAMILIES.get(colour_words[0], (colour_words[0],))
    leftover = tuple(w for w in words if w not in COLOURS and w not in FILLER)
    return SearchConstraints(
        category=category,
        colours=colours,
        min_price=min_price,
        max_price=max_price,
        size=size,
        words=leftover,
    )
