"""Web channel: the widget page, its WebSocket, and the JSON chat API for integrations.

`POST /api/v1/chat` answers a message synchronously with the bot's replies; `GET /ws` carries the
same message objects for the widget (history on connect, ack, typing, messages).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from bot.channels.base import InboundMessage, Reply, SendOutcome, announce_wire
from bot.outbox import message_json
from bot.router import Router, Turn
from bot.store import conversations
from bot.store.models import Message

log = logging.getLogger(__name__)

CHANNEL = "web"
STATIC_DIR = Path(__file__).parent / "static"
SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_BODY_BYTES = 64 * 1024
MAX_PAYLOAD_CHARS = 1000
HISTORY_LIMIT = 50


class BadRequest(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def parse_chat_message(data: Any, max_chars: int) -> tuple[str, str | None, str | None, str | None]:
    """Validate one client message; returns (session, text, payload, client id)."""
    if not isinstance(data, dict):
        raise BadRequest(400, "invalid_body", "The body must be a JSON object.")
    session = data.get("session")
    if not isinstance(session, str) or not SESSION_RE.match(session):
        raise BadRequest(
            400, "invalid_session", "'session' must be 8-64 characters of A-Z, a-z, 0-9, _ or -."
        )
    text, payload, client_id = data.get("text"), data.get("payload"), data.get("message_id")
    if client_id is not None and (not isinstance(client_id, str) or not 1 <= len(client_id) <= 128):
        raise BadRequest(400, "invalid_message_id", "'message_id' must be a string of 1-128 chars.")
    if payload is not None:
        if not isinstance(payload, str) or not payload.startswith("/"):
            raise BadRequest(400, "invalid_payload", "'payload' must be a string starting with /.")
        if len(payload) > MAX_PAYLOAD_CHARS:
            raise BadRequest(413, "payload_too_long", "'payload' is too long.")
        return session, None, payload, client_id
    if text is None or not isinstance(text, str):
        raise BadRequest(400, "missing_text", "Send 'text' (a string) or a button 'payload'.")
    text = text.strip()
    if not text:
        raise BadRequest(400, "empty_message", "The message is empty.")
    if len(text) > max_chars:
        raise BadRequest(
            413, "message_too_long", f"Messages can be at most {max_chars} characters long."
        )
    return session, text, None, client_id


class WebChannel:
    """Mounts the widget, the WebSocket and the REST API; delivers outbound to open sockets."""

    def __init__(self, router: Router, max_chars: int) -> None:
        self.router = router
        self.max_chars = max_chars
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}

    def mount(self, app: web.Application) -> None:
        app.router.add_get("/", self.index)
        app.router.add_static("/static/", STATIC_DIR, show_index=False)
        app.router.add_post("/api/v1/chat", self.chat)
        app.router.add_get("/api/v1/sessions/{session}/messages", self.history)
        app.router.add_get("/ws", self.websocket)
        self.router.outbox.register(CHANNEL, self)

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    async def deliver(self, external_id: str, message: dict[str, Any]) -> bool:
        sockets = [ws for ws in self._sockets.get(external_id, set()) if not ws.closed]
        sent = False
        for ws in sockets:
            try:
                await ws.send_json({"type": "message", "message": message})
                sent = True
            except (ConnectionError, RuntimeError):
                continue
        return sent

    async def admit_campaign(self) -> None:
        return None  # the web chat has no sending budget to share

    async def prepare_campaign(self, replies: list[Reply]) -> None:
        return None  # nothing to look up before sending

    async def send_campaign(self, external_id: str, reply: Reply) -> SendOutcome:
        """Campaign messages reach the web chat through its transcript (stored by the sender);
        an open chat window also gets it at once."""
        message = {"id": None, "role": "bot", **reply.to_json()}
        announce_wire()
        for ws in [ws for ws in self._sockets.get(external_id, set()) if not ws.closed]:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json({"type": "message", "message": message})
        return SendOutcome("sent")

    # --- REST -------------------------------------------------------------------------------
    async def chat(self, request: web.Request) -> web.Response:
        try:
            data = await _read_json(request)
            session, text, payload, client_id = parse_chat_message(data, self.max_chars)
        except BadRequest as error:
            return error_response(error.status, error.code, error.message)
        inbound = InboundMessage(
            channel=CHANNEL,
            external_id=session,
            text=text,
            payload=payload,
            client_message_id=client_id,
            metadata=_metadata(data),
        )
        turn = await self.router.handle(inbound)
        await self.router.outbox.mark_delivered(turn.replies)
        status = 503 if turn.failed else 200
        return web.json_response(
            {"session": session, "messages": [message_json(m) for m in turn.replies]},
            status=status,
            headers={"Retry-After": "30"} if turn.failed else None,
        )

    async def history(self, request: web.Request) -> web.Response:
        session = request.match_info["session"]
        if not SESSION_RE.match(session):
            return error_response(400, "invalid_session", "Malformed session id.")
        messages = await self._transcript(session)
        if messages is None:
            return error_response(404, "unknown_session", "No conversation with that session id.")
        return web.json_response({"session": session, "messages": messages})

    async def _transcript(self, session: str) -> list[dict[str, Any]] | None:
        conversation_id = f"{CHANNEL}:{session}"

        def load(db: Any) -> list[Message] | None:
            if conversations.find_conversation(db, conversation_id) is None:
                return None
            return conversations.transcript(db, conversation_id, HISTORY_LIMIT)

        messages = await self.router.shop.transaction(load)
        return None if messages is None else [message_json(m) for m in messages]

    # --- WebSocket --------------------------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        session = request.query.get("session", "")
        ws = web.WebSocketResponse(heartbeat=25, max_msg_size=MAX_BODY_BYTES)
        await ws.prepare(request)
        if not SESSION_RE.match(session):
            await ws.send_json(
                {"type": "error", "code": "invalid_session", "message": "Malformed session id."}
            )
            await ws.close()
            return ws
        self._sockets.setdefault(session, set()).add(ws)
        try:
            await ws.send_json(
                {"type": "history", "messages": await self._transcript(session) or []}
            )
            # whatever was still pending for this session has now been shown
            await self.router.outbox.flush(f"{CHANNEL}:{session}")
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    await self._on_frame(ws, session, frame.data)
                elif frame.type == WSMsgType.ERROR:
                    break
        finally:
            self._sockets.get(session, set()).discard(ws)
            if not self._sockets.get(session):
                self._sockets.pop(session, None)
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, session: str, raw: str) -> None:
        client_id: str | None = None
        try:
            data = json.loads(raw)
            if isinstance(data, dict) and isinstance(data.get("id"), str):
                client_id = data["id"]
            if not isinstance(data, dict) or data.get("type") != "message":
                raise BadRequest(400, "invalid_frame", 'Expected {"type": "message", ...}.')
            data["session"] = session
            data["message_id"] = data.get("id")
            _, text, payload, client_id = parse_chat_message(data, self.max_chars)
        except json.JSONDecodeError:
            await ws.send_json({"type": "error", "code": "invalid_json", "message": "Bad JSON."})
            return
        except BadRequest as error:
            await ws.send_json(
                {"type": "error", "id": client_id, "code": error.code, "message": error.message}
            )
            return
        inbound = InboundMessage(
            channel=CHANNEL,
            external_id=session,
            text=text,
            payload=payload,
            client_message_id=client_id,
            metadata=_metadata(data),
        )

        async def acknowledge(stored: Message) -> None:
            await ws.send_json({"type": "ack", "id": client_id, "message_id": stored.id})
            await ws.send_json({"type": "typing", "on": True})

        turn: Turn | None = None
        try:
            turn = await self.router.handle(inbound, on_stored=acknowledge)
        finally:
            if not ws.closed:
                await ws.send_json({"type": "typing", "on": False})
        if turn.duplicate:
            return
        await self.router.outbox.flush(inbound.conversation_id)


async def _read_json(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise BadRequest(413, "body_too_large", f"The body can be at most {MAX_BODY_BYTES} bytes.")
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(413, "body_too_large", f"The body can be at most {MAX_BODY_BYTES} bytes.")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise BadRequest(400, "invalid_encoding", "The body must be UTF-8 encoded JSON.") from error
    except json.JSONDecodeError as error:
        raise BadRequest(
            400, "invalid_json", f"The body is not valid JSON: {error.msg}."
        ) from error


def _metadata(data: dict[str, Any]) -> dict[str, Any]:
    title = data.get("title")
    return {"title": title[:200]} if isinstance(title, str) and title else {}
