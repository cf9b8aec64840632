"""The catalogue's vectors: drawn demo photos, CSV import, indexing (idempotent, resumable) and
the payload filters photo search uses. No vision model here: encoders are small stand-ins."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlmodel import Session, select

from bot.catalog_import import BadRow, import_catalog, parse_stock
from bot.photo_index import (
    CatalogItem,
    IndexReport,
    ProductIndexer,
    catalog_items,
    colour_terms,
    size_terms,
)
from bot.photo_search import loosenings, payload_filter
from bot.product_photos import render_product_photo
from bot.search_filters import parse_constraints
from bot.store.db import make_engine, migrate, session_scope
from bot.store.models import Product, ProductVariant
from bot.vectors import PRODUCTS, VectorPoint, products_spec
from bot.vectors.edge import EdgeVectorStore
from vision.errors import ImageRejected, UnsupportedImage

DIM = 8


class FakeImages:
    """Vectors from the bytes' hash; b"broken" is unreadable. Counts what it embeds."""

    model_id = "fake-image:v1"
    dim = DIM

    def __init__(self, fail_after: int | None = None) -> None:
        self.embedded = 0
        self.fail_after = fail_after

    def encode(self, images: Sequence[bytes]) -> list[np.ndarray | ImageRejected]:
        if self.fail_after is not None and self.embedded >= self.fail_after:
            raise KeyboardInterrupt  # Ctrl-C in the middle of a run
        out: list[np.ndarray | ImageRejected] = []
        for data in images:
            if data.startswith(b"broken"):
                out.append(UnsupportedImage("not an image"))
                continue
            seed = int.from_bytes(hashlib.sha256(data).digest()[:4], "big")
            vector = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
            out.append(vector / np.linalg.norm(vector))
            self.embedded += 1
        return out


class FakeTexts:
    model_id = "fake-text:v1"
    dim = 4

    def __init__(self) -> None:
        self.embedded = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += len(texts)
        return np.array([[len(t), 1.0, 0.5, 0.25] for t in texts], dtype=np.float32)


def item(sku: str, image: Path | None, **changes: object) -> CatalogItem:
    values: dict[str, object] = {
        "sku": sku, "product_id": int(sku.split("-")[1]), "title": f"Item {sku}",
        "category": "shirts", "price": Decimal("20.00"), "currency": "EUR", "colour": "navy",
        "brand": "B", "material": "cotton", "description": "d", "stock": {"S": 1, "M": 0},
        "image_path": image,
    }  # fmt: skip
    values.update(changes)
    return CatalogItem(**values)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> EdgeVectorStore:
    return EdgeVectorStore(tmp_path / "qdrant")


def photos(folder: Path, n: int) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"p{i}.jpg"
        path.write_bytes(b"photo %d" % i)
        paths.append(path)
    return paths


# --- drawn demo photos --------------------------------------------------------------------------


def test_drawn_photos_are_deterministic_jpegs_in_the_products_colour() -> None:
    first = render_product_photo("dresses", "Linen Wrap Dress", "sage green")
    assert first == render_product_photo("dresses", "Linen Wrap Dress", "sage green")
    picture = Image.open(io.BytesIO(first))
    assert picture.format == "JPEG" and picture.size == (320, 320)
    centre = picture.convert("RGB").getpixel((160, 200))
    assert isinstance(centre, tuple) and centre[1] > centre[0] and centre[1] > centre[2]  # green
    shoe = render_product_photo("shoes", "Trail Running Shoes", "sage green")
    assert shoe != first  # the silhouette follows the category


def test_colour_and_size_terms_make_filters_forgiving() -> None:
    assert colour_terms("Ecru and Navy Stripe") == [
        "ecru and navy stripe", "ecru", "navy", "stripe",
    ]  # fmt: skip
    assert size_terms(["s/m", "XL"]) == ["S/M", "S", "M", "XL"]


# --- indexing -----------------------------------------------------------------------------------


def test_indexing_is_idempotent_by_content_hash(store: EdgeVectorStore, tmp_path: Path) -> None:
    paths = photos(tmp_path / "img", 5)
    items = [item(f"P-{i}", p) for i, p in enumerate(paths)]
    images, texts = FakeImages(), FakeTexts()
    indexer = ProductIndexer(store, images, texts, batch_size=2)

    first = indexer.sync(items)
    assert (first.images_embedded, first.texts_embedded) == (5, 5)
    assert store.count(PRODUCTS) == 5

    again = indexer.sync(items)
    assert again.unchanged == 5 and again.changed == 0 and images.embedded == 5

    # stock and price change the payload only; a new photo re-embeds that photo only
    items[0] = item("P-0", paths[0], stock={"S": 0, "M": 0}, price=Decimal("9.99"))
    paths[1].write_bytes(b"a new photo")
    report = indexer.sync(items)
    assert (report.payload_updated, report.images_embedded, report.texts_embedded) == (1, 1, 0)
    [p0] = store.retrieve(PRODUCTS, ["P-0"], with_vectors=True)
    assert p0.payload["in_stock"] is False and p0.payload["price"] == 9.99
    assert set(p0.vectors) == {"image", "text"}  # vectors kept through the payload update

    # a product gone from the catalogue leaves the index
    report = indexer.sync(items[:4])
    assert report.removed == 1 and store.count(PRODUCTS) == 4


def test_unreadable_and_missing_photos_are_reported_without_stopping(
    store: EdgeVectorStore, tmp_path: Path
) -> None:
    good, broken = photos(tmp_path / "img", 2)
    broken.write_bytes(b"broken bytes")
    items = [
        item("P-1", good),
        item("P-2", broken),
        item("P-3", tmp_path / "nowhere.jpg"),
        item("P-4", None),
    ]
    report = ProductIndexer(store, FakeImages(), FakeTexts()).sync(items)
    assert [sku for sku, _ in report.failures] == ["P-3", "P-2"]
    assert "unreadable" in report.failures[1][1] and "cannot read" in report.failures[0][1]
    assert store.count(PRODUCTS) == 4  # all findable by text; only P-1 by photo
    with_image = [p.id for p in store.retrieve(PRODUCTS, ["P-1", "P-2", "P-3", "P-4"], True)
                  if "image" in p.vectors]  # fmt: skip
    assert with_image == ["P-1"]


def test_an_interrupted_run_resumes_where_it_stopped(
    store: EdgeVectorStore, tmp_path: Path
) -> None:
    items = [item(f"P-{i}", p) for i, p in enumerate(photos(tmp_path / "img", 7))]
    with pytest.raises(KeyboardInterrupt):
        ProductIndexer(store, FakeImages(fail_after=4), FakeTexts(), batch_size=2).sync(items)
    assert store.count(PRODUCTS) == 4  # two batches made it
    images = FakeImages()
    report = ProductIndexer(store, images, FakeTexts(), batch_size=2).sync(items)
    assert images.embedded == 3 and report.unchanged == 4 and store.count(PRODUCTS) == 7


def test_a_new_image_model_rebuilds_the_collection(store: EdgeVectorStore, tmp_path: Path) -> None:
    items = [item("P-1", photos(tmp_path / "img", 1)[0])]
    ProductIndexer(store, FakeImages(), FakeTexts()).sync(items)

    class Wider(FakeImages):
        model_id = "fake-image:v2"
        dim = 16

        def encode(self, images: Sequence[bytes]) -> list[np.ndarray | ImageRejected]:
            return [np.ones(16, dtype=np.float32) / 4 for _ in images]

    report = ProductIndexer(store, Wider(), FakeTexts()).sync(items)
    assert report.images_embedded == 1
    [point] = store.retrieve(PRODUCTS, ["P-1"], with_vectors=True)
    assert len(point.vectors["image"]) == 16 and point.payload["image_model"] == "fake-image:v2"


# --- filters ------------------------------------------------------------------------------------


def _catalogue(store: EdgeVectorStore) -> None:
    store.ensure_collection(products_spec(DIM, 4))
    rows = [
        ("A-1", "shirts", 19.9, "navy", ["S", "M"]),
        ("A-2", "shirts", 49.0, "sage green", ["L"]),
        ("A-3", "dresses", 39.0, "light blue", ["S/M"]),
        ("A-4", "shirts", 25.0, "red", []),  # sold out
        ("A-5", "shirts", 35.0, "indigo", ["M"]),
    ]
    points = []
    for i, (sku, category, price, colour, sizes) in enumerate(rows):
        vector = np.zeros(DIM, dtype=np.float32)
        vector[0], vector[1] = 1.0, 0.1 * i  # A-1 nearest the query, then A-2, ...
        points.append(
            VectorPoint(sku, {"image": vector.tolist()}, {
                "sku": sku, "product_id": i + 1, "category": category, "price": price,
                "currency": "EUR", "in_stock": bool(sizes), "colour": colour_terms(colour),
                "brand": "B", "sizes": size_terms(sizes), "image_model": "m",
            })
        )  # fmt: skip
    store.upsert(PRODUCTS, points)


def _search(store: EdgeVectorStore, caption: str, **kwargs: object) -> list[str]:
    query = [1.0] + [0.0] * (DIM - 1)
    flt = payload_filter(parse_constraints(caption), **kwargs)  # type: ignore[arg-type]
    return [str(h.id) for h in store.search(PRODUCTS, "image", query, 10, flt)]


def test_caption_constraints_filter_the_image_search(store: EdgeVectorStore) -> None:
    _catalogue(store)
    assert _search(store, "") == ["A-1", "A-2", "A-3", "A-5"]  # in stock only
    assert _search(store, "like this but under 40") == ["A-1", "A-3", "A-5"]
    assert _search(store, "in blue") == ["A-1", "A-3", "A-5"]  # navy, light blue, indigo
    assert _search(store, "in blue, size M") == ["A-1", "A-3", "A-5"]  # S/M counts as M
    assert _search(store, "blue shirt size M between 30 and 40") == ["A-5"]
    assert _search(store, "a dress") == ["A-3"]
    assert _search(store, "", cheaper_than=Decimal("35.00")) == ["A-1"]  # 35 itself is not
    assert _search(store, "", exclude_sku="A-1") == ["A-2", "A-3", "A-5"]


def test_filters_are_loosened_one_at_a_time() -> None:
    steps = loosenings(parse_constraints("red shirt under 20"))
    assert [dropped for _, dropped in steps] == [None, "colour", "colour and price"]
    assert steps[-1][0].category == "shirts"  # what it is stays


# --- CSV import ---------------------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    migrate(engine)
    return engine


def _transaction(engine, fail_on: int | None = None):  # type: ignore[no-untyped-def]
    calls = {"n": 0}

    def run(work) -> None:  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if fail_on is not None and calls["n"] == fail_on:
            raise KeyboardInterrupt
        with session_scope(engine) as session:
            work(session)

    return run


CSV = """id,title,description,category,price,currency,colour,brand,stock,image
T-1,Linen Shirt,Cool,Shirts,49.90,EUR,sand,Acme,S:2; M:0; L:5,t1.jpg
T-2,Wool Coat,,jackets,199,EUR,camel,Acme,M:1,missing.jpg
T-3,No Price,,jackets,,EUR,red,Acme,M:1,
T-4,Bad Stock,,jackets,10,EUR,red,Acme,M=1,
T-5,Cap,,accessories,"12,50",eur,stone,Acme,7,
"""


def test_csv_import_reports_bad_rows_and_is_idempotent(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "t1.jpg").write_bytes(render_product_photo("shirts", "Linen Shirt", "sand"))
    csv_path = tmp_path / "products.csv"
    csv_path.write_text(CSV)
    report = import_catalog(_transaction(engine), csv_path, tmp_path)
    assert (report.rows, report.created) == (5, 3)
    assert [line for line, _ in report.bad_rows] == [4, 5]
    assert "missing price" in report.bad_rows[0][1] and "size:units" in report.bad_rows[1][1]
    assert report.missing_images == [("T-2", str((tmp_path / "missing.jpg").resolve()))]
    with session_scope(engine) as session:
        shirt = session.exec(select(Product).where(Product.sku == "T-1")).one()
        assert shirt.category == "shirts" and shirt.image_path == str(tmp_path / "t1.jpg")
        cap = session.exec(select(Product).where(Product.sku == "T-5")).one()
        assert cap.price == Decimal("12.50") and cap.currency == "EUR"
        items = {i.sku: i for i in catalog_items(session, tmp_path)}
    assert items["T-1"].stock == {"S": 2, "M": 0, "L": 5} and items["T-5"].stock == {"One size": 7}

    again = import_catalog(_transaction(engine), csv_path, tmp_path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)

    csv_path.write_text(CSV.replace("S:2; M:0; L:5", "S:2; M:4"))
    changed = import_catalog(_transaction(engine), csv_path, tmp_path)
    assert (changed.updated, changed.unchanged) == (1, 2)
    with session_scope(engine) as session:
        stock = {v.size: v.stock for v in session.exec(select(ProductVariant)).all()
                 if v.sku.startswith("T-1")}  # fmt: skip
    assert stock == {"S": 2, "M": 4, "L": 0}  # a size no longer listed is sold out, not deleted


def test_csv_import_resumes_after_an_interruption(
    engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setattr("bot.catalog_import.BATCH", 2)
    rows = "".join(f"R-{i},Shirt {i},,shirts,10,EUR,red,B,M:1,\n" for i in range(7))
    csv_path = tmp_path / "products.csv"
    csv_path.write_text("id,title,description,category,price,currency,colour,brand,stock,image\n"
                        + rows)  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        import_catalog(_transaction(engine, fail_on=3), csv_path, None)
    with Session(engine) as session:
        assert len(session.exec(select(Product)).all()) == 4  # two batches committed
    report = import_catalog(_transaction(engine), csv_path, None)
    assert (report.created, report.unchanged) == (3, 4)


def test_a_file_without_the_required_columns_is_refused(tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    csv_path = tmp_path / "products.csv"
    csv_path.write_text("name,cost\nShirt,10\n")
    with pytest.raises(BadRow, match="no column"):
        import_catalog(_transaction(engine), csv_path, None)


def test_stock_notation() -> None:
    assert parse_stock("XS:3; S:0|M : 2") == {"XS": 3, "S": 0, "M": 2}
    assert parse_stock("") == {} and parse_stock("4") == {"One size": 4}


def test_index_report_json_lists_failures() -> None:
    report = IndexReport(products=2, failures=[("A", "unreadable image")])
    assert report.to_json()["failures"] == [{"sku": "A", "reason": "unreadable image"}]


# --- `bot run` ----------------------------------------------------------------------------------


def test_bot_run_starts_the_vision_service_unless_vision_url_names_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.launcher import child_specs
    from bot.settings import Settings

    monkeypatch.delenv("VISION_URL", raising=False)
    specs = {s.name: s for s in child_specs(Settings(_env_file=None), [5005])}  # type: ignore[call-arg]
    vision = specs["vision"]
    assert vision.argv[1:3] == ["-m", "vision.service"]
    assert vision.argv[3:] == ["--host", "127.0.0.1", "--port", "8090"]
    assert vision.env is not None and "MALLOC_MMAP_THRESHOLD_" in vision.env  # set before exec
    assert vision.health_url == "http://127.0.0.1:8090/readyz"  # healthy = model loaded, warm
    assert "vision" not in specs["app"].depends_on  # the chat does not wait for photo search

    external = Settings(_env_file=None, vision_url="http://gpu-node:8090")  # type: ignore[call-arg]
    assert "vision" not in {s.name for s in child_specs(external, [5005])}


def test_the_bot_names_what_the_photo_shows_only_when_sure_and_in_shop_words() -> None:
    from bot.photo_search import looks_like
    from vision.values import ImageLabel

    assert looks_like([ImageLabel("sneaker", 0.8)]) == "sneaker"
    assert looks_like([ImageLabel("jeans", 0.5)]) == "pair of jeans"
    assert looks_like([ImageLabel("sneaker", 0.2)]) is None  # not sure enough
    assert looks_like([ImageLabel("vestment", 0.9)]) is None  # not something a shop sells
    assert looks_like([]) is None
