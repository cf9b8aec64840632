"""Conversations and their inbox/outbox.

Every inbound message is stored before it is processed, deduplicated on the channel's (or
client's) message id, so a retried delivery is answered once. Every reply is stored as
`pending` and marked `delivered` once the channel accepted it, so a crash never loses or
repeats one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from .columns import utcnow
from .models import ChannelIdentity, Conversation, Direction, Message, MessageStatus


def conversation_id_for(channel: str, external_id: str) -> str:
    return f"{channel}:{external_id}"


def find_conversation(session: Session, conversation_id: str) -> Conversation | None:
    return session.get(Conversation, conversation_id)


def get_or_create_conversation(
    session: Session, channel: str, external_id: str, now: datetime | None = None
) -> Conversation:
    conversation_id = conversation_id_for(channel, external_id)
    existing = session.get(Conversation, conversation_id)
    if existing is not None:
        return existing
    conversation = Conversation(
        id=conversation_id, channel=channel, external_id=external_id, created_at=now or utcnow()
    )
    try:
        with session.begin_nested():
            session.add(conversation)
    except IntegrityError:
        # Another request created it between our read and our insert.
        found = session.get(Conversation, conversation_id, populate_existing=True)
        if found is None:
            raise
        return found
    return conversation


def link_customer(session: Session, conversation_id: str, customer_id: int) -> None:
    """Remember who this chat belongs to (after a successful order verification).

    The link is kept on the conversation and on the channel identity, so a later conversation
    from the same Telegram user or browser session is recognised too.
    """
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        return
    conversation.customer_id = customer_id
    session.add(conversation)
    identity = session.exec(
        select(ChannelIdentity).where(
            ChannelIdentity.channel == conversation.channel,
            ChannelIdentity.external_id == conversation.external_id,
        )
    ).first()
    if identity is None:
        identity = ChannelIdentity(
            channel=conversation.channel, external_id=conversation.external_id
        )
    identity.customer_id = customer_id
    session.add(identity)
    session.flush()


def linked_customer_id(session: Session, conversation_id: str) -> int | None:
    """The customer this chat was verified as, if any."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        return None
    if conversation.customer_id is not None:
        return conversation.customer_id
    identity = session.exec(
        select(ChannelIdentity).where(
            ChannelIdentity.channel == conversation.channel,
            ChannelIdentity.external_id == conversation.external_id,
        )
    ).first()
    return identity.customer_id if identity else None


def record_inbound(
    session: Session,
    conversation_id: str,
    client_message_id: str | None,
    text: str | None,
    payload: str | None,
    metadata: dict[str, Any],
    now: datetime | None = None,
) -> tuple[Message, bool]:
    """Store an inbound message; `(message, False)` when this id was already stored."""
    if client_message_id is not None:
        existing = _inbound_by_client_id(session, conversation_id, client_message_id)
        if existing is not None:
            return existing, False
    message = Message(
        conversation_id=conversation_id,
        direction=Direction.inbound,
        client_message_id=client_message_id,
        text=text,
        payload=payload,
        meta=dict(metadata),
        status=MessageStatus.received,
        created_at=now or utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        # A concurrent delivery of the same message won the unique constraint.
        if client_message_id is None:
            raise
        existing = _inbound_by_client_id(session, conversation_id, client_message_id)
        if existing is None:
            raise
        return existing, False
    return message, True


def _inbound_by_client_id(
    session: Session, conversation_id: str, client_message_id: str
) -> Message | None:
    stmt = select(Message).where(
        Message.conversation_id == conversation_id,
        Message.client_message_id == client_message_id,
    )
    return session.exec(stmt).first()


def mark_inbound_handled(session: Session, message_id: int) -> Message:
    message = _get(session, message_id)
    message.status = MessageStatus.handled
    session.add(message)
    session.flush()
    return message


def unhandled_inbound(session: Session, conversation_id: str | None = None) -> list[Message]:
    """Inbound messages not yet answered, oldest first (re-processed after a crash)."""
    stmt = select(Message).where(
        Message.direction == Direction.inbound, Message.status == MessageStatus.received
    )
    if conversation_id is not None:
        stmt = stmt.where(Message.conversation_id == conversation_id)
    return list(session.exec(stmt.order_by(col(Message.id))).all())


def record_outbound(
    session: Session,
    conversation_id: str,
    body: dict[str, Any],
    reply_to: int | None,
    now: datetime | None = None,
) -> Message:
    """Queue a channel-neutral reply; it stays `pending` until `mark_delivered`."""
    text = body.get("text")
    message = Message(
        conversation_id=conversation_id,
        direction=Direction.outbound,
        text=text if isinstance(text, str) else None,
        body=body,
        status=MessageStatus.pending,
        reply_to=reply_to,
        created_at=now or utcnow(),
    )
    session.add(message)
    session.flush()
    return message


def ensure_conversations(session: Session, first_seen: Mapping[tuple[str, str], datetime]) -> None:
    """Create the conversations of these (channel, external id) pairs that do not exist yet,
    in one statement; one created meanwhile by a customer's message is left as it is."""
    if not first_seen:
        return
    rows = [
        {"id": conversation_id_for(ch, ext), "channel": ch, "external_id": ext, "created_at": at}
        for (ch, ext), at in first_seen.items()
    ]
    dialect = session.get_bind().dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(Conversation)
    session.execute(statement.on_conflict_do_nothing(), rows)


def record_delivered_outbound(
    session: Session, messages: Sequence[tuple[str, dict[str, Any], dict[str, Any], datetime]]
) -> list[int]:
    """Store outbound messages that a channel already accepted (campaign sends), as
    (conversation id, body, metadata, time); their ids in the same order."""
    if not messages:
        return []
    rows = [
        {
            "conversation_id": conversation_id,
            "direction": Direction.outbound,
            "text": body.get("text") if isinstance(body.get("text"), str) else None,
            "body": body,
            "meta": meta,
            "status": MessageStatus.delivered,
            "attempts": 1,
            "created_at": at,
            "delivered_at": at,
        }
        for conversation_id, body, meta, at in messages
    ]
    result = session.execute(
        insert(Message).returning(col(Message.id), sort_by_parameter_order=True), rows
    )
    return [int(row[0]) for row in result.all()]


def mark_delivered(session: Session, message_id: int, now: datetime | None = None) -> Message:
    message = _get(session, message_id)
    message.status = MessageStatus.delivered
    message.delivered_at = now or utcnow()
    message.attempts += 1
    session.add(message)
    session.flush()
    return message


def record_delivery_failure(session: Session, message_id: int) -> Message:
    """Count a failed send; the message stays pending for the next retry."""
    message = _get(session, message_id)
    message.attempts += 1
    session.add(message)
    session.flush()
    return message


def pending_outbound(session: Session, conversation_id: str | None = None) -> list[Message]:
    stmt = select(Message).where(
        Message.direction == Direction.outbound, Message.status == MessageStatus.pending
    )
    if conversation_id is not None:
        stmt = stmt.where(Message.conversation_id == conversation_id)
    return list(session.exec(stmt.order_by(col(Message.id))).all())


def replies_to(session: Session, inbound_id: int) -> list[Message]:
    stmt = select(Message).where(Message.reply_to == inbound_id).order_by(col(Message.id))
    return list(session.exec(stmt).all())


def transcript(session: Session, conversation_id: str, limit: int = 50) -> list[Message]:
    """The last `limit` messages of both directions, oldest first."""
    stmt = (
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        .limit(limit)
    )
    return list(reversed(session.exec(stmt).all()))


def _get(session: Session, message_id: int) -> Message:
    message = session.get(Message, message_id)
    if message is None:
        raise LookupError(f"no message with id {message_id}")
    return message
