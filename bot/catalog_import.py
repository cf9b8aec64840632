"""Import a shop's catalogue from CSV into the store (the vectors follow with `photo_index`).

Columns (header row required; names are case-insensitive, unknown columns are ignored):

| column | required | example |
|---|---|---|
| `id` | yes | `DR-001` (the SKU, at most 32 characters) |
| `title` | yes | `Linen Wrap Dress` |
| `category` | yes | `dresses` |
| `price` | yes | `89.90` |
| `description` | no | free text |
| `currency` | no (EUR) | `EUR` |
| `colour` (or `color`) | no | `sage green` |
| `brand`, `material` | no | |
| `stock` (or `sizes`) | no (sold out) | `XS:3; S:0; M:12` (size:units), or `7` (one size) |
| `image` | no | `dr-001.jpg` — a path under `--images DIR` (or absolute) |

Re-importing the same file changes nothing; a changed row updates its product (sizes no longer
listed are set to 0 units, never deleted: orders refer to them). Bad rows are collected with
their line number and skipped, so one typo does not stop a catalogue of thousands.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlmodel import Session, select

from bot.store.models import Product, ProductVariant

ONE_SIZE = "One size"
REQUIRED = ("id", "title", "category", "price")
ALIASES = {"color": "colour", "sizes": "stock", "sku": "id", "image_path": "image"}
BATCH = 200


@dataclass(frozen=True)
class CatalogRow:
    sku: str
    title: str
    category: str
    price: Decimal
    currency: str = "EUR"
    description: str = ""
    colour: str = ""
    brand: str = ""
    material: str = ""
    stock: dict[str, int] = field(default_factory=dict)
    image: Path | None = None


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    bad_rows: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    missing_images: list[tuple[str, str]] = field(default_factory=list)  # (sku, path)


class BadRow(ValueError):
    pass


def parse_stock(text: str) -> dict[str, int]:
    """`XS:3; S:0` → {"XS": 3, "S": 0}; `7` → {"One size": 7}; `` → {}."""
    text = text.strip()
    if not text:
        return {}
    if re.fullmatch(r"\d+", text):
        return {ONE_SIZE: int(text)}
    stock: dict[str, int] = {}
    for part in re.split(r"[;|]", text):
        if not part.strip():
            continue
        size, sep, units = part.rpartition(":")
        if not sep or not size.strip() or not re.fullmatch(r"\s*\d+\s*", units):
            raise BadRow(f"stock {part.strip()!r} is not size:units (for example M:3)")
        stock[size.strip()[:20]] = int(units)
    return stock


def parse_row(raw: dict[str, str], images_dir: Path | None) -> CatalogRow:
    row = {ALIASES.get(k.strip().lower(), k.strip().lower()): (v or "").strip()
           for k, v in raw.items() if k is not None}  # fmt: skip
    missing = [name for name in REQUIRED if not row.get(name)]
    if missing:
        raise BadRow(f"missing {', '.join(missing)}")
    if len(row["id"]) > 32:
        raise BadRow("id is longer than 32 characters")
    try:
        price = Decimal(row["price"].replace(",", "."))
    except InvalidOperation:
        raise BadRow(f"price {row['price']!r} is not a number") from None
    if not price.is_finite() or price < 0:
        raise BadRow(f"price {row['price']!r} must be zero or more")
    currency = (row.get("currency") or "EUR").upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise BadRow(f"currency {currency!r} is not a three-letter code")
    image: Path | None = None
    if row.get("image"):
        image = Path(row["image"])
        if not image.is_absolute():
            image = (images_dir or Path.cwd()) / image
        image = image.resolve()
    return CatalogRow(
        sku=row["id"],
        title=row["title"][:200],
        category=row["category"].lower()[:50],
        price=price.quantize(Decimal("0.01")),
        currency=currency,
        description=row.get("description", ""),
        colour=row.get("colour", "")[:50],
        brand=row.get("brand", "")[:100],
        material=row.get("material", "")[:100],
        stock=parse_stock(row.get("stock", "")),
        image=image,
    )


def read_rows(
    csv_path: Path, images_dir: Path | None, report: ImportReport
) -> Iterator[CatalogRow]:
    """Good rows; bad ones land in `report.bad_rows` with their line number."""
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        headers = {ALIASES.get(h.strip().lower(), h.strip().lower())
                   for h in reader.fieldnames or []}  # fmt: skip
        if missing := [name for name in REQUIRED if name not in headers]:
            raise BadRow(f"{csv_path} has no column(s) {', '.join(missing)}")
        seen: set[str] = set()
        for raw in reader:
            report.rows += 1
            line = reader.line_num
            try:
                row = parse_row(raw, images_dir)
            except BadRow as error:
                report.bad_rows.append((line, str(error)))
                continue
            if row.sku in seen:
                report.bad_rows.append((line, f"id {row.sku} appears twice; the first one counts"))
                continue
            seen.add(row.sku)
            yield row


def upsert_row(session: Session, row: CatalogRow, report: ImportReport) -> None:
    image_path = None
    if row.image is not None:
        if row.image.is_file():
            image_path = str(row.image)
        else:
            report.missing_images.append((row.sku, str(row.image)))
    product = session.exec(select(Product).where(Product.sku == row.sku)).first()
    values: dict[str, object] = {
        "title": row.title, "description": row.description, "category": row.category,
        "brand": row.brand, "material": row.material, "colour": row.colour,
        "price": row.price, "currency": row.currency, "image_path": image_path,
    }  # fmt: skip
    created = product is None
    if product is None:
        product = Product(sku=row.sku, title=row.title, description=row.description,
                          category=row.category, brand=row.brand, material=row.material,
                          colour=row.colour, price=row.price, currency=row.currency,
                          image_path=image_path)  # fmt: skip
        session.add(product)
        session.flush()
        changed = True
    else:
        changed = any(getattr(product, k) != v for k, v in values.items())
        for key, value in values.items():
            setattr(product, key, value)
    assert product.id is not None
    variants = {
        v.size: v
        for v in session.exec(
            select(ProductVariant).where(ProductVariant.product_id == product.id)
        ).all()
    }
    for size, units in row.stock.items():
        variant = variants.pop(size, None)
        if variant is None:
            session.add(
                ProductVariant(
                    product_id=product.id,
                    sku=_variant_sku(row.sku, size),
                    size=size,
                    colour=row.colour,
                    stock=units,
                )
            )
            changed = True
        elif variant.stock != units or variant.colour != row.colour:
            variant.stock, variant.colour = units, row.colour
            changed = True
    for variant in variants.values():  # sizes the file no longer lists: sold out
        if variant.stock:
            variant.stock = 0
            changed = True
    if created:
        report.created += 1
    elif changed:
        report.updated += 1
    else:
        report.unchanged += 1


def _variant_sku(sku: str, size: str) -> str:
    return f"{sku}-{re.sub(r'[^A-Za-z0-9]', '', size)}"[:48]


def import_catalog(
    transaction: Callable[[Callable[[Session], None]], None],
    csv_path: Path,
    images_dir: Path | None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Write every good row; commits every BATCH rows, so Ctrl-C keeps what was written."""
    report = ImportReport()
    batch: list[CatalogRow] = []

    def flush() -> None:
        rows = list(batch)
        batch.clear()

        def write(session: Session) -> None:
            for row in rows:
                upsert_row(session, row, report)

        transaction(write)
        if progress is not None:
            progress(len(rows))

    for row in read_rows(csv_path, images_dir, report):
        batch.append(row)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return report
