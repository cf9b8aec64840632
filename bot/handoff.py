"""Human handoff: open a ticket, tell the customer what happens next, keep the bot quiet.

`escalate` opens (or reuses) the conversation's ticket and returns the reply for the customer:
their place in the queue, or — outside business hours — when someone will answer. While a
ticket is open the router hands every customer message to `HumanMode.intercept`, which stores it
for the console instead of sending it to Rasa. On resolve the bot asks a 1-5 CSAT question; the
answer (a button or a bare digit) is stored with the ticket, again without Rasa.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.channels.base import Button, ProductCard, Reply
from bot.settings import Settings
from bot.shop import Shop
from bot.store import conversations, support
from bot.store.models import Message
from bot.store.support import HandoffTicket, StaffUser, TicketState

# Why a conversation was escalated (stored on the ticket, counted on the report page).
ASKED_FOR_HUMAN = "asked_for_human"
REPEATED_FALLBACK = "repeated_fallback"
COMPLAINT = "complaint"
VERIFICATION_FAILED = "verification_failed"
REASONS = (ASKED_FOR_HUMAN, REPEATED_FALLBACK, COMPLAINT, VERIFICATION_FAILED)

CSAT_PREFIX = "/csat"
CSAT_QUESTION = (
    "Our team has handed you back to me, the shop assistant. How happy are you with the help "
    "you got? Tap 1 (not at all) to 5 (very happy)."
)
CSAT_THANKS = "Thank you for the rating! Is there anything else I can help you with?"
_CSAT_PAYLOAD = re.compile(r'^/csat\{\s*"score"\s*:\s*"?([1-5])"?\s*\}$')
_BARE_SCORE = re.compile(r"^\s*([1-5])\s*(?:/\s*5|stars?|★+)?\s*[.!]?\s*$", re.IGNORECASE)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


# --- business hours -------------------------------------------------------------------------


class InvalidSupportHours(ValueError):
    """SUPPORT_HOURS could not be read; the message shows the expected form."""


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours per weekday (0 = Monday) in one time zone."""

    zone: ZoneInfo
    hours: dict[int, tuple[tuple[time, time], ...]]

    @classmethod
    def parse(cls, spec: str, timezone: str) -> BusinessHours:
        """`"mon-fri 09:00-18:00, sat 10:00-14:00"`; a day may list several ranges
        (`"mon 09:00-12:00 13:00-17:00"`); an empty spec means always open."""
        hours: dict[int, list[tuple[time, time]]] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            days_spec, *ranges = part.lower().split()
            if not ranges:
                raise InvalidSupportHours(f"{part!r}: expected e.g. 'mon-fri 09:00-18:00'")
            for day in _days(days_spec):
                for item in ranges:
                    start, _, end = item.partition("-")
                    opens, closes = _time(start), _time(end)
                    if closes <= opens:
                        raise InvalidSupportHours(f"{item!r}: the end must be after the start")
                    hours.setdefault(day, []).append((opens, closes))
        return cls(ZoneInfo(timezone), {d: tuple(sorted(r)) for d, r in hours.items()})

    @property
    def always_open(self) -> bool:
        return not self.hours

    def is_open(self, moment: datetime) -> bool:
        if self.always_open:
            return True
        local = moment.astimezone(self.zone)
        return any(a <= local.time() < b for a, b in self.hours.get(local.weekday(), ()))

    def next_opening(self, moment: datetime) -> datetime | None:
        """The next time support opens after `moment` (local time), None when always open."""
        if self.always_open:
            return None
        local = moment.astimezone(self.zone)
        for offset in range(8):
            day: date = local.date() + timedelta(days=offset)
            for opens, _ in self.hours.get(day.weekday(), ()):
                candidate = datetime.combine(day, opens, tzinfo=self.zone)
                if candidate > local:
                    return candidate
        return None


def _days(spec: str) -> list[int]:
    first, _, last = spec.partition("-")
    try:
        start = DAYS.index(first[:3])
        end = DAYS.index(last[:3]) if last else start
    except ValueError as error:
        raise InvalidSupportHours(f"{spec!r}: days are mon, tue, … sun or a range") from error
    return [(start + i) % 7 for i in range((end - start) % 7 + 1)]


def _time(text: str) -> time:
    try:
        hour, minute = text.split(":")
        if hour == "24" and minute == "00":
            return time(23, 59, 59)
        return time(int(hour), int(minute))
    except ValueError as error:
        raise InvalidSupportHours(f"{text!r}: times are HH:MM") from error


def business_hours(settings: Settings) -> BusinessHours:
    return BusinessHours.parse(settings.support_hours, settings.support_timezone)


def when_text(opening: datetime, now: datetime) -> str:
    """ "today at 09:00", "tomorrow at 09:00" or "on Monday at 09:00", plus the zone's city."""
    local_now = now.astimezone(opening.tzinfo)
    days = (opening.date() - local_now.date()).days
    day = (
        "today" if days == 0 else "tomorrow" if days == 1 else f"on {DAY_NAMES[opening.weekday()]}"
    )
    key = str(getattr(opening.tzinfo, "key", "") or "")
    place = key.rsplit("/", 1)[-1].replace("_", " ")
    return f"{day} at {opening:%H:%M}" + (f" ({place} time)" if place else "")


# --- escalation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Escalation:
    ticket_id: int
    created: bool
    state: TicketState
    position: int | None  # place in the queue while waiting
    opens_at: datetime | None  # set when support is closed now
    reply: Reply


def escalate_in(
    session: Session, conversation_id: str, reason: str, settings: Settings, now: datetime
) -> Escalation:
    """Open (or reuse) the conversation's ticket and word what the customer is told."""
    channel, _, external_id = conversation_id.partition(":")
    conversations.get_or_create_conversation(session, channel, external_id, now)
    ticket, created = support.open_ticket(session, conversation_id, reason, now)
    assert ticket.id is not None
    hours = business_hours(settings)
    opens_at = None if hours.is_open(now) else hours.next_opening(now)
    position = support.queue_position(session, ticket)
    if ticket.state == TicketState.assigned:
        holder = support.get_staff(session, ticket.assigned_to) if ticket.assigned_to else None
        text = (
            f"You're already talking with {holder.name if holder else 'our team'} — "
            "they'll answer right here in this chat."
        )
    elif opens_at is not None:
        text = (
            "I'll pass this on to a person from our support team. They're not in right now: "
            f"someone will answer {when_text(opens_at, now)}, and the reply will come here, in "
            "this same chat. Anything you write meanwhile reaches them too."
        )
    else:
        place = "next in line" if position == 1 else f"number {position} in the queue"
        text = (
            "I'm handing you over to a person from our support team. You're "
            f"{place} — they'll reply right here in this chat. Anything you write meanwhile "
            "reaches them too."
        )
    return Escalation(ticket.id, created, ticket.state, position, opens_at, Reply(text=text))


async def escalate(shop: Shop, conversation_id: str, reason: str) -> Escalation:
    """Open (or reuse) a ticket; returns what to tell the customer."""
    now = shop.now()
    return await shop.transaction(
        lambda s: escalate_in(s, conversation_id, reason, shop.settings, now)
    )


async def in_human_mode(shop: Shop, conversation_id: str) -> bool:
    """Whether a person owns (or is about to own) the conversation: no bot, no campaigns."""
    return await shop.transaction(lambda s: support.in_human_mode(s, conversation_id))


# --- staff side -----------------------------------------------------------------------------


def staff_reply(
    session: Session,
    ticket: HandoffTicket,
    staff: StaffUser,
    text: str | None,
    cards: tuple[ProductCard, ...] = (),
    now: datetime | None = None,
) -> Message:
    """Queue an agent's message for the customer's channel (the outbox delivers it)."""
    body = Reply(text=text or None, cards=cards).to_json()
    message = conversations.record_outbound(session, ticket.conversation_id, body, None, now)
    message.meta = {"staff": {"id": staff.id, "name": staff.name}, "ticket_id": ticket.id}
    session.add(message)
    session.flush()
    return message


def csat_question() -> Reply:
    return Reply(
        text=CSAT_QUESTION,
        buttons=tuple(Button(str(n), f'{CSAT_PREFIX}{{"score": {n}}}') for n in range(1, 6)),
    )


def ask_csat(session: Session, ticket: HandoffTicket, now: datetime | None = None) -> Message:
    message = conversations.record_outbound(
        session, ticket.conversation_id, csat_question().to_json(), None, now
    )
    message.meta = {"csat_for": ticket.id}
    session.add(message)
    session.flush()
    return message


# --- the router's rule ----------------------------------------------------------------------


def csat_score(message: Message, awaiting: bool) -> int | None:
    """The 1-5 score in a CSAT button payload, or in a bare digit while a rating is due."""
    match = _CSAT_PAYLOAD.match((message.payload or "").strip())
    if match:
        return int(match.group(1))
    if awaiting and message.payload is None:
        bare = _BARE_SCORE.match(message.text or "")
        if bare:
            return int(bare.group(1))
    return None


class HumanMode:
    """The router's "human mode" rule and the CSAT answer, both answered without Rasa."""

    def __init__(self, shop: Shop, on_change: Callable[[], None] | None = None) -> None:
        self.shop = shop
        self.on_change = on_change or (lambda: None)

    async def intercept(self, message: Message) -> list[Message] | None:
        """Handle a stored inbound message when a person owns the conversation (stored for the
        console, no reply) or when it rates the help; None lets the bot answer it."""
        now = self.shop.now()
        window = timedelta(hours=self.shop.settings.csat_window_hours)

        def work(session: Session) -> tuple[list[Message] | None, bool]:
            assert message.id is not None
            conversation_id = message.conversation_id
            if support.in_human_mode(session, conversation_id):
                conversations.mark_inbound_handled(session, message.id)
                return [], True
            is_csat_payload = (message.payload or "").startswith(CSAT_PREFIX)
            ticket = support.ticket_awaiting_csat(session, conversation_id, now, window)
            score = csat_score(message, ticket is not None)
            if score is None:
                if not is_csat_payload:
                    return None, False
                reply = Reply(text="Thanks! Is there anything else I can help you with?")
            else:
                if ticket is not None:
                    support.record_csat(session, ticket, score, now)
                reply = Reply(text=CSAT_THANKS)
            saved = conversations.record_outbound(
                session, conversation_id, reply.to_json(), message.id, now
            )
            conversations.mark_inbound_handled(session, message.id)
            return [saved], score is not None and ticket is not None

        replies, changed = await self.shop.transaction(work)
        if changed:
            self.on_change()
        return replies
