"""Photos for the demo shop: drawn ones by default, or real ones from a labelled photo folder.

    attach_demo_photos(session, data_dir)                          # drawn, under DATA_DIR
    attach_demo_photos(session, data_dir, ../shared/datasets/clothing)   # real photos

With a photo folder (`labels.csv` with columns image,label[,kids] and `images/<image>.jpg`), each
demo product whose kind the labels cover gets the photo of that kind closest to its colour, and
`per_label` extra products per label are added (SKU `PH-0001`...), titled by label and colour.
The photos are read where they are: only their paths go into the store, nothing is copied.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
from PIL import Image
from sqlmodel import Session, col, select

from bot.demo_data import PHOTO_SKU_PREFIX
from bot.product_photos import PALETTE, colour_rgb, render_product_photo, write_product_photo
from bot.store.models import Product, ProductVariant

DRAWN_DIR = Path("catalog") / "demo-photos"  # under DATA_DIR
SEED = 20240603

LABEL_CATEGORY = {
    "T-Shirt": "shirts", "Shirt": "shirts", "Polo": "shirts", "Blouse": "shirts",
    "Top": "shirts", "Undershirt": "shirts", "Longsleeve": "knitwear", "Hoodie": "knitwear",
    "Pants": "trousers", "Shorts": "trousers", "Dress": "dresses", "Skirt": "dresses",
    "Outwear": "jackets", "Blazer": "jackets", "Shoes": "shoes", "Hat": "accessories",
}  # fmt: skip
CATEGORY_LABELS = {
    "dresses": ("Dress",),
    "shirts": ("Shirt", "T-Shirt", "Polo", "Blouse"),
    "trousers": ("Pants",),
    "jackets": ("Outwear", "Blazer"),
    "shoes": ("Shoes",),
    "knitwear": ("Longsleeve", "Hoodie"),
    "accessories": ("Hat",),
}
TITLE_LABELS = (  # a word in the title → the label it needs
    ("tee", "T-Shirt"), ("t-shirt", "T-Shirt"), ("polo", "Polo"), ("blouse", "Blouse"),
    ("beanie", "Hat"), ("cap", "Hat"), ("top", "Longsleeve"),
)  # fmt: skip
NOT_PICTURED = ("belt", "tote", "scarf", "gloves", "backpack")  # no label shows these
SIZES = {
    "shoes": ("38", "39", "40", "41", "42", "43", "44"),
    "trousers": ("28", "30", "32", "34", "36"),
    "accessories": ("S/M", "L/XL"),
}
APPAREL = ("XS", "S", "M", "L", "XL")
COLOUR_NAMES = [n for n in PALETTE if " " not in n and n not in ("heather", "melange", "gray")]


def attach_demo_photos(
    session: Session, data_dir: Path, photos: Path | None = None, per_label: int = 10
) -> int:
    """Give every product a photo (see the module docstring); returns how many have one."""
    products = session.exec(select(Product).order_by(col(Product.id))).all()
    for product in products:
        data = render_product_photo(product.category, product.title, product.colour)
        path = write_product_photo(data_dir / DRAWN_DIR, product.sku, data)
        product.image_path = str(DRAWN_DIR / path.name)
    if photos is not None:
        library = PhotoLibrary.read(photos)
        for product in products:
            picked = library.pick_for(product)
            if picked is not None:
                product.image_path = str(picked)
        add_photo_products(session, library, per_label)
    session.flush()
    return len(session.exec(select(Product.id)).all())


@dataclass
class LabelledPhoto:
    path: Path
    label: str


class PhotoLibrary:
    """The labelled photos, handed out once each, in file-name order."""

    def __init__(self, photos: Sequence[LabelledPhoto]) -> None:
        self.by_label: dict[str, list[LabelledPhoto]] = {}
        for photo in photos:
            self.by_label.setdefault(photo.label, []).append(photo)
        self.used: set[Path] = set()

    @classmethod
    def read(cls, folder: Path) -> PhotoLibrary:
        photos = []
        with (folder / "labels.csv").open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                label = row.get("label", "")
                if label not in LABEL_CATEGORY or row.get("kids", "False") == "True":
                    continue
                name = row["image"] if row["image"].endswith(".jpg") else f"{row['image']}.jpg"
                path = (folder / "images" / name).resolve()
                if path.is_file():
                    photos.append(LabelledPhoto(path, label))
        photos.sort(key=lambda p: p.path.name)
        return cls(photos)

    def take(self, label: str, n: int) -> list[LabelledPhoto]:
        free = [p for p in self.by_label.get(label, []) if p.path not in self.used][:n]
        self.used.update(p.path for p in free)
        return free

    def pick_for(self, product: Product, candidates: int = 40) -> Path | None:
        """The unused photo of the product's kind whose colour is closest to the product's."""
        title = product.title.lower()
        if any(word in title for word in NOT_PICTURED):
            return None
        labels = next(
            ((label,) for word, label in TITLE_LABELS if word in title.split()),
            CATEGORY_LABELS.get(product.category, ()),
        )
        pool = [
            p for label in labels for p in self.by_label.get(label, [])[: candidates * 3]
            if p.path not in self.used
        ][:candidates]  # fmt: skip
        if not pool:
            return None
        target = colour_rgb(product.colour)
        best = min(pool, key=lambda p: _distance(dominant_colour(p.path), target))
        self.used.add(best.path)
        return best.path


def dominant_colour(path: Path) -> tuple[int, int, int]:
    """The mean colour of the middle of the photo (where the garment usually is)."""
    with Image.open(path) as image:
        image.draft("RGB", (64, 64))
        small = image.convert("RGB").resize((24, 24))
    red, green, blue = np.asarray(small.crop((6, 6, 18, 18))).reshape(-1, 3).mean(axis=0)
    return int(red), int(green), int(blue)


def colour_name(rgb: tuple[int, int, int]) -> str:
    return min(COLOUR_NAMES, key=lambda name: _distance(PALETTE[name], rgb))


def _distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> int:
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True))


def add_photo_products(session: Session, library: PhotoLibrary, per_label: int) -> int:
    """`per_label` products per label, each with one real photo."""
    rng = random.Random(SEED)
    created = 0
    for label in sorted(LABEL_CATEGORY):
        for photo in library.take(label, per_label):
            created += 1
            category = LABEL_CATEGORY[label]
            colour = colour_name(dominant_colour(photo.path))
            name = label.replace("Outwear", "Jacket").replace("Pants", "Trousers")
            product = Product(
                sku=f"{PHOTO_SKU_PREFIX}{created:04d}",
                title=f"{colour.capitalize()} {name} {created:04d}",
                description=f"A {colour} {name.lower()} from the photo collection.",
                category=category,
                brand="Northwind Basics",
                material="cotton" if category != "shoes" else "leather",
                colour=colour,
                price=Decimal(rng.randrange(1990, 14990, 100)) / 100,
                currency="EUR",
                image_path=str(photo.path),
            )
            session.add(product)
            session.flush()
            assert product.id is not None
            for size in SIZES.get(category, APPAREL):
                session.add(
                    ProductVariant(
                        product_id=product.id,
                        sku=f"{product.sku}-{size.replace('/', '')}",
                        size=size,
                        colour=colour,
                        stock=0 if rng.random() < 0.2 else rng.randint(1, 20),
                    )
                )
    return created
