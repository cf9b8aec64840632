"""Human support: handoff tickets, staff accounts, canned responses, internal notes, audit log.

Models and their repository functions. `models.py` imports this module at its end so that
Alembic sees the tables; migration `0004_support` creates them.

A ticket moves waiting → assigned → resolved (an assigned ticket may be transferred to another
agent or released back to the queue). Every state change is one conditional UPDATE whose WHERE
names the state it expects, so two agents clicking "claim" at once cannot both win: the loser's
UPDATE matches no row and it is told who has the ticket.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import JSON, CheckConstraint, Column, Index, and_, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, Text, col, select

from .columns import EnumText, UTCDateTime, utcnow
from .errors import StoreError
from .models import Conversation, Customer, Message


class StaffRole(StrEnum):
    agent = "agent"  # answers customers
    marketer = "marketer"  # campaigns; never sees tickets
    admin = "admin"  # everything, plus staff and canned responses


class TicketState(StrEnum):
    waiting = "waiting"  # in the queue, nobody has it
    assigned = "assigned"  # one agent owns the conversation
    resolved = "resolved"  # handed back to the bot


# target state -> the states it may be reached from
ALLOWED_FROM: dict[TicketState, frozenset[TicketState]] = {
    TicketState.assigned: frozenset({TicketState.waiting, TicketState.assigned}),  # claim/transfer
    TicketState.waiting: frozenset({TicketState.assigned}),  # release back to the queue
    TicketState.resolved: frozenset({TicketState.assigned}),
}
OPEN_STATES = frozenset({TicketState.waiting, TicketState.assigned})
TICKET_ROLES = frozenset({StaffRole.agent, StaffRole.admin})


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)  # stored lower-case
    name: str = Field(max_length=100)
    role: StaffRole = Field(sa_type=EnumText(StaffRole))
    password_hash: str = Field(max_length=255)
    active: bool = Field(default=True)
    created_at: datetime = Field(sa_type=UTCDateTime(), default_factory=utcnow)
    last_login_at: datetime | None = Field(sa_type=UTCDateTime(), default=None)


class HandoffTicket(SQLModel, table=True):
    """One request for a person. `open_key` holds the conversation id while the ticket is open
    and NULL afterwards: a unique column that makes "one open ticket per conversation" hold
    on SQLite and PostgreSQL alike (both allow many NULLs)."""

    __tablename__ = "handoff_ticket"
    __table_args__ = (
        CheckConstraint("csat IS NULL OR (csat >= 1 AND csat <= 5)", name="csat_range"),
        Index("ix_handoff_ticket_state_created", "state", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversation.id", max_length=200, index=True)
    open_key: str | None = Field(default=None, max_length=200, unique=True)
    reason: str = Field(max_length=32)
    state: TicketState = Field(sa_type=EnumText(TicketState))
    assigned_to: int | None = Field(default=None, foreign_key="staff_user.id", index=True)
    created_at: datetime = Field(sa_type=UTCDateTime(), default_factory=utcnow)
    claimed_at: datetime | None = Field(sa_type=UTCDateTime(), default=None)
    resolved_at: datetime | None = Field(sa_type=UTCDateTime(), default=None)
    csat: int | None = Field(default=None)
    csat_asked_at: datetime | None = Field(sa_type=UTCDateTime(), default=None)
    csat_at: datetime | None = Field(sa_type=UTCDateTime(), default=None)


class CannedResponse(SQLModel, table=True):
    __tablename__ = "canned_response"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=100, unique=True)
    body: str = Field(sa_type=Text)
    updated_by: int | None = Field(default=None, foreign_key="staff_user.id")
    updated_at: datetime = Field(sa_type=UTCDateTime(), default_factory=utcnow)


class TicketNote(SQLModel, table=True):
    """Staff-only notes on a ticket; never sent to the customer."""

    __tablename__ = "ticket_note"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="handoff_ticket.id", index=True)
    author_id: int = Field(foreign_key="staff_user.id")
    body: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime(), default_factory=utcnow)


class AuditLog(SQLModel, table=True):
    """Who did what, when. `actor` is a snapshot of the e-mail (accounts may be removed)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_action_created", "action", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int | None = Field(default=None, foreign_key="staff_user.id", index=True)
    actor: str = Field(max_length=254)
    action: str = Field(max_length=64)
    ticket_id: int | None = Field(default=None, foreign_key="handoff_ticket.id", index=True)
    details: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("details", JSON, nullable=False)
    )
    created_at: datetime = Field(sa_type=UTCDateTime(), default_factory=utcnow)


# --- errors ---------------------------------------------------------------------------------


class SupportError(StoreError):
    """Base of the support errors; `message` is readable by staff."""


class TicketNotFound(SupportError):
    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"There is no ticket #{ticket_id}.")
        self.ticket_id = ticket_id


class IllegalTransition(SupportError):
    def __init__(self, ticket_id: int, current: TicketState, target: TicketState) -> None:
        super().__init__(
            f"Ticket #{ticket_id} is {current.value}; it cannot become {target.value}."
        )
        self.ticket_id = ticket_id
        self.current = current
        self.target = target


class AlreadyClaimed(SupportError):
    def __init__(self, ticket_id: int, holder: str) -> None:
        super().__init__(f"{holder} has already claimed ticket #{ticket_id}.")
        self.ticket_id = ticket_id
        self.holder = holder


class NotYourTicket(SupportError):
    def __init__(self, ticket_id: int, holder: str) -> None:
        super().__init__(f"Ticket #{ticket_id} belongs to {holder}; ask them or an admin.")
        self.ticket_id = ticket_id
        self.holder = holder


class InvalidStaff(SupportError):
    """A staff account cannot be created or used as asked (duplicate, bad role, inactive)."""


# --- staff ----------------------------------------------------------------------------------

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so a miss costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")
MIN_PASSWORD_CHARS = 10


def create_staff(
    session: Session, email: str, name: str, role: StaffRole | str, password: str
) -> StaffUser:
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise InvalidStaff(f"{email!r} is not an e-mail address.")
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidStaff(f"Passwords need at least {MIN_PASSWORD_CHARS} characters.")
    try:
        role = StaffRole(role)
    except ValueError as error:
        raise InvalidStaff(f"Unknown role {role!r}: use agent, marketer or admin.") from error
    user = StaffUser(
        email=email,
        name=name.strip()[:100] or email,
        role=role,
        password_hash=_hasher.hash(password),
    )
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError as error:
        raise InvalidStaff(f"There already is a staff account for {email}.") from error
    return user


def set_password(session: Session, user: StaffUser, password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidStaff(f"Passwords need at least {MIN_PASSWORD_CHARS} characters.")
    user.password_hash = _hasher.hash(password)
    session.add(user)
    session.flush()


def authenticate(
    session: Session, email: str, password: str, now: datetime | None = None
) -> StaffUser | None:
    """The active account with this e-mail and password, or None (same cost either way)."""
    user = find_staff_by_email(session, email)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = now or utcnow()
    session.add(user)
    session.flush()
    return user


def find_staff_by_email(session: Session, email: str) -> StaffUser | None:
    stmt = select(StaffUser).where(StaffUser.email == email.strip().lower())
    return session.exec(stmt).first()


def get_staff(session: Session, staff_id: int) -> StaffUser | None:
    return session.get(StaffUser, staff_id)


def list_staff(session: Session, roles: frozenset[StaffRole] | None = None) -> list[StaffUser]:
    stmt = select(StaffUser).order_by(col(StaffUser.name))
    if roles is not None:
        stmt = stmt.where(col(StaffUser.role).in_([r.value for r in roles]))
    return list(session.exec(stmt).all())


def set_staff_active(session: Session, staff_id: int, active: bool) -> StaffUser:
    user = session.get(StaffUser, staff_id)
    if user is None:
        raise InvalidStaff(f"There is no staff account #{staff_id}.")
    user.active = active
    session.add(user)
    session.flush()
    return user


# --- tickets --------------------------------------------------------------------------------


def open_ticket_for(session: Session, conversation_id: str) -> HandoffTicket | None:
    stmt = select(HandoffTicket).where(HandoffTicket.open_key == conversation_id)
    return session.exec(stmt).first()


def in_human_mode(session: Session, conversation_id: str) -> bool:
    """True while a ticket of this conversation is waiting or assigned."""
    return open_ticket_for(session, conversation_id) is not None


def in_human_mode_among(session: Session, conversation_ids: Collection[str]) -> set[str]:
    """Which of these conversations a person owns right now."""
    if not conversation_ids:
        return set()
    stmt = select(HandoffTicket.open_key).where(
        col(HandoffTicket.open_key).in_(list(conversation_ids))
    )
    return {key for key in session.exec(stmt).all() if key is not None}


def open_ticket(
    session: Session, conversation_id: str, reason: str, now: datetime | None = None
) -> tuple[HandoffTicket, bool]:
    """The conversation's open ticket, or a new waiting one; `(ticket, created)`."""
    existing = open_ticket_for(session, conversation_id)
    if existing is not None:
        return existing, False
    ticket = HandoffTicket(
        conversation_id=conversation_id,
        open_key=conversation_id,
        reason=reason[:32],
        state=TicketState.waiting,
        created_at=now or utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(ticket)
    except IntegrityError:
        found = open_ticket_for(session, conversation_id)
        if found is None:
            raise
        return found, False
    return ticket, True


def get_ticket(session: Session, ticket_id: int) -> HandoffTicket:
    ticket = session.get(HandoffTicket, ticket_id, populate_existing=True)
    if ticket is None:
        raise TicketNotFound(ticket_id)
    return ticket


def queue_position(session: Session, ticket: HandoffTicket) -> int | None:
    """1 for the next ticket to be claimed; None once someone has it."""
    if ticket.state != TicketState.waiting:
        return None
    created, ticket_id = col(HandoffTicket.created_at), col(HandoffTicket.id)
    stmt = select(func.count()).where(
        HandoffTicket.state == TicketState.waiting,
        or_(
            created < ticket.created_at,
            and_(created == ticket.created_at, ticket_id <= ticket.id),
        ),
    )
    return int(session.exec(stmt).one())


def _holder_name(session: Session, ticket: HandoffTicket) -> str:
    holder = session.get(StaffUser, ticket.assigned_to) if ticket.assigned_to else None
    return holder.name if holder else "someone else"


def _transition(
    session: Session,
    ticket_id: int,
    target: TicketState,
    values: dict[str, Any],
    *conditions: Any,
) -> bool:
    sources = [s.value for s in ALLOWED_FROM[target]]
    result = session.execute(
        update(HandoffTicket)
        .where(
            col(HandoffTicket.id) == ticket_id, col(HandoffTicket.state).in_(sources), *conditions
        )
        .values(state=target.value, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def claim(
    session: Session, ticket_id: int, staff: StaffUser, now: datetime | None = None
) -> HandoffTicket:
    """Take a waiting ticket. Exactly one of several concurrent claims wins; the others get
    `AlreadyClaimed` naming the winner."""
    _check_ticket_role(staff)
    won = session.execute(
        update(HandoffTicket)
        .where(col(HandoffTicket.id) == ticket_id, col(HandoffTicket.state) == TicketState.waiting)
        .values(state=TicketState.assigned.value, assigned_to=staff.id, claimed_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    ticket = get_ticket(session, ticket_id)
    if won.rowcount == 1:  # type: ignore[attr-defined]
        return ticket
    if ticket.state == TicketState.assigned:
        if ticket.assigned_to == staff.id:
            return ticket  # a double click: it is ours already
        raise AlreadyClaimed(ticket_id, _holder_name(session, ticket))
    raise IllegalTransition(ticket_id, ticket.state, TicketState.assigned)


def _owned_transition(
    session: Session,
    ticket_id: int,
    staff: StaffUser,
    target: TicketState,
    values: dict[str, Any],
) -> HandoffTicket:
    """A change only the ticket's agent (or an admin) may make, from an allowed state."""
    _check_ticket_role(staff)
    ticket = get_ticket(session, ticket_id)
    if ticket.state not in ALLOWED_FROM[target] or ticket.state == TicketState.waiting:
        raise IllegalTransition(ticket_id, ticket.state, target)
    if staff.role != StaffRole.admin and ticket.assigned_to != staff.id:
        raise NotYourTicket(ticket_id, _holder_name(session, ticket))
    expected = ticket.assigned_to
    ok = _transition(session, ticket_id, target, values, col(HandoffTicket.assigned_to) == expected)
    if not ok:  # changed between our read and our write
        fresh = get_ticket(session, ticket_id)
        if fresh.state not in ALLOWED_FROM[target] or fresh.state == TicketState.waiting:
            raise IllegalTransition(ticket_id, fresh.state, target)
        raise NotYourTicket(ticket_id, _holder_name(session, fresh))
    return get_ticket(session, ticket_id)


def transfer(session: Session, ticket_id: int, staff: StaffUser, to_staff_id: int) -> HandoffTicket:
    target = session.get(StaffUser, to_staff_id)
    if target is None or not target.active or target.role not in TICKET_ROLES:
        raise InvalidStaff("Tickets can only go to an active agent or admin.")
    return _owned_transition(
        session, ticket_id, staff, TicketState.assigned, {"assigned_to": to_staff_id}
    )


def release(session: Session, ticket_id: int, staff: StaffUser) -> HandoffTicket:
    """Put an assigned ticket back in the queue."""
    return _owned_transition(
        session, ticket_id, staff, TicketState.waiting, {"assigned_to": None, "claimed_at": None}
    )


def resolve(
    session: Session, ticket_id: int, staff: StaffUser, now: datetime | None = None
) -> HandoffTicket:
    """Hand the conversation back to the bot."""
    now = now or utcnow()
    return _owned_transition(
        session,
        ticket_id,
        staff,
        TicketState.resolved,
        {"resolved_at": now, "open_key": None, "csat_asked_at": now},
    )


def _check_ticket_role(staff: StaffUser) -> None:
    if staff.role not in TICKET_ROLES or not staff.active:
        raise InvalidStaff("Only active agents and admins handle tickets.")


def ticket_awaiting_csat(
    session: Session, conversation_id: str, now: datetime, within: timedelta
) -> HandoffTicket | None:
    """The latest resolved ticket whose CSAT question is still unanswered (and recent)."""
    stmt = (
        select(HandoffTicket)
        .where(
            HandoffTicket.conversation_id == conversation_id,
            HandoffTicket.state == TicketState.resolved,
            col(HandoffTicket.csat).is_(None),
            col(HandoffTicket.csat_asked_at) >= now - within,
        )
        .order_by(col(HandoffTicket.resolved_at).desc())
    )
    return session.exec(stmt).first()


def record_csat(session: Session, ticket: HandoffTicket, score: int, now: datetime) -> None:
    if not 1 <= score <= 5:
        raise ValueError(f"CSAT is 1-5, not {score}")
    ticket.csat = score
    ticket.csat_at = now
    session.add(ticket)
    session.flush()


def open_tickets(session: Session) -> list[HandoffTicket]:
    stmt = (
        select(HandoffTicket)
        .where(col(HandoffTicket.state).in_([s.value for s in OPEN_STATES]))
        .order_by(col(HandoffTicket.created_at), col(HandoffTicket.id))
    )
    return list(session.exec(stmt).all())


def tickets_of_conversation(session: Session, conversation_id: str) -> list[HandoffTicket]:
    stmt = (
        select(HandoffTicket)
        .where(HandoffTicket.conversation_id == conversation_id)
        .order_by(col(HandoffTicket.created_at))
    )
    return list(session.exec(stmt).all())


def tickets_since(session: Session, since: datetime) -> list[HandoffTicket]:
    stmt = select(HandoffTicket).where(col(HandoffTicket.created_at) >= since)
    return list(session.exec(stmt.order_by(col(HandoffTicket.created_at))).all())


def customer_of(session: Session, conversation_id: str) -> Customer | None:
    from .conversations import linked_customer_id

    customer_id = linked_customer_id(session, conversation_id)
    return session.get(Customer, customer_id) if customer_id is not None else None


def conversation_of(session: Session, ticket: HandoffTicket) -> Conversation | None:
    return session.get(Conversation, ticket.conversation_id)


def last_messages(session: Session, conversation_id: str, limit: int) -> list[Message]:
    from .conversations import transcript

    return transcript(session, conversation_id, limit)


# --- notes, canned responses, audit ---------------------------------------------------------


def add_note(
    session: Session, ticket_id: int, author: StaffUser, body: str, now: datetime | None = None
) -> TicketNote:
    get_ticket(session, ticket_id)
    assert author.id is not None
    note = TicketNote(
        ticket_id=ticket_id, author_id=author.id, body=body, created_at=now or utcnow()
    )
    session.add(note)
    session.flush()
    return note


def notes_of(session: Session, ticket_id: int) -> list[TicketNote]:
    stmt = select(TicketNote).where(TicketNote.ticket_id == ticket_id)
    return list(session.exec(stmt.order_by(col(TicketNote.created_at))).all())


def list_canned(session: Session) -> list[CannedResponse]:
    return list(session.exec(select(CannedResponse).order_by(col(CannedResponse.title))).all())


def save_canned(
    session: Session,
    title: str,
    body: str,
    author: StaffUser,
    canned_id: int | None = None,
    now: datetime | None = None,
) -> CannedResponse:
    title, body = title.strip()[:100], body.strip()
    if not title or not body:
        raise SupportError("A canned response needs a title and a text.")
    canned = (
        session.get(CannedResponse, canned_id)
        if canned_id
        else CannedResponse(title=title, body=body)
    )
    if canned is None:
        raise SupportError(f"There is no canned response #{canned_id}.")
    canned.title, canned.body = title, body
    canned.updated_by, canned.updated_at = author.id, now or utcnow()
    try:
        with session.begin_nested():
            session.add(canned)
    except IntegrityError as error:
        raise SupportError(f"A canned response called {title!r} exists already.") from error
    return canned


def delete_canned(session: Session, canned_id: int) -> CannedResponse:
    canned = session.get(CannedResponse, canned_id)
    if canned is None:
        raise SupportError(f"There is no canned response #{canned_id}.")
    session.delete(canned)
    session.flush()
    return canned


def audit(
    session: Session,
    staff: StaffUser | None,
    action: str,
    ticket_id: int | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
    actor: str | None = None,
) -> AuditLog:
    entry = AuditLog(
        staff_id=staff.id if staff else None,
        actor=(staff.email if staff else actor or "anonymous")[:254],
        action=action[:64],
        ticket_id=ticket_id,
        details=details or {},
        created_at=now or utcnow(),
    )
    session.add(entry)
    session.flush()
    return entry


def recent_audit(session: Session, limit: int = 200) -> list[AuditLog]:
    stmt = select(AuditLog).order_by(col(AuditLog.created_at).desc(), col(AuditLog.id).desc())
    return list(session.exec(stmt.limit(limit)).all())


def failed_logins_since(session: Session, email: str, since: datetime) -> int:
    stmt = select(AuditLog).where(
        AuditLog.action == "login_failed", col(AuditLog.created_at) >= since
    )
    email = email.strip().lower()
    return sum(1 for entry in session.exec(stmt).all() if entry.details.get("email") == email)
