"""Delivers stored outbound messages through their channel, retrying until the channel accepts.

Every bot or staff message is first written to the store as `pending`; a channel's sender says
whether it could hand the message over, and only then is it marked `delivered`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Protocol

from bot.shop import Shop
from bot.store import conversations
from bot.store.models import Message

log = logging.getLogger(__name__)


class ChannelSender(Protocol):
    async def deliver(self, external_id: str, message: dict[str, Any]) -> bool:
        """Hand one message (see `message_json`) to the customer; False if not possible now."""
        ...


def message_json(message: Message) -> dict[str, Any]:
    """The transcript/wire form of a stored message, for every client protocol."""
    body = message.body or {}
    is_bot = message.direction.value == "out"
    return {
        "id": message.id,
        "role": "bot" if is_bot else "user",
        "text": body.get("text")
        if is_bot
        else (message.meta or {}).get("title") or message.text or message.payload,
        "buttons": body.get("buttons", []) if is_bot else [],
        "cards": body.get("cards", []) if is_bot else [],
        "created_at": message.created_at.isoformat(),
        **({} if is_bot else {"client_message_id": message.client_message_id}),
        **_agent(message),
    }


def _agent(message: Message) -> dict[str, Any]:
    """Messages written by support staff carry the agent's name, so the customer knows."""
    staff = (message.meta or {}).get("staff")
    return {"agent": staff["name"]} if isinstance(staff, dict) and staff.get("name") else {}


def split_conversation_id(conversation_id: str) -> tuple[str, str]:
    channel, _, external_id = conversation_id.partition(":")
    return channel, external_id


class Outbox:
    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self._senders: dict[str, ChannelSender] = {}
        # one flush per conversation at a time: the reply path and the retry loop both flush,
        # and two overlapping flushes would both send the same pending message
        self._flushing: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def register(self, channel: str, sender: ChannelSender) -> None:
        self._senders[channel] = sender

    async def flush(self, conversation_id: str) -> int:
        """Try to deliver every pending message of one conversation, oldest first."""
        channel, external_id = split_conversation_id(conversation_id)
        sender = self._senders.get(channel)
        if sender is None:
            return 0
        lock = self._flushing.get(conversation_id)
        if lock is None:
            lock = self._flushing[conversation_id] = asyncio.Lock()
        async with lock:
            pending = await self.shop.transaction(
                lambda s: conversations.pending_outbound(s, conversation_id)
            )
            delivered = 0
            for message in pending:
                if not await sender.deliver(external_id, message_json(message)):
                    break  # keep the order: later messages wait for this one
                await self.mark_delivered([message])
                delivered += 1
            return delivered

    async def mark_delivered(self, messages: list[Message]) -> None:
        def mark(session: Any) -> None:
            for message in messages:
                assert message.id is not None
                conversations.mark_delivered(session, message.id)

        await self.shop.transaction(mark)

    async def retry_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                pending = await self.shop.transaction(
                    lambda s: conversations.pending_outbound(s, None)
                )
                for conversation_id in dict.fromkeys(m.conversation_id for m in pending):
                    await self.flush(conversation_id)
            except Exception:  # the loop must survive a bad round (database blip)
                log.exception("outbox retry round failed")
