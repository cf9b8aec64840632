"""The customer's side of handoff on the web channel: the widget's "talk to a person" button.

`POST /api/v1/sessions/{session}/handoff` with an optional JSON body `{"message_id": "..."}`
stores the request in the inbox (deduplicated like any message), opens or reuses the ticket and
answers with the same message list as `POST /api/v1/chat`; the reply also reaches the widget's
open sockets through the outbox.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web
from sqlmodel import Session

from bot.channels.web import CHANNEL, SESSION_RE, error_response
from bot.handoff import ASKED_FOR_HUMAN, escalate_in
from bot.outbox import message_json
from bot.router import Router
from bot.store import conversations
from bot.store.models import Message

HANDOFF_PAYLOAD = "/contact_human"
HANDOFF_TITLE = "Talk to a person"


class HandoffEndpoint:
    def __init__(self, router: Router, on_change: Callable[[], None]) -> None:
        self.router = router
        self.on_change = on_change

    def mount(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/sessions/{session}/handoff", self.handoff)

    async def handoff(self, request: web.Request) -> web.Response:
        session_id = request.match_info["session"]
        if not SESSION_RE.match(session_id):
            return error_response(400, "invalid_session", "Malformed session id.")
        client_id = None
        raw = await request.content.read(4096)
        if raw.strip():
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return error_response(400, "invalid_json", "The body is not valid JSON.")
            given = body.get("message_id") if isinstance(body, dict) else None
            if isinstance(given, str) and 1 <= len(given) <= 128:
                client_id = given
        shop = self.router.shop
        now = shop.now()

        def work(session: Session) -> list[Message]:
            conversation = conversations.get_or_create_conversation(session, CHANNEL, session_id)
            inbound, created = conversations.record_inbound(
                session,
                conversation.id,
                client_id,
                HANDOFF_TITLE,
                HANDOFF_PAYLOAD,
                {"title": HANDOFF_TITLE, "source": "widget-button"},
                now,
            )
            assert inbound.id is not None
            if not created:
                return conversations.replies_to(session, inbound.id)
            escalation = escalate_in(session, conversation.id, ASKED_FOR_HUMAN, shop.settings, now)
            reply = conversations.record_outbound(
                session, conversation.id, escalation.reply.to_json(), inbound.id, now
            )
            conversations.mark_inbound_handled(session, inbound.id)
            return [reply]

        replies = await shop.transaction(work)
        self.on_change()
        conversation_id = f"{CHANNEL}:{session_id}"
        await self.router.outbox.flush(conversation_id)  # open widget sockets get it live
        await self.router.outbox.mark_delivered(replies)  # and this response carries it too
        return web.json_response(
            {"session": session_id, "messages": [message_json(m) for m in replies]}
        )
