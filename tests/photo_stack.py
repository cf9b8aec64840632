"""An app with photo search for tests and the bench: the real web channel, photo upload, router,
action endpoint and actions, with a stand-in for Rasa's (fixed) part of payload turns."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import Engine

from actions.photos import ActionPhotoSearch, ActionSimilarItems
from actions.products import ActionProductSearch
from bot.action_endpoint import ActionEndpoint
from bot.channels.base import Reply
from bot.channels.web import WebChannel
from bot.channels.web_photos import WebPhotos
from bot.demo_data import write_demo_shop
from bot.demo_photos import attach_demo_photos
from bot.outbox import Outbox
from bot.photo_index import ImageEncoder, ProductIndexer, catalog_items
from bot.rasa_client import replies_from_rasa
from bot.router import Router
from bot.services import Services
from bot.settings import Settings
from bot.shop import Shop
from bot.store.db import make_engine, migrate, session_scope
from bot.store.models import Product
from knowledge import MiniLMEncoder
from tests.conftest_store import TODAY

RULES = {
    "photo_search": "action_photo_search",
    "similar_items": "action_similar_items",
    "product_search": "action_product_search",
}


class RasaStandIn:
    """Rasa's part of a payload turn: run the rule's action at the app's action endpoint."""

    def __init__(self) -> None:
        self.webhook = ""
        self.calls: list[dict[str, Any]] = []

    async def send(self, conversation_id: str, text: str, metadata: dict[str, Any]) -> list[Reply]:
        match = re.match(r"^/([a-z_]+)", text)
        intent = match.group(1) if match else "product_search"
        tracker = {
            "sender_id": conversation_id,
            "slots": {"product": None},
            "latest_message": {
                "text": text,
                "intent": {"name": intent, "confidence": 1.0},
                "entities": [],
                "metadata": metadata,
            },
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
        call = {"next_action": RULES[intent], "sender_id": conversation_id, "tracker": tracker,
                "domain": {}, "version": "3.6.21"}  # fmt: skip
        self.calls.append(call)
        async with aiohttp.ClientSession() as http, http.post(self.webhook, json=call) as response:
            assert response.status == 200, await response.text()
            body = await response.json()
        return replies_from_rasa(body["responses"])

    async def in_form(self, conversation_id: str) -> bool:
        return False

    async def start_new_session(self, conversation_id: str) -> None:
        return None


@dataclass
class PhotoShop:
    engine: Engine
    shop: Shop
    services: Services
    url: str
    rasa: RasaStandIn

    async def upload(
        self, session: str, data: bytes, caption: str = "", **headers: str
    ) -> tuple[int, dict[str, Any]]:
        params = {"caption": caption} if caption else {}
        async with aiohttp.ClientSession() as http, http.post(
            f"{self.url}/api/v1/sessions/{session}/photos", data=data, params=params,
            headers={"Content-Type": "image/jpeg", **headers},
        ) as response:  # fmt: skip
            return response.status, await response.json()

    async def press(self, session: str, payload: str) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{self.url}/api/v1/chat", json={"session": session, "payload": payload}
            ) as response,
        ):
            assert response.status == 200
            body: dict[str, Any] = await response.json()
            return body["messages"][0]

    def product(self, product_id: int) -> Product:
        with session_scope(self.engine) as session:
            product = session.get(Product, product_id)
            assert product is not None
            return product


def demo_database(data_dir: Path, photos: Path | None = None, per_label: int = 4) -> Engine:
    engine = make_engine(f"sqlite:///{data_dir / 'shop.db'}")
    migrate(engine)
    with session_scope(engine) as session:
        write_demo_shop(session, TODAY)
        attach_demo_photos(session, data_dir, photos, per_label=per_label)
    return engine


async def start_photo_shop(
    data_dir: Path, engine: Engine, vision_url: str, images: ImageEncoder | None
) -> tuple[PhotoShop, TestServer]:
    """Start the app on a free port; with `images`, index the catalogue first."""
    settings = Settings(data_dir=data_dir, vision_url=vision_url, _env_file=None)  # type: ignore[call-arg]
    shop = Shop(engine=engine, settings=settings)
    services = Services(shop)
    if images is not None:
        with session_scope(engine) as session:
            items = catalog_items(session, data_dir)
        indexer = ProductIndexer(services.vectors(), images, MiniLMEncoder())
        report = await asyncio.to_thread(indexer.sync, items)
        assert not report.failures and report.images_embedded == len(items)
    rasa = RasaStandIn()
    router = Router(shop, rasa, Outbox(shop))  # type: ignore[arg-type]
    app = web.Application(client_max_size=32 * 1024 * 1024)
    ActionEndpoint(
        [ActionPhotoSearch(shop, services), ActionSimilarItems(shop, services),
         ActionProductSearch(shop)]
    ).mount(app)  # fmt: skip
    WebChannel(router, settings.max_message_chars).mount(app)
    WebPhotos(router, services).mount(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    rasa.webhook = f"{url}/webhook"
    return PhotoShop(engine, shop, services, url, rasa), server
