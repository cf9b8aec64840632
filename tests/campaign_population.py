"""Many opted-in Telegram customers at once (campaign tests and bench/campaign_bench.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select

from bot.store.channel_state import MARKETING, Consent
from bot.store.db import session_scope
from bot.store.models import ChannelIdentity, Customer

FIRST_CHAT = 500_000


def write_population(
    engine: Engine, n: int, *, first_chat: int = FIRST_CHAT, opted_in: bool = True
) -> list[int]:
    """`n` customers, each with a Telegram chat (ids `first_chat`…) and a consent row; the
    chat ids in customer order."""
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    chats = list(range(first_chat, first_chat + n))
    with session_scope(engine) as session:
        for start in range(0, n, 5000):
            part = chats[start : start + 5000]
            session.execute(
                insert(Customer),
                [
                    {"email": f"c{chat}@bench.example", "first_name": f"Kim{chat}",
                     "last_name": "Bench", "postcode": "10115", "country": "DE"}
                    for chat in part
                ],
            )  # fmt: skip
        rows = session.execute(
            select(Customer.id, Customer.email).where(Customer.email.like("%@bench.example"))  # type: ignore[attr-defined]
        ).all()
        ids = {email: cid for cid, email in rows}
        for start in range(0, n, 5000):
            part = chats[start : start + 5000]
            session.execute(
                insert(ChannelIdentity),
                [
                    {"channel": "telegram", "external_id": str(chat),
                     "customer_id": ids[f"c{chat}@bench.example"], "created_at": moment}
                    for chat in part
                ],
            )  # fmt: skip
            session.execute(
                insert(Consent),
                [
                    {"customer_id": ids[f"c{chat}@bench.example"], "channel": "telegram",
                     "external_id": str(chat), "purpose": MARKETING, "opted_in": opted_in,
                     "source": "bench", "created_at": moment}
                    for chat in part
                ],
            )  # fmt: skip
    return chats
