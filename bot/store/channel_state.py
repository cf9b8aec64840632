"""What channels keep between messages: poller leases, long button payloads, consent, reachability.

Models and their repository functions. `models.py` imports this module at its end so that
Alembic sees the tables; migration `0002_telegram` creates them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import socket
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Index, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, Text, col, select

from .columns import UTCDateTime, utcnow
from .models import ChannelIdentity

MARKETING = "marketing"


class ChannelLease(SQLModel, table=True):
    """Who may run a singleton job (one Telegram poller per bot token) until `expires_at`."""

    __tablename__ = "channel_lease"

    name: str = Field(primary_key=True, max_length=100)
    holder: str = Field(max_length=200)
    acquired_at: datetime = Field(sa_type=UTCDateTime())
    expires_at: datetime = Field(sa_type=UTCDateTime())


class CallbackPayload(SQLModel, table=True):
    """A button payload too long for the channel's callback data, reached through a short id."""

    __tablename__ = "callback_payload"

    id: str = Field(primary_key=True, max_length=32)
    channel: str = Field(max_length=32)
    payload: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime(), default_factory=utcnow)


class Consent(SQLModel, table=True):
    """One opt-in or opt-out, append-only: the newest row for an identity and purpose counts."""

    __table_args__ = (
        Index("ix_consent_identity_created", "channel", "external_id", "purpose", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    channel: str = Field(max_length=32)
    external_id: str = Field(max_length=128)
    purpose: str = Field(default=MARKETING, max_length=32)
    opted_in: bool
    source: str = Field(max_length=100)  # e.g. "telegram:/stop", "web:checkbox"
    created_at: datetime = Field(sa_type=UTCDateTime(), default_factory=utcnow)


# --- leases ---------------------------------------------------------------------------------


def acquire_lease(
    session: Session, name: str, holder: str, ttl: timedelta, now: datetime | None = None
) -> bool:
    """Take or renew `name` for `holder`; False while someone else holds an unexpired lease."""
    now = now or utcnow()
    if _take_lease(
        session, name, holder, ttl, now,
        (col(ChannelLease.holder) == holder) | (col(ChannelLease.expires_at) < now),
    ):  # fmt: skip
        return True
    current = session.get(ChannelLease, name, populate_existing=True)
    if current is not None:
        # its holder was killed on this machine: no need to wait for the lease to run out
        return holder_has_died(current.holder) and _take_lease(
            session, name, holder, ttl, now, col(ChannelLease.holder) == current.holder
        )
    try:
        with session.begin_nested():
            lease = ChannelLease(name=name, holder=holder, acquired_at=now, expires_at=now + ttl)
            session.add(lease)
    except IntegrityError:
        return False  # another instance inserted it first
    return True


def _take_lease(
    session: Session,
    name: str,
    holder: str,
    ttl: timedelta,
    now: datetime,
    condition: ColumnElement[bool],
) -> bool:
    """Make `holder` the holder of `name` where `condition` holds; True when it did."""
    taken = session.execute(
        update(ChannelLease)
        .where(col(ChannelLease.name) == name, condition)
        .values(holder=holder, acquired_at=now, expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    return taken.rowcount == 1  # type: ignore[attr-defined]


def lease_holder() -> str:
    """This process as a lease holder: host, pid namespace, pid and a random tag."""
    return f"{socket.gethostname()}:{_pid_namespace()}:{os.getpid()}:{secrets.token_hex(4)}"


def holder_has_died(holder: str) -> bool:
    """True only for a holder that was a process of this host and pid namespace and no longer
    exists; a holder elsewhere (or of an older format) is alive until its lease runs out."""
    parts = holder.rsplit(":", 3)
    if len(parts) != 4 or parts[1] == "-":
        return False
    host, namespace, pid, _ = parts
    if host != socket.gethostname() or namespace != _pid_namespace() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


def can_tell_dead_holders() -> bool:
    """Whether this machine lets `holder_has_died` say yes (Linux: a pid namespace to read)."""
    return _pid_namespace() != "-"


def _pid_namespace() -> str:
    try:  # "pid:[4026531836]" on Linux: two containers may share a host name, never this
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    except OSError:
        return "-"


def release_lease(session: Session, name: str, holder: str) -> None:
    lease = session.get(ChannelLease, name)
    if lease is not None and lease.holder == holder:
        session.delete(lease)
        session.flush()


def lease_of(session: Session, name: str) -> ChannelLease | None:
    return session.get(ChannelLease, name, populate_existing=True)


# --- callback payloads ----------------------------------------------------------------------


def short_payload_id(session: Session, channel: str, payload: str) -> str:
    """A short id for `payload`, the same one every time the same payload is rendered."""
    digest = hashlib.blake2b(f"{channel}\0{payload}".encode(), digest_size=10).digest()
    key = base64.b32encode(digest).decode().rstrip("=").lower()
    existing = session.get(CallbackPayload, key)
    if existing is not None and existing.payload != payload:
        key = secrets.token_hex(8)  # a hash collision: fall back to a random id
    elif existing is not None:
        return key
    try:
        with session.begin_nested():
            session.add(CallbackPayload(id=key, channel=channel, payload=payload))
    except IntegrityError:
        pass  # rendered concurrently: the row holds the same payload
    return key


def payload_for(session: Session, key: str) -> str | None:
    row = session.get(CallbackPayload, key)
    return None if row is None else row.payload


# --- identities, reachability, consent ------------------------------------------------------


def get_or_create_identity(session: Session, channel: str, external_id: str) -> ChannelIdentity:
    stmt = select(ChannelIdentity).where(
        ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
    )
    found = session.exec(stmt).first()
    if found is not None:
        return found
    identity = ChannelIdentity(channel=channel, external_id=external_id)
    try:
        with session.begin_nested():
            session.add(identity)
    except IntegrityError:
        found = session.exec(stmt).first()
        if found is None:
            raise
        return found
    return identity


def mark_unreachable(
    session: Session, channel: str, external_id: str, now: datetime | None = None
) -> ChannelIdentity:
    """The customer blocked us (or deleted the chat): stop sending until they write again."""
    identity = get_or_create_identity(session, channel, external_id)
    if identity.unreachable_at is None:
        identity.unreachable_at = now or utcnow()
        session.add(identity)
        session.flush()
    return identity


def mark_reachable(session: Session, channel: str, external_id: str) -> ChannelIdentity:
    identity = get_or_create_identity(session, channel, external_id)
    if identity.unreachable_at is not None:
        identity.unreachable_at = None
        session.add(identity)
        session.flush()
    return identity


def record_consent(
    session: Session,
    channel: str,
    external_id: str,
    opted_in: bool,
    source: str,
    purpose: str = MARKETING,
    now: datetime | None = None,
) -> Consent:
    identity = get_or_create_identity(session, channel, external_id)
    consent = Consent(
        customer_id=identity.customer_id,
        channel=channel,
        external_id=external_id,
        purpose=purpose,
        opted_in=opted_in,
        source=source[:100],
        created_at=now or utcnow(),
    )
    session.add(consent)
    session.flush()
    return consent


def current_consent(
    session: Session, channel: str, external_id: str, purpose: str = MARKETING
) -> Consent | None:
    stmt = (
        select(Consent)
        .where(
            Consent.channel == channel,
            Consent.external_id == external_id,
            Consent.purpose == purpose,
        )
        .order_by(col(Consent.created_at).desc(), col(Consent.id).desc())
    )
    return session.exec(stmt).first()


def current_consents(
    session: Session,
    identities: Collection[tuple[str, str]] | None = None,
    purpose: str = MARKETING,
) -> dict[tuple[str, str], bool]:
    """The newest consent of each identity (all identities when None): opted in or not."""
    stmt = (
        select(Consent.channel, Consent.external_id, Consent.opted_in)
        .where(Consent.purpose == purpose)
        .order_by(col(Consent.created_at), col(Consent.id))
    )
    if identities is not None:
        if not identities:
            return {}
        # both columns, so the (channel, external_id, ...) index is used, not a table scan
        stmt = stmt.where(
            col(Consent.channel).in_({ch for ch, _ in identities}),
            col(Consent.external_id).in_({e for _, e in identities}),
        )
    found = {(ch, ext): opted for ch, ext, opted in session.exec(stmt).all()}
    if identities is None:
        return found
    return {key: value for key, value in found.items() if key in identities}


def unreachable_among(
    session: Session, identities: Collection[tuple[str, str]]
) -> set[tuple[str, str]]:
    if not identities:
        return set()
    stmt = select(ChannelIdentity.channel, ChannelIdentity.external_id).where(
        col(ChannelIdentity.channel).in_({ch for ch, _ in identities}),
        col(ChannelIdentity.external_id).in_({e for _, e in identities}),
        col(ChannelIdentity.unreachable_at).is_not(None),
    )
    return {(ch, ext) for ch, ext in session.exec(stmt).all() if (ch, ext) in identities}
