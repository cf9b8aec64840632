"""Live updates for the console over WebSockets: the queue, and one ticket's new messages.

The hub reads from the store rather than relying on in-process events, so a ticket opened by
another replica (or by a Rasa action) shows up too: every second — or at once when this
process pokes it (a customer message in human mode, a staff action) — it builds the queue
snapshot once and sends it to each queue socket whose last snapshot differs, and sends each
ticket socket the messages it has not seen yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlmodel import Session, col, select

from bot.outbox import message_json
from bot.shop import Shop
from bot.store import support
from bot.store.models import Message

log = logging.getLogger(__name__)

TICK_S = 1.0
QUEUE_PREVIEW = 3


@dataclass
class Subscription:
    ticket_id: int | None  # None: the queue
    last_message_id: int = 0
    last_payload: str = ""


def message_view(message: Message) -> dict[str, Any]:
    """`message_json` plus who wrote it (customer, bot or which agent) and attached media."""
    data = message_json(message)
    staff = (message.meta or {}).get("staff")
    data["author"] = (
        "customer" if data["role"] == "user" else "staff" if isinstance(staff, dict) else "bot"
    )
    data["staff_name"] = staff.get("name") if isinstance(staff, dict) else None
    media = (message.meta or {}).get("media")
    data["media"] = media if isinstance(media, dict) else None
    return data


def customer_label(session: Session, conversation_id: str) -> str:
    customer = support.customer_of(session, conversation_id)
    if customer is not None:
        return f"{customer.first_name} {customer.last_name} <{customer.email}>"
    return "Guest " + conversation_id.partition(":")[2][:10]


def queue_snapshot(session: Session) -> list[dict[str, Any]]:
    rows = []
    staff_names = {s.id: s.name for s in support.list_staff(session)}
    for ticket in support.open_tickets(session):
        preview = support.last_messages(session, ticket.conversation_id, QUEUE_PREVIEW)
        rows.append(
            {
                "id": ticket.id,
                "state": ticket.state.value,
                "reason": ticket.reason,
                "channel": ticket.conversation_id.partition(":")[0],
                "customer": customer_label(session, ticket.conversation_id),
                "created_at": ticket.created_at.isoformat(),
                "assigned_to": staff_names.get(ticket.assigned_to) if ticket.assigned_to else None,
                "last_messages": [
                    {"author": m["author"], "text": (m["text"] or "")[:140]}
                    for m in map(message_view, preview)
                ],
            }
        )
    return rows


def ticket_update(
    session: Session, ticket_id: int, after_id: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ticket = support.get_ticket(session, ticket_id)
    holder = support.get_staff(session, ticket.assigned_to) if ticket.assigned_to else None
    stmt = (
        select(Message)
        .where(Message.conversation_id == ticket.conversation_id, col(Message.id) > after_id)
        .order_by(col(Message.id))
        .limit(200)
    )
    messages = [message_view(m) for m in session.exec(stmt).all()]
    state = {
        "id": ticket.id,
        "state": ticket.state.value,
        "assigned_to": holder.name if holder else None,
    }
    return state, messages


class LiveHub:
    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self._sockets: dict[web.WebSocketResponse, Subscription] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        """Something changed: refresh the consoles now rather than at the next tick."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()

    async def serve(self, ws: web.WebSocketResponse, ticket_id: int | None, after_id: int) -> None:
        """Keep `ws` subscribed until the client goes away."""
        self._sockets[ws] = Subscription(ticket_id, after_id)
        self.poke()
        try:
            async for _ in ws:  # the client only listens; anything it sends is ignored
                pass
        finally:
            self._sockets.pop(ws, None)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_S)
            self._wake.clear()
            if not self._sockets:
                continue
            try:
                await self._push()
            except Exception:  # a database blip must not end live updates
                log.exception("console live update failed")

    async def _push(self) -> None:
        subscriptions = list(self._sockets.items())
        wants_queue = any(sub.ticket_id is None for _, sub in subscriptions)
        wanted = {(sub.ticket_id, sub.last_message_id) for _, sub in subscriptions if sub.ticket_id}

        def load(session: Session) -> tuple[Any, dict[tuple[int, int], Any]]:
            queue = queue_snapshot(session) if wants_queue else None
            tickets = {}
            for ticket_id, after in wanted:
                with contextlib.suppress(support.TicketNotFound):
                    tickets[(ticket_id, after)] = ticket_update(session, ticket_id, after)
            return queue, tickets

        queue, tickets = await self.shop.transaction(load)
        for ws, sub in subscriptions:
            if ws.closed:
                continue
            if sub.ticket_id is None:
                frame = {"type": "queue", "tickets": queue}
            else:
                found = tickets.get((sub.ticket_id, sub.last_message_id))
                if found is None:
                    continue
                state, messages = found
                if messages:
                    sub.last_message_id = max(int(m["id"]) for m in messages)
                frame = {"type": "ticket", "ticket": state, "messages": messages}
            payload = json.dumps(frame)
            if payload == sub.last_payload:
                continue
            sub.last_payload = payload
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(payload)
