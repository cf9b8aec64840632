"""The outbox sends each pending message once, even when two flushes of a chat overlap."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.outbox import Outbox
from bot.settings import Settings
from bot.shop import Shop
from bot.store import conversations
from bot.store.db import make_engine, migrate


class SlowChannel:
    """Records every delivery and takes a while over each, like a socket under load."""

    def __init__(self) -> None:
        self.delivered: list[dict[str, Any]] = []

    async def deliver(self, external_id: str, message: dict[str, Any]) -> bool:
        await asyncio.sleep(0.05)
        self.delivered.append(message)
        return True


def test_overlapping_flushes_of_one_chat_deliver_each_message_once(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    migrate(engine)
    shop = Shop(engine=engine, settings=Settings(data_dir=tmp_path))
    outbox = Outbox(shop)
    channel = SlowChannel()
    outbox.register("web", channel)

    async def scenario() -> list[int]:
        def queue(session: Any) -> str:
            conversation = conversations.get_or_create_conversation(session, "web", "s1")
            for text in ("one", "two"):
                conversations.record_outbound(session, conversation.id, {"text": text}, None)
            return conversation.id

        conversation_id = await shop.transaction(queue)
        # the reply path and the retry loop flushing the same chat at the same time
        return list(await asyncio.gather(*(outbox.flush(conversation_id) for _ in range(3))))

    counts = asyncio.run(scenario())
    assert sorted(counts) == [0, 0, 2]
    assert [m["text"] for m in channel.delivered] == ["one", "two"]
