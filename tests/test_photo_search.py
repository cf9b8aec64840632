"""Photo search end to end: the widget's upload API → router → action → vision service → Qdrant
→ product cards, with the real vision model and a real (embedded) vector store.

Rasa's part of these turns is fixed (a `/photo_search` or `/similar_items{...}` payload runs its
rule's action), so a stand-in plays it: it calls the app's own action endpoint with the tracker
Rasa would send. The same turns through a trained Rasa model are covered by the live-stack tests.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from actions.parsing import payload_args
from actions.photos import ASK_FOR_PHOTO
from bot.photo_index import LocalImageEncoder
from bot.product_photos import render_product_photo
from tests.live_stack import free_port
from tests.photo_stack import PhotoShop, demo_database, start_photo_shop
from tests.vision_fixtures import CLOTHING, png_header_only
from vision import ImageEmbedder, load_model
from vision.service import ServiceConfig, create_app

pytestmark = pytest.mark.asyncio(loop_scope="session")

MODEL = "efficientnet_lite0"  # the quickest; the path is the same for every model


@pytest.fixture(scope="module")
def embedder() -> ImageEmbedder:
    return ImageEmbedder(load_model(MODEL))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def vision_url(embedder: ImageEmbedder) -> AsyncIterator[str]:
    server = TestServer(create_app(ServiceConfig(max_batch=8), embedder), host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            async with http.get(f"{url}/readyz") as response:
                if response.status == 200:
                    break
            await asyncio.sleep(0.05)
    yield url
    await server.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def drawn(
    tmp_path_factory: pytest.TempPathFactory, vision_url: str, embedder: ImageEmbedder
) -> AsyncIterator[PhotoShop]:
    data_dir = tmp_path_factory.mktemp("drawn-shop")
    engine = await asyncio.to_thread(demo_database, data_dir)
    photo_shop, server = await start_photo_shop(
        data_dir, engine, vision_url, LocalImageEncoder(embedder=embedder)
    )
    yield photo_shop
    await server.close()
    photo_shop.services.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def vision_down(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PhotoShop]:
    data_dir = tmp_path_factory.mktemp("vision-down")
    engine = await asyncio.to_thread(demo_database, data_dir)
    dead = f"http://127.0.0.1:{free_port()}"
    photo_shop, server = await start_photo_shop(data_dir, engine, dead, None)
    yield photo_shop
    await server.close()
    photo_shop.services.close()


# --- the upload endpoint ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"", 400, "empty_photo"),
        (b"MZ\x90\x00 definitely not a picture", 415, "not_an_image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 415, "unsupported_image"),
        (png_header_only(10_000, 5_000), 413, "too_many_pixels"),
        (b"\xff\xd8\xff" + b"0" * (10 * 1024 * 1024), 413, "photo_too_large"),
    ],
    ids=["empty", "not-an-image", "corrupt", "40-megapixels", "over-10-MB"],
)
async def test_the_upload_refuses_what_is_not_a_usable_photo(
    vision_down: PhotoShop, body: bytes, status: int, code: str
) -> None:
    got, answer = await vision_down.upload("refused-upload-1", body)
    assert (got, answer["error"]["code"]) == (status, code)
    assert answer["error"]["message"]
    assert not vision_down.rasa.calls or all(
        c["sender_id"] != "web:refused-upload-1" for c in vision_down.rasa.calls
    )


async def test_a_malformed_session_is_refused(vision_down: PhotoShop) -> None:
    status, answer = await vision_down.upload("bad session!", b"\xff\xd8\xff")
    assert (status, answer["error"]["code"]) == (400, "invalid_session")


async def test_product_photos_are_served(vision_down: PhotoShop) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{vision_down.url}/media/products/1") as response:
            assert response.status == 200 and response.content_type == "image/jpeg"
            assert (await response.read())[:3] == b"\xff\xd8\xff"
        async with http.get(f"{vision_down.url}/media/products/999999") as response:
            assert response.status == 404


# --- when the vision service is down ------------------------------------------------------------


async def test_with_the_vision_service_down_the_bot_offers_text_search(
    vision_down: PhotoShop,
) -> None:
    photo = render_product_photo("shirts", "Linen Shirt", "sand")
    status, answer = await vision_down.upload("vision-down-1", photo)
    assert status == 200
    [reply] = answer["messages"]
    assert "photo search is briefly unavailable" in reply["text"] and not reply["cards"]

    status, answer = await vision_down.upload("vision-down-2", photo, caption="linen shirt")
    [reply] = answer["messages"]
    assert "briefly unavailable" in reply["text"]
    assert reply["cards"] and reply["cards"][0]["title"] == "Linen Camp-Collar Shirt"
    # the turn carried the stored photo to the action
    call = vision_down.rasa.calls[-1]
    assert call["tracker"]["latest_message"]["metadata"]["media"]["id"] == answer["photo"]["id"]
    assert call["tracker"]["latest_message"]["metadata"]["caption"] == "linen shirt"


async def test_without_a_photo_the_bot_asks_for_one(vision_down: PhotoShop) -> None:
    reply = await vision_down.press("no-photo-1", "/photo_search")
    assert reply["text"] == ASK_FOR_PHOTO


async def test_similar_items_before_the_catalogue_is_indexed(vision_down: PhotoShop) -> None:
    reply = await vision_down.press("not-indexed-1", '/similar_items{"product_id": 1}')
    assert "isn't ready" in reply["text"]


# --- the real thing -----------------------------------------------------------------------------


async def test_a_photo_finds_products_of_the_same_kind(drawn: PhotoShop) -> None:
    # a sneaker that is not in the catalogue, in a colour no shoe there has
    photo = render_product_photo("shoes", "Running Sneakers", "orange")
    status, answer = await drawn.upload("photo-e2e-1", photo)
    assert status == 200, answer
    [reply] = answer["messages"]
    cards = reply["cards"]
    assert cards and "closest matches" in reply["text"]
    first = drawn.product(cards[0]["product_id"])
    assert first.category == "shoes"
    assert [b["title"] for b in cards[0]["buttons"]] == ["More like this", "Cheaper", "Details"]
    assert cards[0]["image_url"] == f"/media/products/{first.id}"
    async with aiohttp.ClientSession() as http, http.get(drawn.url + cards[0]["image_url"]) as r:
        assert r.status == 200 and r.content_type == "image/jpeg"

    # "Cheaper": image neighbours of that product, all cheaper than it
    cheaper = await drawn.press("photo-e2e-1", cards[0]["buttons"][1]["payload"])
    assert cheaper["cards"], cheaper
    assert all(Decimal(c["price"]) < first.price for c in cheaper["cards"])
    # "More like this": neighbours, the product itself excluded
    similar = await drawn.press("photo-e2e-1", cards[0]["buttons"][0]["payload"])
    assert similar["cards"] and first.id not in [c["product_id"] for c in similar["cards"]]
    assert drawn.product(similar["cards"][0]["product_id"]).category == "shoes"


async def test_the_caption_filters_and_more_pages(drawn: PhotoShop) -> None:
    photo = render_product_photo("dresses", "Summer Dress", "red")
    status, answer = await drawn.upload("photo-e2e-2", photo, caption="like this but under 60")
    assert status == 200
    [reply] = answer["messages"]
    assert reply["cards"] and all(Decimal(c["price"]) <= 60 for c in reply["cards"])
    assert "under 60" in reply["text"]

    status, answer = await drawn.upload("photo-e2e-3", photo)
    [first_page] = answer["messages"]
    [more] = [b for b in first_page["buttons"] if b["title"] == "Show more"]
    assert payload_args(more["payload"])["offset"] == 5
    second_page = await drawn.press("photo-e2e-3", more["payload"])
    ids = {c["product_id"] for c in first_page["cards"]}
    assert second_page["cards"] and not ids & {c["product_id"] for c in second_page["cards"]}


def _held_out(label: str, n: int) -> list[Path]:
    """Photos of `label` from the end of the folder (the demo catalogue uses the first ones)."""
    with (CLOTHING / "labels.csv").open(newline="", encoding="utf-8") as handle:
        names = sorted(r["image"] for r in csv.DictReader(handle)
                       if r["label"] == label and r["kids"] == "False")  # fmt: skip
    return [CLOTHING / "images" / f"{name}.jpg" for name in names[-n:]]


@pytest.fixture(scope="module")
def real_photos() -> Iterator[Path]:
    if not (CLOTHING / "labels.csv").exists():
        pytest.skip(f"no labelled photos at {CLOTHING}")
    yield CLOTHING


async def test_a_real_photo_finds_a_product_of_its_category_in_a_real_photo_catalogue(
    real_photos: Path,
    tmp_path_factory: pytest.TempPathFactory,
    vision_url: str,
    embedder: ImageEmbedder,
) -> None:
    data_dir = tmp_path_factory.mktemp("real-shop")
    engine = await asyncio.to_thread(demo_database, data_dir, real_photos, 4)
    photo_shop, server = await start_photo_shop(
        data_dir, engine, vision_url, LocalImageEncoder(embedder=embedder)
    )
    try:
        for label, category in (("Shoes", "shoes"), ("Pants", "trousers"), ("Dress", "dresses")):
            hits = 0
            for i, path in enumerate(_held_out(label, 3)):
                status, answer = await photo_shop.upload(
                    f"real-photo-{label}-{i}", path.read_bytes()
                )
                assert status == 200, answer
                [reply] = answer["messages"]
                top = photo_shop.product(reply["cards"][0]["product_id"])
                hits += top.category == category
            assert hits >= 2, f"{label}: {hits}/3 photos found a product of their category"
    finally:
        await server.close()
        photo_shop.services.close()


# --- the widget in a real browser ---------------------------------------------------------------


@pytest.mark.browser
async def test_the_widget_uploads_drops_and_pastes_photos(drawn: PhotoShop) -> None:
    from tests.test_widget_browser import CHROMIUM_ARGS, chromium_path

    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed (scripts/setup.sh --browser installs Debian's)")
    from playwright.async_api import async_playwright

    sneaker = render_product_photo("shoes", "Running Sneakers", "orange")
    dress = render_product_photo("dresses", "Summer Dress", "red")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await page.goto(drawn.url + "/")
        await page.wait_for_selector("body[data-chat-state='connected']")

        async def cards_after(count: int) -> list[str]:
            await page.wait_for_function(
                "n => document.querySelectorAll('#chat-log .msg.bot').length > n", arg=count
            )
            last = page.locator("#chat-log .msg.bot").last
            return list(await last.locator(".card").evaluate_all(
                "cards => cards.map(c => c.dataset.productId)"
            ))  # fmt: skip

        def bots() -> Any:
            return page.locator("#chat-log .msg.bot").count()

        # 1. the upload button (its file input), with a caption typed first
        await page.fill("#chat-input", "under 150")
        before = await bots()
        await page.set_input_files(
            "#chat-photo-input",
            files=[{"name": "sneaker.jpg", "mimeType": "image/jpeg", "buffer": sneaker}],
        )
        uploaded = await cards_after(before)
        assert uploaded and drawn.product(int(uploaded[0])).category == "shoes"
        bubble = page.locator("#chat-log .msg.user.msg--photo").last
        assert await bubble.locator("img.msg__photo").count() == 1
        assert "under 150" in await bubble.inner_text()
        assert await page.input_value("#chat-input") == ""
        image_loaded = "img => img.complete && img.naturalWidth > 0"
        first_card_image = page.locator("#chat-log .msg.bot").last.locator("img.card__image")
        await first_card_image.first.wait_for()
        assert await first_card_image.first.evaluate(image_loaded)

        # 2. drag and drop onto the chat panel, 3. paste into the message field
        for how in ("drop", "paste"):
            before = await bots()
            await page.evaluate(
                """([how, bytes]) => {
                    const file = new File([new Uint8Array(bytes)], "dress.jpg",
                                          {type: "image/jpeg"});
                    const data = new DataTransfer();
                    data.items.add(file);
                    if (how === "paste") {
                        document.querySelector("#chat-input").dispatchEvent(
                            new ClipboardEvent("paste", {clipboardData: data, bubbles: true,
                                                         cancelable: true}));
                    } else {
                        const panel = document.querySelector("#chat-panel");
                        for (const type of ["dragenter", "dragover", "drop"]) {
                            panel.dispatchEvent(new DragEvent(type, {dataTransfer: data,
                                                bubbles: true, cancelable: true}));
                        }
                    }
                }""",
                [how, list(dress)],
            )
            found = await cards_after(before)
            assert found and drawn.product(int(found[0])).category == "dresses", how
        assert await page.locator("#chat-drop-hint").is_hidden()

        # a file that is not a photo is refused in the page, with a clear message
        await page.set_input_files(
            "#chat-photo-input",
            files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}],
        )
        error = page.locator("#chat-log .msg.error").last
        await error.wait_for()
        assert "JPEG, PNG" in await error.inner_text()
        await browser.close()
