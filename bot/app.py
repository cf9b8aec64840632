"""The app process: web channel, router, outbox and Rasa's action endpoint in one aiohttp app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from aiohttp import web

from actions import build_actions
from bot.action_endpoint import ActionEndpoint
from bot.campaigns.analytics import Analytics
from bot.campaigns.compose import LinkSigner
from bot.campaigns.sender import CampaignSender, CampaignTransport
from bot.channels.web import WebChannel
from bot.channels.web_photos import WebPhotos
from bot.console import Console
from bot.console.auth import load_secret_key
from bot.console.campaigns import CampaignPages, recommender_of
from bot.console.customer import HandoffEndpoint
from bot.console.live import LiveHub
from bot.handoff import HumanMode
from bot.outbox import Outbox
from bot.rasa_client import RasaClient
from bot.router import Router
from bot.services import Services
from bot.settings import Settings
from bot.shop import Shop
from bot.store.db import make_engine, migrate

log = logging.getLogger(__name__)

SHOP_KEY = web.AppKey("shop", Shop)
ROUTER_KEY = web.AppKey("router", Router)
SERVICES_KEY = web.AppKey("services", Services)


def create_app(
    settings: Settings, shop: Shop | None = None, services: Services | None = None
) -> web.Application:
    if shop is None:
        engine = make_engine(settings.effective_database_url)
        migrate(engine)
        shop = Shop(engine=engine, settings=settings)
    if services is None:
        services = Services(shop)
    rasa = RasaClient(settings.rasa_urls, settings.rasa_timeout_seconds)
    outbox = Outbox(shop)
    hub = LiveHub(shop)  # the support console's live updates
    router = Router(shop, rasa, outbox, HumanMode(shop, on_change=hub.poke))

    # Rasa's action calls carry the whole tracker and domain; the chat API caps its own bodies.
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app[SHOP_KEY] = shop
    app[ROUTER_KEY] = router
    app[SERVICES_KEY] = services
    ActionEndpoint(build_actions(shop, services)).mount(app)
    web_channel = WebChannel(router, settings.max_message_chars)
    web_channel.mount(app)
    WebPhotos(router, services).mount(app)
    HandoffEndpoint(router, on_change=hub.poke).mount(app)
    console = Console(router, hub)
    console.mount(app)
    recommender = recommender_of(services)
    analytics = Analytics(shop.engine, recommender)
    signer = LinkSigner(load_secret_key(settings), settings.public_url)
    CampaignPages(console, analytics, signer, recommender).mount(app)
    telegram = _telegram_channel(router, settings, app)
    transports: dict[str, CampaignTransport] = {"web": web_channel}
    if telegram is not None:
        transports["telegram"] = telegram
    sender = CampaignSender(
        shop, transports, signer, recommender=services.recommendations,
        facts=analytics.facts, rate_per_s=settings.campaign_rate_per_s,
    )  # fmt: skip

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        rasa_ok = await rasa.healthy()
        return web.json_response({"rasa": rasa_ok}, status=200 if rasa_ok else 503)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await rasa.start()
        if telegram is not None:
            await telegram.start()
        tasks = [
            asyncio.create_task(outbox.retry_forever(settings.outbox_retry_seconds)),
            asyncio.create_task(_retry_inbox(router, settings.outbox_retry_seconds)),
            asyncio.create_task(asyncio.to_thread(services.warm_up)),
        ]
        if settings.campaign_sender:
            tasks.append(asyncio.create_task(sender.run_forever()))
        if settings.recsys_train_hours > 0:
            tasks.append(asyncio.create_task(_train_recommendations(services, settings)))
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if telegram is not None:
            await telegram.stop()
        await rasa.close()
        services.close()

    app.cleanup_ctx.append(lifecycle)
    return app


def _telegram_channel(router: Router, settings: Settings, app: web.Application) -> Any:
    """The Telegram channel when a bot token is configured (imported only then)."""
    if not settings.telegram_bot_token:
        return None
    from bot.channels.telegram import TelegramChannel

    channel = TelegramChannel(router, settings)
    channel.mount(app)
    return channel


async def _retry_inbox(router: Router, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await router.retry_unhandled(older_than=timedelta(seconds=interval_s))
        except Exception:  # keep retrying on the next round
            log.exception("inbox retry round failed")


async def _train_recommendations(services: Services, settings: Settings) -> None:
    """Retrain the recommender on a schedule; clicks and purchases since the last run count."""
    from bot.recommendations import train

    while True:
        await asyncio.sleep(settings.recsys_train_hours * 3600)
        try:
            path = await asyncio.to_thread(
                train, services.shop.engine, settings.data_dir / "recsys"
            )
            await asyncio.to_thread(services.reload_recommendations)
            log.info("recommendations retrained: %s", path)
        except Exception:  # try again at the next round
            log.exception("scheduled recommendation training failed")


def serve(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    web.run_app(
        create_app(settings),
        host=settings.app_host,
        port=settings.app_port,
        print=lambda text: log.info("%s", text),
        access_log=None,
    )
