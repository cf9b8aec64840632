"""Routes every customer message: store it, hand it to Rasa in order, store the replies.

One conversation's messages reach Rasa one at a time and in arrival order (a lock per
conversation); each conversation always goes to the same Rasa process (see `rasa_client`).
A message is written to the inbox before anything else happens, so a crash or a Rasa outage
loses nothing: unhandled messages are retried by `retry_unhandled`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

from sqlmodel import Session

from bot.channels.base import InboundMessage, Reply, text_for_rasa
from bot.outbox import Outbox
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.shop import Shop
from bot.store import conversations
from bot.store.models import Message, MessageStatus

if TYPE_CHECKING:
    from bot.handoff import HumanMode

log = logging.getLogger(__name__)

TRACKED_CONVERSATIONS = 100_000

UNAVAILABLE = Reply(
    text="Sorry, I'm having a technical problem right now. I've kept your message and will "
    "answer as soon as I can — you can also try again in a minute."
)


@dataclass
class Turn:
    """The outcome of one inbound message."""

    inbound: Message
    replies: list[Message] = field(default_factory=list)
    duplicate: bool = False
    failed: bool = False


class Router:
    def __init__(
        self, shop: Shop, rasa: RasaClient, outbox: Outbox, human_mode: HumanMode | None = None
    ) -> None:
        self.shop = shop
        self.rasa = rasa
        self.outbox = outbox
        self.human_mode = human_mode  # while staff own a conversation, Rasa never sees it
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._turns: dict[str, int] = {}  # turns since the last new Rasa session

    @asynccontextmanager
    async def _conversation_lock(self, conversation_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(conversation_id, (asyncio.Lock(), 0))
        self._locks[conversation_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[conversation_id]
            if users <= 1:
                del self._locks[conversation_id]
            else:
                self._locks[conversation_id] = (lock, users - 1)

    async def handle(
        self,
        inbound: InboundMessage,
        on_stored: Callable[[Message], Awaitable[None]] | None = None,
    ) -> Turn:
        async with self._conversation_lock(inbound.conversation_id):
            stored, created = await self.shop.transaction(lambda s: _record(s, inbound))
            if on_stored is not None:
                await on_stored(stored)
            if not created and stored.status == MessageStatus.handled:
                replies = await self.shop.transaction(
                    lambda s: conversations.replies_to(s, _id(stored))
                )
                return Turn(stored, replies, duplicate=True)
            return await self._process(stored, inbound.rasa_text, inbound.metadata)

    async def _keep_tracker_short(self, conversation_id: str) -> None:
        """Every `rasa_session_turns` turns, start a new Rasa session unless a form is open."""
        limit = self.shop.settings.rasa_session_turns
        turns = self._turns.pop(conversation_id, 0) + 1
        if limit > 0 and turns >= limit and not await self.rasa.in_form(conversation_id):
            await self.rasa.start_new_session(conversation_id)
            turns = 0
        self._turns[conversation_id] = turns  # re-inserted last: the dict stays in LRU order
        if len(self._turns) > TRACKED_CONVERSATIONS:
            del self._turns[next(iter(self._turns))]

    async def _process(self, stored: Message, text: str, metadata: dict[str, object]) -> Turn:
        conversation_id = stored.conversation_id
        if self.human_mode is not None:
            handled = await self.human_mode.intercept(stored)
            if handled is not None:
                return Turn(stored, handled)
        try:
            await self._keep_tracker_short(conversation_id)
            replies = await self.rasa.send(conversation_id, text, dict(metadata))
        except RasaUnavailable as error:
            log.warning("message %s kept for retry: %s", stored.id, error)
            apology = await self.shop.transaction(
                lambda s: conversations.record_outbound(
                    s, conversation_id, UNAVAILABLE.to_json(), None
                )
            )
            return Turn(stored, [apology], failed=True)

        def save(session: Session) -> list[Message]:
            saved = [
                conversations.record_outbound(session, conversation_id, r.to_json(), _id(stored))
                for r in replies
            ]
            conversations.mark_inbound_handled(session, _id(stored))
            return saved

        return Turn(stored, await self.shop.transaction(save))

    async def retry_unhandled(self, older_than: timedelta) -> int:
        """Hand messages still in the inbox (Rasa was down, or we crashed) to Rasa again."""
        cutoff = self.shop.now() - older_than
        pending = await self.shop.transaction(conversations.unhandled_inbound)
        done = 0
        for message in pending:
            if message.created_at > cutoff:
                continue
            async with self._conversation_lock(message.conversation_id):
                fresh = await self.shop.transaction(partial(_reload, message_id=_id(message)))
                if fresh is None or fresh.status == MessageStatus.handled:
                    continue
                turn = await self._process(
                    fresh, text_for_rasa(fresh.payload, fresh.text), fresh.meta
                )
            if not turn.failed:
                done += 1
                await self.outbox.flush(message.conversation_id)
        return done


def _reload(session: Session, message_id: int) -> Message | None:
    return session.get(Message, message_id)


def _id(message: Message) -> int:
    assert message.id is not None
    return message.id


def _record(session: Session, inbound: InboundMessage) -> tuple[Message, bool]:
    conversation = conversations.get_or_create_conversation(
        session, inbound.channel, inbound.external_id
    )
    return conversations.record_inbound(
        session,
        conversation.id,
        inbound.client_message_id,
        inbound.text,
        inbound.payload,
        inbound.metadata,
    )
