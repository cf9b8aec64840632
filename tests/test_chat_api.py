"""The chat API's contract with clients: bad input, dedupe, the WebSocket protocol."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import aiohttp
import pytest
from sqlmodel import select

from bot.store.db import make_engine, session_scope
from bot.store.models import Direction, Message
from tests.live_stack import Chat, Stack, post_json

pytestmark = pytest.mark.rasa


def chat_url(stack: Stack) -> str:
    return f"{stack.base_url}/api/v1/chat"


def messages_of(stack: Stack, session: str) -> list[Message]:
    engine = make_engine(f"sqlite:///{stack.data_dir / 'shop.db'}")
    with session_scope(engine) as db:
        return list(
            db.exec(select(Message).where(Message.conversation_id == f"web:{session}")).all()
        )


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b'{"session": "abcdefgh", "text": ', 400, "invalid_json"),
        (b"\xff\xfe\x00garbage", 400, "invalid_encoding"),
        (b"[1, 2, 3]", 400, "invalid_body"),
        (b'{"text": "hi"}', 400, "invalid_session"),
        (b'{"session": "../../etc", "text": "hi"}', 400, "invalid_session"),
        (b'{"session": "abcdefgh", "text": "   "}', 400, "empty_message"),
        (b'{"session": "abcdefgh"}', 400, "missing_text"),
        (b'{"session": "abcdefgh", "text": 42}', 400, "missing_text"),
        (b'{"session": "abcdefgh", "payload": "greet"}', 400, "invalid_payload"),
    ],
)
def test_bad_requests_get_json_errors(stack: Stack, raw: bytes, status: int, code: str) -> None:
    got_status, body = post_json(chat_url(stack), None, raw=raw)
    assert got_status == status
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_ten_kilobyte_message_is_refused_clearly_and_nothing_is_stored(stack: Stack) -> None:
    session = "big" + secrets.token_hex(6)
    status, body = post_json(chat_url(stack), {"session": session, "text": "a" * 10_000})
    assert status == 413
    assert body["error"]["code"] == "message_too_long"
    assert "4000" in body["error"]["message"]
    assert messages_of(stack, session) == []


def test_oversized_body_is_refused(stack: Stack) -> None:
    status, body = post_json(
        chat_url(stack), {"session": "abcdefgh", "text": "hi", "pad": "x" * 100_000}
    )
    assert status == 413 and body["error"]["code"] == "body_too_large"


def test_unknown_session_transcript_is_404(stack: Stack) -> None:
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{stack.base_url}/api/v1/sessions/nosuchsession123/messages")
    assert error.value.code == 404
    assert json.loads(error.value.read())["error"]["code"] == "unknown_session"


def test_a_retried_message_is_answered_once(stack: Stack, chat: Chat) -> None:
    first = chat.send("hello", message_id="client-msg-1")
    again = chat.send("hello", message_id="client-msg-1")
    assert [m["id"] for m in first] == [m["id"] for m in again]
    stored = messages_of(stack, chat.session)
    assert len([m for m in stored if m.direction == Direction.inbound]) == 1
    assert len([m for m in stored if m.direction == Direction.outbound]) == len(first)


def test_transcript_keeps_both_sides_in_order(stack: Stack, chat: Chat) -> None:
    chat.send("hi")
    chat.send(payload="/capabilities", title="What can you do?")
    import urllib.request

    with urllib.request.urlopen(f"{stack.base_url}/api/v1/sessions/{chat.session}/messages") as r:
        transcript = json.loads(r.read())["messages"]
    roles = [m["role"] for m in transcript]
    assert roles == ["user", "bot", "user", "bot"]
    assert transcript[2]["text"] == "What can you do?"  # the button's title, not its payload


def test_concurrent_messages_of_one_conversation_reach_rasa_in_order(
    stack: Stack, chat: Chat
) -> None:
    async def burst() -> list[Any]:
        async with aiohttp.ClientSession() as http:

            async def send(text: str, i: int) -> Any:
                body = {"session": chat.session, "text": text, "message_id": f"m{i}"}
                async with http.post(chat_url(stack), json=body) as response:
                    return await response.json()

            return await asyncio.gather(
                send("where is my order", 0), send("what can you do", 1), send("thanks", 2)
            )

    answers = asyncio.run(burst())
    assert all(a["messages"] for a in answers)
    stored = messages_of(stack, chat.session)
    inbound = [m for m in stored if m.direction == Direction.inbound]
    assert len(inbound) == 3 and all(m.status.value == "handled" for m in inbound)


def test_websocket_protocol(stack: Stack) -> None:
    session = "ws" + secrets.token_hex(8)

    async def talk() -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"{stack.base_url}/ws?session={session}") as ws:
                frames.append(await ws.receive_json(timeout=10))
                await ws.send_json({"type": "message", "id": "c1", "text": "hello"})
                while True:
                    frame = await ws.receive_json(timeout=30)
                    frames.append(frame)
                    if frame["type"] == "message":
                        break
                await ws.send_str("not json")
                frames.append(await ws.receive_json(timeout=10))
            # a reload: the history has both sides
            async with http.ws_connect(f"{stack.base_url}/ws?session={session}") as ws:
                frames.append(await ws.receive_json(timeout=10))
        return frames

    frames = asyncio.run(talk())
    assert frames[0] == {"type": "history", "messages": []}
    kinds = [f["type"] for f in frames[1:]]
    assert kinds[0] == "ack" and frames[1]["id"] == "c1"
    assert "typing" in kinds
    reply = next(f for f in frames if f["type"] == "message")["message"]
    assert reply["role"] == "bot" and reply["buttons"]
    assert frames[-2]["type"] == "error" and frames[-2]["code"] == "invalid_json"
    history = frames[-1]
    assert history["type"] == "history"
    assert [m["role"] for m in history["messages"]] == ["user", "bot"]


def test_action_endpoint_accepts_the_large_trackers_of_long_conversations(stack: Stack) -> None:
    """Rasa posts the whole tracker + domain to /webhook; a long chat is far beyond 64 KiB."""
    events: list[dict[str, Any]] = []
    for turn in range(400):
        events.append(
            {
                "event": "user",
                "timestamp": turn,
                "text": f"message {turn} " + "x" * 200,
                "parse_data": {"intent": {"name": "greet", "confidence": 1.0}},
            }
        )
        events.append({"event": "action", "timestamp": turn, "name": "action_listen"})
    call = {
        "next_action": "action_fallback",
        "sender_id": "web:big-tracker",
        "version": "3.6.21",
        "domain": {"version": "3.1", "intents": ["greet"], "slots": {}, "responses": {}},
        "tracker": {
            "sender_id": "web:big-tracker",
            "slots": {},
            "latest_message": events[-2],
            "events": events,
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
    }
    body = json.dumps(call).encode()
    assert len(body) > 100_000
    status, result = post_json(f"{stack.base_url}/webhook", None, raw=body)
    assert status == 200, result
    assert result["responses"][0]["text"]


def test_a_malformed_action_call_gets_a_json_error(stack: Stack) -> None:
    status, result = post_json(f"{stack.base_url}/webhook", None, raw=b"{not json")
    assert status == 400 and "error" in result
    status, result = post_json(f"{stack.base_url}/webhook", {"next_action": "no_such_action"})
    assert status in (404, 449) and "error" in result
