"""Telegram channel: python-telegram-bot's `Application` for the Bot API, our inbox and outbox.

Inbound: every update is written to the store *before* Telegram is told it arrived (long polling
confirms an update only with the next getUpdates offset; the webhook answers 200 only after
storing), so a crash loses nothing; the update_id is the inbox's dedupe key, so a redelivered
update is answered once. The Rasa turn then runs in a task of its own, so a slow turn of one
chat never holds up the others.

Outbound: the outbox calls `deliver`, which renders the channel-neutral reply (see
`telegram_render`) and returns False on network errors and throttling (the outbox retries) and
True for a customer who blocked the bot (marked unreachable; retrying would never succeed).

Long polling runs in one instance per bot token at a time: the poller holds a lease row in the
store and renews it with every poll; another instance stands by and takes over when the lease
expires. Webhook mode needs no lease (Telegram pushes to one URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Update,
)
from telegram import (
    Message as TgMessage,
)
from telegram.constants import ChatAction
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, BaseRateLimiter, filters
from telegram.request import HTTPXRequest

from bot.channels.base import InboundMessage, Reply, SendOutcome, is_link
from bot.channels.telegram_limits import ADMITTED_BULK, PerChatRateLimiter, retry_after_seconds
from bot.channels.telegram_render import (
    SHORT_ID_PREFIX,
    Keyboard,
    Operation,
    SendAlbum,
    SendPhoto,
    SendText,
    needs_short_id,
    payloads_of,
    render,
)
from bot.channels.wire_transport import wire_announcing_transport
from bot.media import MediaRejected, MediaStore
from bot.router import Router
from bot.settings import Settings
from bot.store import channel_state, conversations, support

log = logging.getLogger(__name__)
# httpx logs every request URL at INFO, and Bot API URLs contain the bot token
logging.getLogger("httpx").setLevel(logging.WARNING)

CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_WEBHOOK_PATH = "/telegram/webhook"
TYPING_EVERY_S = 4.5  # Telegram shows "typing…" for 5 s
SENT_MEMORY = 10_000
SHORT_ID_MEMORY = 20_000

GREETING_PAYLOAD = "/greet"
SUBSCRIBE_PAYLOAD = "/newsletter_subscribe"
HELP_PAYLOAD = "/capabilities"

UNSUPPORTED = Reply(
    text="I can read text and photos — could you type your question, or send a photo?"
)
EDITED = Reply(
    text="I only read new messages, not edits. If something changed, just send it again "
    "as a new message."
)
OPTED_OUT = Reply(
    text="Done — you won't get marketing messages from us any more. You can still ask me about "
    "your orders at any time."
)
PHOTO_SEARCH_PAYLOAD = "/photo_search"  # the photo rides in metadata["media"]
PHOTO_TITLE = "📷 Photo"
EXPIRED_BUTTON = Reply(text="That button has expired. Please type what you'd like to do.")
PHOTO_REJECTED = {
    "too_large": "That file is too big for me. Please send a photo under {mb} MB.",
    "not_an_image": "I couldn't read that file as a photo. Please send a JPEG or PNG picture.",
    "empty": "That photo arrived empty. Could you send it again?",
}

# Optional: a photo handler answers a stored photo message instead of the router (tests).
PhotoHandler = Callable[[InboundMessage], Awaitable[None]]
UpdateHandler = Callable[[Update], Awaitable[None]]


def webhook_secret(settings: Settings) -> str:
    """The configured secret, or one derived from the token (the same on every replica)."""
    if settings.telegram_webhook_secret:
        return settings.telegram_webhook_secret
    return hashlib.sha256(f"webhook:{settings.telegram_bot_token}".encode()).hexdigest()[:48]


def webhook_path(settings: Settings) -> str:
    path = urlsplit(settings.telegram_webhook_url).path
    return path if path not in ("", "/") else DEFAULT_WEBHOOK_PATH


def build_application(settings: Settings, rate_limiter: BaseRateLimiter[Any]) -> Application:
    pool_size = 256
    request = HTTPXRequest(  # a campaign send's journal hears when its request leaves
        connection_pool_size=pool_size,
        connect_timeout=10,
        read_timeout=20,
        write_timeout=20,
        httpx_kwargs={"transport": wire_announcing_transport(pool_size)},
    )
    builder = (
        Application.builder()
        .token(settings.telegram_bot_token)
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        .rate_limiter(rate_limiter)
        .updater(None)  # we poll ourselves: an update is confirmed only once it is stored
        .request(request)
    )
    return builder.build()


class TelegramChannel:
    def __init__(
        self,
        router: Router,
        settings: Settings,
        rate_limiter: BaseRateLimiter[Any] | None = None,
        photo_handler: PhotoHandler | None = None,
    ) -> None:
        self.router = router
        self.settings = settings
        self.limiter = rate_limiter or PerChatRateLimiter(settings.telegram_messages_per_s)
        self.application = build_application(settings, self.limiter)
        self.bot = self.application.bot
        self.media = MediaStore(settings.data_dir / "media", settings.telegram_max_photo_bytes)
        self.photo_handler = photo_handler
        self.webhook_mode = bool(settings.telegram_webhook_url)
        self.holder = channel_state.lease_holder()
        self._lease_ttl = timedelta(seconds=settings.telegram_poll_lease_seconds)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._send_locks: dict[str, asyncio.Lock] = {}
        self._sent: OrderedDict[int, None] = OrderedDict()
        self._short_id_memory: OrderedDict[str, str] = OrderedDict()
        self._progress: dict[int, int] = {}
        self._unreachable: set[str] = set()
        self._poller: asyncio.Task[None] | None = None
        self._lease_name = ""
        self._handlers: list[tuple[Callable[[Update], bool], UpdateHandler]] = [
            (lambda u: u.callback_query is not None, self._on_button),
            (lambda u: u.edited_message is not None, self._on_edited),
            (lambda u: u.my_chat_member is not None, self._on_membership),
            (_check(filters.COMMAND), self._on_command),
            (_check(filters.PHOTO | filters.Document.IMAGE), self._on_photo),
            (_check(filters.TEXT), self._on_text),
            (lambda u: u.message is not None, self._on_unsupported),
        ]

    # --- lifecycle ------------------------------------------------------------------------
    def mount(self, app: web.Application) -> None:
        if self.webhook_mode:
            app.router.add_post(webhook_path(self.settings), self.webhook)
        self.router.outbox.register(CHANNEL, self)

    async def start(self) -> None:
        """Connect in the background: the web channel keeps serving while Telegram is away."""
        self._poller = asyncio.create_task(self._run())

    async def _run(self) -> None:
        backoff = 1.0
        while True:
            try:
                await self.application.initialize()  # getMe
                break
            except InvalidToken:
                log.error("Telegram: the bot token was refused; the Telegram channel is off")
                return
            except (NetworkError, OSError) as error:
                log.warning("Telegram unreachable (%s); retrying in %.0fs", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
        me = self.bot.bot
        self._lease_name = f"telegram-poller:{me.id}"
        if self.webhook_mode:
            await self.bot.set_webhook(
                self.settings.telegram_webhook_url,
                secret_token=webhook_secret(self.settings),
                allowed_updates=Update.ALL_TYPES,
            )
            log.info("Telegram @%s: webhook at %s", me.username, self.settings.telegram_webhook_url)
        else:
            await self._poll_forever()

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._tasks:  # let running turns finish; what does not is retried from the store
            await asyncio.wait(list(self._tasks), timeout=10)
        if self._lease_name and not self.webhook_mode:
            name, holder = self._lease_name, self.holder
            with contextlib.suppress(Exception):
                await self.router.shop.transaction(
                    lambda s: channel_state.release_lease(s, name, holder)
                )
        if self.application._initialized:
            await self.application.shutdown()

    # --- long polling ---------------------------------------------------------------------
    async def _poll_forever(self) -> None:
        standing_by = False
        while True:
            try:
                if await self._renew_lease():
                    if standing_by:
                        log.info("Telegram: the poller lease is ours now; polling")
                    standing_by = False
                    await self._poll_while_leased()
                elif not standing_by:
                    standing_by = True
                    lease = await self.router.shop.transaction(
                        lambda s: channel_state.lease_of(s, self._lease_name)
                    )
                    log.warning(
                        "Telegram: not polling — another instance (%s) polls this bot "
                        "(lease until %s); this one stands by and takes over if it stops",
                        lease.holder if lease else "?",
                        lease.expires_at.isoformat() if lease else "?",
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Telegram polling failed; retrying")
            await asyncio.sleep(self._lease_ttl.total_seconds() / 3)

    async def _renew_lease(self) -> bool:
        name, holder, ttl = self._lease_name, self.holder, self._lease_ttl
        return await self.router.shop.transaction(
            lambda s: channel_state.acquire_lease(s, name, holder, ttl)
        )

    async def _poll_while_leased(self) -> None:
        await self.bot.delete_webhook(drop_pending_updates=False)
        offset: int | None = None
        poll_timeout = int(max(1.0, min(25.0, self._lease_ttl.total_seconds() / 3)))
        backoff = 1.0
        log.info("Telegram @%s: long polling", self.bot.bot.username)
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset,
                    timeout=poll_timeout,
                    allowed_updates=Update.ALL_TYPES,
                    read_timeout=poll_timeout + 10,
                )
                for update in updates:
                    await self._accept_or_skip(update)  # stored before the next poll confirms it
                    offset = update.update_id + 1
                backoff = 1.0
            except RetryAfter as error:
                await asyncio.sleep(retry_after_seconds(error))
            except (NetworkError, OSError) as error:
                log.warning("Telegram polling: %s; retrying in %.0fs", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            if not await self._renew_lease():
                log.warning("Telegram: lost the poller lease; standing by")
                return

    async def _accept_or_skip(self, update: Update) -> None:
        """Transient failures (database, network) propagate: the update is fetched again.
        Anything else is a bug for this one update; skipping it keeps the bot answering."""
        try:
            await self.accept(update)
        except (SQLAlchemyError, OSError, asyncio.CancelledError):
            raise
        except NetworkError as error:
            if not isinstance(error, BadRequest):
                raise
            log.error(
                "Telegram update %s refused by the Bot API (%s); skipped", update.update_id, error
            )
        except Exception:
            log.exception("Telegram update %s could not be handled; skipped", update.update_id)

    # --- webhook --------------------------------------------------------------------------
    async def webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), webhook_secret(self.settings).encode()):
            return web.json_response(
                {"error": {"code": "unauthorized", "message": "Wrong or missing secret token."}},
                status=401,
            )
        try:
            data = await request.json()
            update = Update.de_json(data, self.bot)
        except Exception:
            return web.json_response(
                {"error": {"code": "invalid_update", "message": "Not a Telegram update."}},
                status=400,
            )
        await self.accept(update)  # an exception answers 500: Telegram delivers it again
        return web.json_response({"ok": True})

    # --- inbound --------------------------------------------------------------------------
    async def accept(self, update: Update) -> None:
        """Store one update (and start answering it); raises if it could not be stored."""
        for matches, handle in self._handlers:
            if matches(update):
                await handle(update)
                return

    def _inbound(
        self,
        update: Update,
        message: TgMessage,
        text: str | None,
        payload: str | None = None,
        **extra: Any,
    ) -> InboundMessage:
        user = message.from_user
        meta: dict[str, Any] = {
            "telegram": {
                "update_id": update.update_id,
                "message_id": message.message_id,
                "chat_type": message.chat.type,
                "user_id": user.id if user else None,
                "language_code": user.language_code if user else None,
            },
            **extra,
        }
        return InboundMessage(
            channel=CHANNEL,
            external_id=str(message.chat.id),
            text=text,
            payload=payload,
            client_message_id=str(update.update_id),
            metadata=meta,
        )

    async def _route(self, inbound: InboundMessage) -> None:
        """Store, then let the router answer in the background."""
        created = await self.router.shop.transaction(lambda s: _store(s, inbound))
        self._unreachable.discard(inbound.external_id)
        if created:
            self._spawn(self._answer(inbound))

    async def _reply_directly(self, inbound: InboundMessage, reply: Reply) -> None:
        """Answers that need no Rasa turn: stored inbound, queued reply, one transaction."""
        conversation_id = inbound.conversation_id
        if await self.router.shop.transaction(lambda s: support.in_human_mode(s, conversation_id)):
            await self._route(inbound)  # staff own the chat: it goes to the console, unanswered
            return
        created = await self.router.shop.transaction(lambda s: _store_answered(s, inbound, reply))
        self._unreachable.discard(inbound.external_id)
        if created:
            self._spawn(self.router.outbox.flush(inbound.conversation_id))

    async def _answer(self, inbound: InboundMessage) -> None:
        typing = asyncio.create_task(self._keep_typing(inbound.external_id))
        try:
            turn = await self.router.handle(inbound)
        finally:
            typing.cancel()
        if turn.duplicate or turn.replies:
            await self.router.outbox.flush(inbound.conversation_id)

    async def _keep_typing(self, chat_id: str) -> None:
        with contextlib.suppress(TelegramError):
            while True:
                await self.bot.send_chat_action(chat_id, ChatAction.TYPING)
                await asyncio.sleep(TYPING_EVERY_S)

    def _spawn(self, work: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("Telegram: answering failed (the store keeps it for the retry)")

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_text(self, update: Update) -> None:
        message = update.effective_message
        assert message is not None
        await self._route(self._inbound(update, message, message.text))

    async def _on_command(self, update: Update) -> None:
        message = update.effective_message
        assert message is not None and message.text is not None
        command, _, argument = message.text.partition(" ")
        command = command.split("@", 1)[0].lower()
        argument = argument.strip()
        if command == "/start":
            extra = {"start_param": argument[:64]} if argument else {}
            # t.me/<bot>?start=subscribe… (a campaign's deep link) opts in, source recorded
            payload = SUBSCRIBE_PAYLOAD if argument.startswith("subscribe") else GREETING_PAYLOAD
            inbound = self._inbound(update, message, message.text, payload, **extra)
            await self._route(inbound)
        elif command == "/help":
            await self._route(self._inbound(update, message, message.text, HELP_PAYLOAD))
        elif command == "/stop":
            inbound = self._inbound(update, message, message.text)
            chat = inbound.external_id

            def opt_out(session: Session) -> bool:
                created = _store_answered(session, inbound, OPTED_OUT)
                if created:
                    channel_state.record_consent(
                        session, CHANNEL, chat, opted_in=False, source="telegram:/stop"
                    )
                return created

            if await self.router.shop.transaction(opt_out):
                self._spawn(self.router.outbox.flush(inbound.conversation_id))
        else:  # unknown commands: let the dialogue's fallback explain what it can do
            await self._route(self._inbound(update, message, message.text))

    async def _on_button(self, update: Update) -> None:
        query = update.callback_query
        assert query is not None
        self._spawn(query.answer())  # stops the spinner on the customer's button
        message = query.message
        if not isinstance(message, TgMessage) or not query.data:
            return
        data = query.data
        payload: str | None = data
        if data.startswith(SHORT_ID_PREFIX):
            key = data[len(SHORT_ID_PREFIX) :]
            payload = await self.router.shop.transaction(
                lambda s: channel_state.payload_for(s, key)
            )
        title = _button_title(message, data)
        inbound = self._inbound(
            update, message, title, payload, **({"title": title} if title else {})
        )
        if payload is None:
            await self._reply_directly(inbound, EXPIRED_BUTTON)
        else:
            await self._route(inbound)

    async def _on_edited(self, update: Update) -> None:
        message = update.edited_message
        assert message is not None
        await self._reply_directly(self._inbound(update, message, message.text), EDITED)

    async def _on_membership(self, update: Update) -> None:
        change = update.my_chat_member
        assert change is not None
        chat = str(change.chat.id)
        blocked = change.new_chat_member.status in ("kicked", "left")

        def record(session: Session) -> None:
            if blocked:
                channel_state.mark_unreachable(session, CHANNEL, chat)
            else:
                channel_state.mark_reachable(session, CHANNEL, chat)

        await self.router.shop.transaction(record)
        if blocked:
            self._unreachable.add(chat)
        else:
            self._unreachable.discard(chat)

    async def _on_unsupported(self, update: Update) -> None:
        message = update.effective_message
        assert message is not None
        kind = next(
            (k for k in ("sticker", "voice", "video", "video_note", "audio", "document",
                         "location", "contact", "animation", "poll") if getattr(message, k, None)),
            "other",
        )  # fmt: skip
        inbound = self._inbound(update, message, message.caption, kind=kind)
        await self._reply_directly(inbound, UNSUPPORTED)

    async def _on_photo(self, update: Update) -> None:
        message = update.effective_message
        assert message is not None
        if message.photo:
            largest = max(message.photo, key=lambda p: (p.file_size or 0, p.width * p.height))
            file_id, size = largest.file_id, largest.file_size
        else:
            assert message.document is not None
            file_id, size = message.document.file_id, message.document.file_size
        try:
            self.media.check_size(size)
            telegram_file = await self.bot.get_file(file_id)
            self.media.check_size(telegram_file.file_size)
            data = bytes(await telegram_file.download_as_bytearray())
            stored = await asyncio.to_thread(self.media.save_image, data)
        except MediaRejected as rejected:
            mb = self.settings.telegram_max_photo_bytes // (1024 * 1024)
            reply = Reply(text=PHOTO_REJECTED[rejected.reason].format(mb=mb))
            inbound = self._inbound(
                update, message, message.caption, photo_rejected=rejected.reason
            )
            await self._reply_directly(inbound, reply)
            return
        caption = message.caption or ""
        inbound = self._inbound(
            update, message, message.caption, PHOTO_SEARCH_PAYLOAD,
            media=stored.to_json(), caption=caption, title=caption or PHOTO_TITLE,
        )  # fmt: skip
        if self.photo_handler is None:  # photo search: a /photo_search turn through Rasa
            await self._route(inbound)
            return
        created = await self.router.shop.transaction(lambda s: _store(s, inbound))
        if created:
            self._spawn(self.photo_handler(inbound))

    # --- outbound -------------------------------------------------------------------------
    async def deliver(self, external_id: str, message: dict[str, Any]) -> bool:
        message_id = int(message["id"])
        lock = self._send_locks.setdefault(external_id, asyncio.Lock())
        async with lock:
            if message_id in self._sent:
                return True  # a concurrent flush already sent it
            if external_id in self._unreachable:
                return True
            reply = Reply.from_json(message)
            operations = render(reply, await self._short_ids(reply), self.settings.public_url)
            try:
                for index in range(self._progress.get(message_id, 0), len(operations)):
                    await self._send(external_id, operations[index])
                    self._progress[message_id] = index + 1  # a retry resumes after this part
            except Forbidden as error:
                log.info("Telegram chat %s is unreachable (%s): not retrying", external_id, error)
                await self._mark_unreachable(external_id)
                return True
            except RetryAfter:
                return False
            except BadRequest as error:
                if "chat not found" in error.message.lower():
                    await self._mark_unreachable(external_id)
                log.error("Telegram refused message %s for %s: %s", message_id, external_id, error)
                return True  # sending it again would be refused again
            except NetworkError as error:
                log.warning("Telegram send to %s failed (%s); will retry", external_id, error)
                return False
            self._progress.pop(message_id, None)
            self._sent[message_id] = None
            while len(self._sent) > SENT_MEMORY:
                self._sent.popitem(last=False)
            return True

    async def admit_campaign(self) -> None:
        """Wait for room in the bot's overall budget; interactive replies go first."""
        if isinstance(self.limiter, PerChatRateLimiter):
            await self.limiter.admit_bulk()

    async def send_campaign(self, external_id: str, reply: Reply) -> SendOutcome:
        """Send one campaign message (admitted by `admit_campaign`); further parts of it (card
        photos) wait a second each, Telegram's pace for one chat."""
        if external_id in self._unreachable:
            return SendOutcome("blocked", "the customer blocked the bot")
        operations = render(reply, await self._short_ids(reply), self.settings.public_url)
        try:
            for index, operation in enumerate(operations):
                if index:
                    await asyncio.sleep(1.0)
                    await self.admit_campaign()
                await self._send(external_id, operation, bulk=True)
        except Forbidden as error:
            await self._mark_unreachable(external_id)
            return SendOutcome("blocked", str(error)[:200])
        except RetryAfter as error:
            return SendOutcome("retry", f"flood control: retry after {retry_after_seconds(error)}s")
        except BadRequest as error:
            if "chat not found" in error.message.lower():
                await self._mark_unreachable(external_id)
                return SendOutcome("blocked", error.message[:200])
            return SendOutcome("failed", error.message[:200])
        except NetworkError as error:
            return SendOutcome("retry", str(error)[:200])
        return SendOutcome("sent")

    async def _mark_unreachable(self, chat: str) -> None:
        self._unreachable.add(chat)
        await self.router.shop.transaction(
            lambda s: channel_state.mark_unreachable(s, CHANNEL, chat)
        )

    async def prepare_campaign(self, replies: list[Reply]) -> None:
        """What sending these needs from the store (short button ids), in one transaction before
        their deliveries are claimed: after the claim, a send only talks to Telegram."""
        await self._short_ids(*replies)

    async def _short_ids(self, *replies: Reply) -> dict[str, str]:
        wanted = {p for reply in replies for p in payloads_of(reply) if needs_short_id(p)}
        ids = {p: self._short_id_memory[p] for p in wanted if p in self._short_id_memory}
        missing = [p for p in wanted if p not in ids]
        if missing:  # an id, once stored, never changes: remembering it is safe
            found = await self.router.shop.transaction(
                lambda s: {p: channel_state.short_payload_id(s, CHANNEL, p) for p in missing}
            )
            ids.update(found)
            self._short_id_memory.update(found)
            while len(self._short_id_memory) > SHORT_ID_MEMORY:
                self._short_id_memory.popitem(last=False)
        return ids

    async def _send(self, chat_id: str, operation: Operation, bulk: bool = False) -> None:
        limits: dict[str, Any] = {"rate_limit_args": ADMITTED_BULK} if bulk else {}
        if isinstance(operation, SendText):
            await self.bot.send_message(
                chat_id, operation.text, reply_markup=_markup(operation.keyboard), **limits
            )
        elif isinstance(operation, SendPhoto):
            try:
                await self.bot.send_photo(
                    chat_id,
                    operation.photo,
                    caption=operation.caption,
                    reply_markup=_markup(operation.keyboard),
                    **limits,
                )
            except BadRequest:  # the image URL could not be fetched: the words still help
                await self.bot.send_message(
                    chat_id, operation.caption, reply_markup=_markup(operation.keyboard), **limits
                )
        else:
            assert isinstance(operation, SendAlbum)
            media = [InputMediaPhoto(url, caption=caption) for url, caption in operation.photos]
            await self.bot.send_media_group(chat_id, media, **limits)


def _check(flt: filters.BaseFilter) -> Callable[[Update], bool]:
    return lambda update: update.effective_message is not None and bool(flt.check_update(update))


def _markup(rows: Keyboard) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[_keyboard_button(title, data) for title, data in row] for row in rows]
    )


def _keyboard_button(title: str, data: str) -> InlineKeyboardButton:
    if is_link(data):
        return InlineKeyboardButton(title, url=data)
    return InlineKeyboardButton(title, callback_data=data)


def _button_title(message: TgMessage, data: str) -> str | None:
    markup = message.reply_markup
    if markup is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == data:
                return button.text
    return None


def _store(session: Session, inbound: InboundMessage) -> bool:
    """Write the inbound message (deduped on update_id); True when it is new."""
    conversation = conversations.get_or_create_conversation(
        session, inbound.channel, inbound.external_id
    )
    channel_state.mark_reachable(session, inbound.channel, inbound.external_id)
    _, created = conversations.record_inbound(
        session,
        conversation.id,
        inbound.client_message_id,
        inbound.text,
        inbound.payload,
        inbound.metadata,
    )
    return created


def _store_answered(session: Session, inbound: InboundMessage, reply: Reply) -> bool:
    conversation = conversations.get_or_create_conversation(
        session, inbound.channel, inbound.external_id
    )
    channel_state.mark_reachable(session, inbound.channel, inbound.external_id)
    stored, created = conversations.record_inbound(
        session,
        conversation.id,
        inbound.client_message_id,
        inbound.text,
        inbound.payload,
        inbound.metadata,
    )
    if created:
        assert stored.id is not None
        conversations.record_outbound(session, conversation.id, reply.to_json(), stored.id)
        conversations.mark_inbound_handled(session, stored.id)
    return created
