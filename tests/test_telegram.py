"""The Telegram channel against a fake Bot API on loopback and the real Rasa + app stack.

The fake (tests/fake_telegram.py) speaks the real JSON; the app runs unchanged, pointed at it
through TELEGRAM_BASE_URL / TELEGRAM_BASE_FILE_URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from telegram.ext import AIORateLimiter, ExtBot

from bot.channels.base import Button, ProductCard, Reply
from bot.channels.telegram_limits import PerChatRateLimiter
from bot.channels.telegram_render import SendAlbum, SendPhoto, SendText, render, split_text
from bot.store import channel_state, conversations
from bot.store.db import make_engine, session_scope
from bot.store.models import ChannelIdentity, Message
from tests.conftest import ensure_model
from tests.fake_telegram import FakeTelegram
from tests.live_stack import ROOT, Stack, free_port, start_stack, wait_http

TOKEN = "7000001:polling-test-token"
WEBHOOK_TOKEN = "7000002:webhook-test-token"
MAX_PHOTO_BYTES = 200_000


def png(width: int = 8, height: int = 8) -> bytes:
    """A real (tiny) PNG photo."""
    raw = b"".join(b"\x00" + bytes([(y * 30) % 256, 90, 128]) * width for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


# --- rendering and rate limiting without the stack -------------------------------------------


def test_long_text_is_split_at_4096_on_word_boundaries() -> None:
    text = ("word " * 2000).strip()  # 9999 characters
    parts = split_text(text)
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts)
    assert " ".join(parts) == text
    emoji = "😀" * 3000  # two UTF-16 units each: Telegram counts 6000
    assert [len(p) for p in split_text(emoji)] == [2048, 952]


def test_cards_render_as_photo_or_album_with_buttons_and_capped_captions() -> None:
    payload = '/add_to_cart{"product_id": 12, "size": "M", "from": "telegram-card"}'  # 68 bytes
    buy = Button("Add to cart", payload)
    card = ProductCard(12, "Linen shirt", "x" * 2000, "49.00", "EUR", "/static/p/12.jpg", (buy,))
    ops = render(
        Reply(text="Here it is", cards=(card,)), {buy.payload: "abc"}, "https://shop.example"
    )
    assert isinstance(ops[0], SendText) and isinstance(ops[1], SendPhoto)
    assert ops[1].photo == "https://shop.example/static/p/12.jpg"
    assert len(ops[1].caption) <= 1024
    assert ops[1].keyboard == ((("Add to cart", "~abc"),),)
    album = render(Reply(cards=(card, card, card)), {buy.payload: "abc"}, "https://s")
    assert isinstance(album[0], SendAlbum) and len(album[0].photos) == 3
    assert isinstance(album[1], SendText) and len(album[1].keyboard) == 3


async def _stall_of_other_chat(limiter: Any, fake: FakeTelegram, token: str) -> float:
    """Chat 1 is throttled for 2 s; how long does chat 2's message, sent 0.1 s later, take?"""
    bot = ExtBot(token, base_url=fake.base_url, rate_limiter=limiter)
    await bot.initialize()
    fake.fail("sendMessage", 429, chat_id=1, times=1, retry_after=2)
    throttled = asyncio.create_task(bot.send_message(1, "to the throttled chat"))
    await asyncio.sleep(0.1)
    start = time.monotonic()
    await bot.send_message(2, "to another chat")
    stall = time.monotonic() - start
    await throttled
    await bot.shutdown()
    return stall


def test_retry_after_on_one_chat_stalls_others_with_ptb_limiter_but_not_ours() -> None:
    fake = FakeTelegram().start()
    try:
        ptb = asyncio.run(_stall_of_other_chat(AIORateLimiter(max_retries=2), fake, "1:ptb"))
        ours = asyncio.run(_stall_of_other_chat(PerChatRateLimiter(), fake, "1:ours"))
    finally:
        fake.stop()
    print(f"\nother chat's send during a 2 s RetryAfter: AIORateLimiter {ptb:.3f}s, "
          f"PerChatRateLimiter {ours:.3f}s")  # fmt: skip
    assert ptb > 1.5  # PTB pauses every request: the reason our limiter exists
    assert ours < 0.5


# --- the live stack ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegram]:
    server = FakeTelegram().start()
    yield server
    server.stop()


def telegram_env(fake: FakeTelegram, token: str = TOKEN) -> dict[str, str]:
    return {
        "TELEGRAM_BOT_TOKEN": token,
        "TELEGRAM_BASE_URL": fake.base_url,
        "TELEGRAM_BASE_FILE_URL": fake.base_file_url,
        "TELEGRAM_POLL_LEASE_SECONDS": "3",
        "TELEGRAM_MAX_PHOTO_BYTES": str(MAX_PHOTO_BYTES),
    }


@pytest.fixture(scope="module")
def tg(fake: FakeTelegram, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    ensure_model()
    live = start_stack(Path(tmp_path_factory.mktemp("telegram")), extra_env=telegram_env(fake))
    fake.wait_for(lambda: fake.calls(TOKEN, "getUpdates"), 30, "the app to poll")
    yield live
    live.stop()


def engine_of(stack: Stack) -> Any:
    return make_engine(f"sqlite:///{stack.data_dir / 'shop.db'}")


class Customer:
    """One Telegram user chatting with the bot through the fake server."""

    def __init__(self, fake: FakeTelegram, stack: Stack, chat_id: int, token: str = TOKEN):
        self.fake, self.stack, self.chat_id, self.token = fake, stack, chat_id, token
        self.engine = engine_of(stack)

    def seen(self) -> list[str]:
        return self.fake.delivered_texts(self.token, self.chat_id)

    def answered(self, update_id: int) -> bool:
        with session_scope(self.engine) as session:
            stored = session.exec(
                select(Message).where(
                    Message.conversation_id == f"telegram:{self.chat_id}",
                    Message.client_message_id == str(update_id),
                )
            ).first()
            if stored is None or stored.status != "handled":
                return False
            assert stored.id is not None
            replies = conversations.replies_to(session, stored.id)
            return bool(replies) and all(r.status == "delivered" for r in replies)

    def push(self, update: dict[str, Any], timeout: float = 30) -> str:
        before = len(self.seen())
        update_id = self.fake.push(self.token, update)
        self.fake.wait_for(lambda: self.answered(update_id), timeout, f"answer to {update}")
        return "\n".join(self.seen()[before:])

    def say(self, text: str) -> str:
        return self.push({"message": self.fake.message(self.chat_id, text)})

    def last_bot_message(self) -> dict[str, Any]:
        calls = [
            c for c in self.fake.calls(self.token, "sendMessage", self.chat_id) if c.status == 200
        ]
        params = calls[-1].params
        return self.fake._bot_message(self.chat_id, text=params["text"],
                                      reply_markup=params.get("reply_markup"))  # fmt: skip


def stored_inbound(stack: Stack, chat_id: int) -> list[Message]:
    with session_scope(engine_of(stack)) as session:
        return [
            m
            for m in conversations.transcript(session, f"telegram:{chat_id}", 200)
            if m.direction == "in"
        ]


def shipped_order(stack: Stack, index: int) -> dict[str, Any]:
    return [r for r in stack.orders() if r["status"] == "shipped"][index]


def test_full_order_status_conversation(fake: FakeTelegram, tg: Stack) -> None:
    ana = Customer(fake, tg, 1001)
    greeting = ana.say("/start")
    assert "Northwind Threads assistant" in greeting
    assert "order number" in ana.say("where is my order?").lower()
    order = shipped_order(tg, 0)
    assert "e-mail" in ana.say(order["number"]).lower()
    answer = ana.say(order["email"])
    assert order["tracking_number"] in answer and order["carrier"] in answer
    assert fake.calls(TOKEN, "sendChatAction", 1001), "typing… while the bot works"
    # the verified Telegram user is now linked to the customer, and stays linked
    with session_scope(engine_of(tg)) as session:
        identity = session.exec(
            select(ChannelIdentity).where(
                ChannelIdentity.channel == "telegram", ChannelIdentity.external_id == "1001"
            )
        ).one()
        assert identity.customer_id is not None


def test_start_deep_link_help_and_stop(fake: FakeTelegram, tg: Stack) -> None:
    ben = Customer(fake, tg, 1002)
    assert "Northwind Threads assistant" in ben.say("/start summer-campaign-42")
    assert "Here's what I can help with" in ben.say("/help")
    assert "won't get marketing messages" in ben.say("/stop")
    first = stored_inbound(tg, 1002)[0]
    assert first.payload == "/greet" and first.meta["start_param"] == "summer-campaign-42"
    with session_scope(engine_of(tg)) as session:
        consent = channel_state.current_consent(session, "telegram", "1002")
        assert consent is not None and not consent.opted_in and consent.source == "telegram:/stop"


def test_campaign_deep_link_opts_in_and_stop_typed_opts_out(fake: FakeTelegram, tg: Stack) -> None:
    dana = Customer(fake, tg, 1012)
    assert "you'll get our news and offers" in dana.say("/start subscribe-winter")
    with session_scope(engine_of(tg)) as session:
        consent = channel_state.current_consent(session, "telegram", "1012")
        assert consent is not None and consent.opted_in
        assert consent.source == "telegram:/start subscribe-winter"
    assert "won't get any more marketing messages" in dana.say("STOP")
    with session_scope(engine_of(tg)) as session:
        consent = channel_state.current_consent(session, "telegram", "1012")
        assert consent is not None and not consent.opted_in


def test_inline_buttons_round_trip_with_a_long_payload(fake: FakeTelegram, tg: Stack) -> None:
    cleo = Customer(fake, tg, 1003)
    cleo.say("/start")
    greeting = cleo.last_bot_message()
    rows = greeting["reply_markup"]["inline_keyboard"]
    assert rows[0][0]["callback_data"] == "/order_status"
    asked = cleo.push({"callback_query": _query(fake, 1003, greeting, "/order_status")})
    assert "order number" in asked.lower()
    cleo.say("stop")
    # a reply whose button payload is longer than Telegram's 64 bytes of callback data
    long_payload = '/capabilities{"source": "a telegram button whose payload is far over 64 bytes"}'
    with session_scope(engine_of(tg)) as session:
        conversations.record_outbound(
            session,
            "telegram:1003",
            Reply(text="Anything else?", buttons=(Button("Show me", long_payload),)).to_json(),
            None,
        )
    fake.wait_for(lambda: "Anything else?" in cleo.seen(), 10, "the queued reply")
    message = cleo.last_bot_message()
    data = message["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert data.startswith("~") and len(data.encode()) <= 64
    answer = cleo.push({"callback_query": _query(fake, 1003, message, data)})
    assert "Here's what I can help with" in answer
    pressed = stored_inbound(tg, 1003)[-1]
    assert pressed.payload == long_payload and pressed.meta["title"] == "Show me"
    assert len(fake.calls(TOKEN, "answerCallbackQuery")) >= 2  # spinners stopped


def _query(fake: FakeTelegram, chat_id: int, message: dict[str, Any], data: str) -> dict[str, Any]:
    return {
        "id": f"q{time.monotonic_ns()}",
        "from": {"id": chat_id, "is_bot": False, "first_name": "Ana"},
        "chat_instance": "1",
        "message": message,
        "data": data,
    }


def test_sticker_voice_and_edits_get_a_friendly_answer(fake: FakeTelegram, tg: Stack) -> None:
    dan = Customer(fake, tg, 1004)
    sticker = {"file_id": "s1", "file_unique_id": "s1", "type": "regular", "width": 512,
               "height": 512, "is_animated": False, "is_video": False}  # fmt: skip
    assert "I can read text and photos" in dan.push(
        {"message": fake.message(1004, sticker=sticker)}
    )
    voice = {"file_id": "v1", "file_unique_id": "v1", "duration": 3}
    assert "I can read text and photos" in dan.push({"message": fake.message(1004, voice=voice)})
    edited = fake.message(1004, "where is my ordr", edit_date=int(time.time()))
    assert "only read new messages" in dan.push({"edited_message": edited})


def test_photo_is_stored_content_addressed_and_answered(fake: FakeTelegram, tg: Stack) -> None:
    eve = Customer(fake, tg, 1005)
    photo = png(32, 32)
    answer = eve.push(
        {"message": fake.message(1005, caption="like this", photo=fake.photo_sizes(photo))}
    )
    # a photo is a /photo_search turn through Rasa; this stack has no vision service running
    assert "photo search is briefly unavailable" in answer
    digest = hashlib.sha256(photo).hexdigest()
    stored = tg.data_dir / "media" / digest[:2] / digest[2:4] / f"{digest}.png"
    assert stored.read_bytes() == photo
    message = stored_inbound(tg, 1005)[-1]
    assert message.meta["media"]["id"] == digest and message.text == "like this"
    assert message.payload == "/photo_search" and message.meta["caption"] == "like this"
    assert len(fake.calls(TOKEN, "getFile")) == 1  # only the largest size was fetched
    big = _document(fake, b"\xff\xd8\xff" + b"0" * MAX_PHOTO_BYTES, "image/jpeg")
    assert "too big" in eve.push({"message": fake.message(1005, document=big)})
    not_a_photo = _document(fake, b"MZ not a picture", "image/png")
    assert "couldn't read that file as a photo" in eve.push(
        {"message": fake.message(1005, document=not_a_photo)}
    )


def _document(fake: FakeTelegram, data: bytes, mime_type: str) -> dict[str, Any]:
    file_id = fake.add_file(data)
    return {"file_id": file_id, "file_unique_id": file_id, "mime_type": mime_type,
            "file_size": len(data)}  # fmt: skip


def test_retry_after_on_one_chat_does_not_hold_up_another(fake: FakeTelegram, tg: Stack) -> None:
    slow, quick = Customer(fake, tg, 1006), Customer(fake, tg, 1007)
    fake.fail("sendMessage", 429, chat_id=1006, for_seconds=3, retry_after=3)
    slow_update = fake.send_text(TOKEN, 1006, "hello")
    fake.wait_for(lambda: fake.calls(TOKEN, "sendMessage", 1006), 20, "the throttled send")
    started = time.monotonic()
    quick_update = fake.send_text(TOKEN, 1007, "hello")
    fake.wait_for(lambda: quick.answered(quick_update), 10, "the other chat's answer")
    quick_latency = time.monotonic() - started
    fake.wait_for(lambda: slow.answered(slow_update), 20, "the throttled chat's answer")
    slow_latency = time.monotonic() - started
    print(f"\nduring a 3 s RetryAfter on chat 1006: chat 1007 answered in {quick_latency:.2f}s "
          f"(Rasa turn included), chat 1006 in {slow_latency:.2f}s")  # fmt: skip
    assert quick_latency < 1.0
    assert len(slow.seen()) == 1 and len(quick.seen()) == 1  # each exactly once


def test_blocked_user_is_marked_unreachable_and_not_retried(fake: FakeTelegram, tg: Stack) -> None:
    fay = Customer(fake, tg, 1008)
    fake.fail("sendMessage", 403, chat_id=1008, times=1000)
    update_id = fake.send_text(TOKEN, 1008, "hello")
    fake.wait_for(lambda: fay.answered(update_id), 20, "the send to be given up")
    time.sleep(2.5)  # two outbox retry rounds
    assert len(fake.calls(TOKEN, "sendMessage", 1008)) == 1
    with session_scope(engine_of(tg)) as session:
        identity = session.exec(
            select(ChannelIdentity).where(ChannelIdentity.external_id == "1008")
        ).one()
        assert identity.unreachable_at is not None
    fake.clear_faults()


def _start_app(stack: Stack, env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    log = stack.data_dir / f"{name}.out"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_http(f"http://127.0.0.1:{env['APP_PORT']}/healthz", 60, process, log)
    return process


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    os.killpg(process.pid, sig)
    process.wait(timeout=20)


def test_second_instance_does_not_poll(fake: FakeTelegram, tg: Stack) -> None:
    env = {**tg.env, "APP_PORT": str(free_port())}
    second = _start_app(tg, env, "second-app")
    try:
        log = tg.data_dir / "second-app.out"
        fake.wait_for(lambda: "another instance" in log.read_text(), 20, "the standby log line")
        time.sleep(2)
        assert fake.bot(TOKEN).conflicts == 0
        with session_scope(engine_of(tg)) as session:
            lease = channel_state.lease_of(session, "telegram-poller:7000001")
            assert lease is not None and f":{second.pid}:" not in lease.holder
    finally:
        _stop(second)


def test_restart_mid_conversation_loses_and_repeats_nothing(fake: FakeTelegram, tg: Stack) -> None:
    gus = Customer(fake, tg, 1009)
    order = shipped_order(tg, 1)
    gus.say("where is my order?")
    # the reply to the order number cannot be delivered, then the app dies
    fake.fail("sendMessage", 502, chat_id=1009, for_seconds=60)
    number_update = fake.send_text(TOKEN, 1009, order["number"])
    fake.wait_for(
        lambda: fake.calls(TOKEN, "sendMessage", 1009)[-1].status == 502, 30, "a failed send"
    )
    app = tg.processes[-1]
    _stop(app, signal.SIGKILL)
    fake.clear_faults()
    email_update = fake.send_text(TOKEN, 1009, order["email"])  # sent while the app is down
    tg.processes[-1] = _start_app(tg, tg.env, "app-restarted")
    fake.wait_for(lambda: gus.answered(email_update), 60, "the answer after the restart")
    assert gus.answered(number_update)
    texts = gus.seen()
    # the status answer may be followed by one suggestion ("You might also like this:" + card)
    assert len(texts) in (3, 5) and len(set(texts)) == len(texts), texts
    assert "order number" in texts[0].lower() and "e-mail" in texts[1].lower()
    assert order["tracking_number"] in texts[2]
    assert len(texts) == 3 or "you might also like" in texts[3].lower(), texts
    assert [m.client_message_id for m in stored_inbound(tg, 1009)][1:] == [
        str(number_update),
        str(email_update),
    ]


def test_webhook_checks_the_secret_and_dedupes(
    fake: FakeTelegram, tg: Stack, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **tg.env,
        **telegram_env(fake, WEBHOOK_TOKEN),
        "DATA_DIR": str(tmp_path),
        "APP_PORT": str(port),
        "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/webhook",
        "TELEGRAM_WEBHOOK_SECRET": "right-secret",
    }
    subprocess.run([sys.executable, "-m", "bot.cli", "demo-data"], cwd=ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip
    app = _start_app(tg, env, "webhook-app")
    try:
        fake.wait_for(lambda: fake.bot(WEBHOOK_TOKEN).webhook_url, 20, "setWebhook")
        assert fake.bot(WEBHOOK_TOKEN).webhook_secret == "right-secret"
        update = {"update_id": 555001, "message": fake.message(2001, "/start")}
        assert fake.post_webhook(WEBHOOK_TOKEN, update, "wrong-secret") == 401
        assert fake.post_webhook(WEBHOOK_TOKEN, update, None) == 401
        time.sleep(0.5)
        with session_scope(make_engine(f"sqlite:///{tmp_path / 'shop.db'}")) as session:
            assert session.exec(select(Message)).all() == []
        assert fake.post_webhook(WEBHOOK_TOKEN, update, "right-secret") == 200
        assert fake.post_webhook(WEBHOOK_TOKEN, update, "right-secret") == 200  # redelivery
        fake.wait_for(lambda: fake.delivered_texts(WEBHOOK_TOKEN, 2001), 30, "the reply")
        time.sleep(1.5)
        texts = fake.delivered_texts(WEBHOOK_TOKEN, 2001)
        assert len(texts) == 1 and "Northwind Threads assistant" in texts[0]
    finally:
        _stop(app)
