"""Conversations, the deduplicating inbox and the outbox."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from bot.store.conversations import (
    find_conversation,
    get_or_create_conversation,
    mark_delivered,
    mark_inbound_handled,
    pending_outbound,
    record_delivery_failure,
    record_inbound,
    record_outbound,
    replies_to,
    transcript,
    unhandled_inbound,
)
from bot.store.db import session_scope
from bot.store.models import Conversation, Direction, Message, MessageStatus
from tests.conftest_store import NOW

pytest_plugins = ("tests.store_fixtures",)


def conversation(engine: Engine, external_id: str = "session-1234") -> str:
    with session_scope(engine) as session:
        return get_or_create_conversation(session, "web", external_id).id


def test_get_or_create_conversation_is_idempotent(store_engine: Engine) -> None:
    first = conversation(store_engine)
    assert first == "web:session-1234"
    assert conversation(store_engine) == first
    with session_scope(store_engine) as session:
        assert len(session.exec(select(Conversation)).all()) == 1
        found = find_conversation(session, first)
        assert found is not None and (found.channel, found.external_id) == ("web", "session-1234")
        assert find_conversation(session, "web:nobody") is None


def test_inbound_is_deduplicated_by_client_id(store_engine: Engine) -> None:
    conv, other = conversation(store_engine), conversation(store_engine, "x-9")
    meta = {"locale": "de", "nested": {"n": 1}}
    with session_scope(store_engine) as session:
        message, created = record_inbound(session, conv, "c-1", "Hallo", None, meta)
        assert created and message.status is MessageStatus.received
    with session_scope(store_engine) as session:
        again, created_again = record_inbound(session, conv, "c-1", "Hallo", None, {})
    assert not created_again and again.id == message.id and again.meta == meta
    with session_scope(store_engine) as session:
        _, other_conv = record_inbound(session, other, "c-1", "", None, {})
        _, no_id_1 = record_inbound(session, conv, None, None, "/greet", {})
        _, no_id_2 = record_inbound(session, conv, None, None, "/greet", {})
    assert other_conv and no_id_1 and no_id_2
    with session_scope(store_engine) as session:
        assert len(session.exec(select(Message)).all()) == 4


def test_duplicate_in_the_same_transaction_keeps_earlier_work(store_engine: Engine) -> None:
    """The dedupe savepoint must not roll back what the caller did before it."""
    conv = conversation(store_engine)
    with session_scope(store_engine) as session:
        first, _ = record_inbound(session, conv, "c-1", "one", None, {})
        outbound = record_outbound(session, conv, {"text": "reply"}, first.id)
        second, created = record_inbound(session, conv, "c-1", "one", None, {})
        assert not created and second.id == first.id
    with session_scope(store_engine) as session:
        assert session.get(Message, outbound.id) is not None


def test_concurrent_duplicate_inbound_stores_one_row(store_engine: Engine) -> None:
    """Two deliveries of one message race: the loser hits the unique constraint."""
    conv = conversation(store_engine)
    results: list[tuple[int | None, bool]] = []
    first_inserted = threading.Event()

    def second() -> None:
        first_inserted.wait()
        with session_scope(store_engine) as session:
            message, created = record_inbound(session, conv, "dup-1", "hi", None, {})
            results.append((message.id, created))

    thread = threading.Thread(target=second)
    thread.start()
    with session_scope(store_engine) as session:
        message, created = record_inbound(session, conv, "dup-1", "hi", None, {})
        first_inserted.set()
        time.sleep(0.3)  # the second insert now waits on our uncommitted row
        assert thread.is_alive()
    thread.join(timeout=10)
    assert created and results == [(message.id, False)]
    with session_scope(store_engine) as session:
        assert len(session.exec(select(Message)).all()) == 1


def test_unhandled_inbound_until_marked(store_engine: Engine) -> None:
    conv = conversation(store_engine)
    with session_scope(store_engine) as session:
        a, _ = record_inbound(session, conv, "a", "first", None, {})
        b, _ = record_inbound(session, conv, "b", "second", None, {})
    with session_scope(store_engine) as session:
        assert [m.id for m in unhandled_inbound(session)] == [a.id, b.id]
        assert a.id is not None
        mark_inbound_handled(session, a.id)
    with session_scope(store_engine) as session:
        assert [m.id for m in unhandled_inbound(session, conv)] == [b.id]
        assert unhandled_inbound(session, "web:other") == []


def test_outbox_pending_until_delivered(store_engine: Engine) -> None:
    conv, other = conversation(store_engine), conversation(store_engine, "other-77")
    body = {"text": "Your order is on its way.", "buttons": [{"title": "OK", "payload": "/ok"}]}
    with session_scope(store_engine) as session:
        inbound, _ = record_inbound(session, conv, "q", "where is my order", None, {})
        reply = record_outbound(session, conv, body, inbound.id)
        card = record_outbound(session, conv, {"text": None, "cards": []}, inbound.id)
        elsewhere = record_outbound(session, other, {"text": "hi"}, None)
    assert reply.status is MessageStatus.pending and reply.text == body["text"]
    assert card.text is None and reply.direction is Direction.outbound
    with session_scope(store_engine) as session:
        assert [m.id for m in pending_outbound(session)] == [reply.id, card.id, elsewhere.id]
        assert [m.id for m in pending_outbound(session, conv)] == [reply.id, card.id]
        assert reply.id is not None and inbound.id is not None
        record_delivery_failure(session, reply.id)
        assert [m.id for m in replies_to(session, inbound.id)] == [reply.id, card.id]
    with session_scope(store_engine) as session:
        delivered = mark_delivered(session, reply.id, NOW)
    assert delivered.attempts == 2 and delivered.delivered_at == NOW
    with session_scope(store_engine) as session:
        assert [m.id for m in pending_outbound(session, conv)] == [card.id]
        stored = session.get(Message, reply.id)
        assert stored is not None and stored.body == body
        assert stored.status is MessageStatus.delivered


def test_transcript_is_chronological_and_limited(store_engine: Engine) -> None:
    conv, other = conversation(store_engine), conversation(store_engine, "other")
    with session_scope(store_engine) as session:
        # Written out of order, and two share a timestamp: ids break the tie.
        record_inbound(session, conv, "3", "third", None, {}, now=NOW + timedelta(seconds=3))
        record_inbound(session, conv, "1", "first", None, {}, now=NOW + timedelta(seconds=1))
        record_outbound(session, conv, {"text": "second"}, None, now=NOW + timedelta(seconds=2))
        record_outbound(session, conv, {"text": "fourth"}, None, now=NOW + timedelta(seconds=3))
        record_inbound(session, other, "9", "x", None, {}, now=NOW)
    with session_scope(store_engine) as session:
        texts = [m.text for m in transcript(session, conv, limit=50)]
        assert texts == ["first", "second", "third", "fourth"]
        assert [m.text for m in transcript(session, conv, limit=2)] == ["third", "fourth"]


def test_unknown_message_id(store_engine: Engine) -> None:
    with pytest.raises(LookupError), session_scope(store_engine) as session:
        mark_delivered(session, 123456)
