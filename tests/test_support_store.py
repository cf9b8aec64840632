"""Handoff tickets, staff and business hours in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from bot.handoff import BusinessHours, InvalidSupportHours, escalate_in, when_text
from bot.settings import Settings
from bot.store import conversations, support
from bot.store.db import session_scope
from bot.store.support import StaffUser, TicketState
from tests.conftest_store import NOW

pytest_plugins = ("tests.store_fixtures",)

HOURS = "mon-fri 09:00-18:00, sat 10:00-14:00"
BERLIN = "Europe/Berlin"


def staff(engine: Engine, email: str, role: str = "agent") -> StaffUser:
    with session_scope(engine) as session:
        return support.create_staff(session, email, email.split("@")[0].title(), role,
                                    "a long password")  # fmt: skip


def ticket_for(engine: Engine, external_id: str) -> int:
    with session_scope(engine) as session:
        conversations.get_or_create_conversation(session, "web", external_id)
        ticket, created = support.open_ticket(session, f"web:{external_id}", "asked_for_human")
        assert created and ticket.id is not None
        return ticket.id


def test_ticket_lifecycle_and_illegal_transitions(store_engine: Engine) -> None:
    ana, ben = staff(store_engine, "ana@x.io"), staff(store_engine, "ben@x.io")
    ticket_id = ticket_for(store_engine, "lifecycle-1")
    with session_scope(store_engine) as s:
        # a second escalation reuses the open ticket
        again, created = support.open_ticket(s, "web:lifecycle-1", "complaint")
        assert again.id == ticket_id and not created
        assert support.in_human_mode(s, "web:lifecycle-1")
        with pytest.raises(support.IllegalTransition):  # waiting cannot be resolved
            support.resolve(s, ticket_id, ana)
        with pytest.raises(support.IllegalTransition):  # nor transferred
            support.transfer(s, ticket_id, ana, ben.id or 0)
        assert support.claim(s, ticket_id, ana).state == TicketState.assigned
        with pytest.raises(support.AlreadyClaimed, match="Ana"):
            support.claim(s, ticket_id, ben)
        with pytest.raises(support.NotYourTicket):
            support.resolve(s, ticket_id, ben)
        moved = support.transfer(s, ticket_id, ana, ben.id or 0)
        assert moved.assigned_to == ben.id and moved.state == TicketState.assigned
        done = support.resolve(s, ticket_id, ben, NOW)
        assert done.state == TicketState.resolved and done.open_key is None
        assert not support.in_human_mode(s, "web:lifecycle-1")
        for illegal in (
            lambda: support.claim(s, ticket_id, ana),
            lambda: support.resolve(s, ticket_id, ben),
            lambda: support.release(s, ticket_id, ben),
            lambda: support.transfer(s, ticket_id, ben, ana.id or 0),
        ):
            with pytest.raises(support.IllegalTransition) as refused:
                illegal()
            assert refused.value.current == TicketState.resolved
        # the CSAT answer is stored with the resolved ticket
        waiting = support.ticket_awaiting_csat(s, "web:lifecycle-1", NOW, timedelta(hours=1))
        assert waiting is not None and waiting.id == ticket_id
        support.record_csat(s, waiting, 4, NOW)
        assert support.ticket_awaiting_csat(s, "web:lifecycle-1", NOW, timedelta(hours=1)) is None
        # a new escalation opens a new ticket
        fresh, created = support.open_ticket(s, "web:lifecycle-1", "complaint")
        assert created and fresh.id != ticket_id


def test_marketers_cannot_take_tickets_and_passwords_are_argon2(store_engine: Engine) -> None:
    mia = staff(store_engine, "mia@x.io", "marketer")
    ticket_id = ticket_for(store_engine, "roles-1")
    with session_scope(store_engine) as s:
        with pytest.raises(support.InvalidStaff):
            support.claim(s, ticket_id, mia)
        stored = support.find_staff_by_email(s, "MIA@x.io")
        assert stored is not None and stored.password_hash.startswith("$argon2id$")
        assert support.authenticate(s, "mia@x.io", "a long password") is not None
        assert support.authenticate(s, "mia@x.io", "wrong password!") is None
        assert support.authenticate(s, "nobody@x.io", "a long password") is None
        with pytest.raises(support.InvalidStaff):
            support.create_staff(s, "mia@x.io", "Mia", "agent", "a long password")
        with pytest.raises(support.InvalidStaff):
            support.create_staff(s, "short@x.io", "S", "agent", "short")


@pytest.mark.postgres
def test_concurrent_claims_exactly_one_wins(pg_engine: Engine) -> None:
    agents = [staff(pg_engine, f"agent{i}@x.io") for i in range(6)]
    ticket_id = ticket_for(pg_engine, "race-1")
    barrier = threading.Barrier(len(agents))
    outcomes: list[str] = []

    def attempt(agent: StaffUser) -> None:
        barrier.wait()
        try:
            with session_scope(pg_engine) as s:
                support.claim(s, ticket_id, agent)
            outcomes.append(f"won:{agent.name}")
        except support.AlreadyClaimed as lost:
            outcomes.append(f"lost:{lost.holder}")

    threads = [threading.Thread(target=attempt, args=(a,)) for a in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o.startswith("won:")]
    assert len(winners) == 1, outcomes
    winner = winners[0].removeprefix("won:")
    assert sorted(outcomes) == sorted([f"won:{winner}"] + [f"lost:{winner}"] * 5)


def test_queue_position_and_business_hours_message(store_engine: Engine) -> None:
    settings = Settings(support_hours=HOURS, support_timezone=BERLIN)
    tuesday_noon = datetime(2025, 6, 3, 10, 0, tzinfo=UTC)  # 12:00 in Berlin
    with session_scope(store_engine) as s:
        first = escalate_in(s, "web:queue-aaaa", "asked_for_human", settings, tuesday_noon)
        second = escalate_in(s, "web:queue-bbbb", "complaint", settings, tuesday_noon)
        repeat = escalate_in(s, "web:queue-aaaa", "complaint", settings, tuesday_noon)
    assert (first.position, second.position, repeat.position) == (1, 2, 1)
    assert "next in line" in first.reply.text and "number 2 in the queue" in second.reply.text
    assert repeat.ticket_id == first.ticket_id and not repeat.created
    saturday_evening = datetime(2025, 6, 7, 18, 30, tzinfo=UTC)  # 20:30 in Berlin
    with session_scope(store_engine) as s:
        closed = escalate_in(s, "web:queue-cccc", "asked_for_human", settings, saturday_evening)
    assert closed.opens_at == datetime(2025, 6, 9, 9, 0, tzinfo=ZoneInfo(BERLIN))
    assert "on Monday at 09:00 (Berlin time)" in closed.reply.text
    assert "this same chat" in closed.reply.text


def test_business_hours_parsing_and_time_zones() -> None:
    hours = BusinessHours.parse(HOURS, BERLIN)
    berlin = ZoneInfo(BERLIN)
    assert hours.is_open(datetime(2025, 6, 2, 9, 0, tzinfo=berlin))  # Monday 09:00
    assert not hours.is_open(datetime(2025, 6, 2, 18, 0, tzinfo=berlin))
    assert hours.is_open(datetime(2025, 6, 7, 13, 59, tzinfo=berlin))  # Saturday
    assert not hours.is_open(datetime(2025, 6, 8, 12, 0, tzinfo=berlin))  # Sunday
    # 07:30 UTC is 09:30 in Berlin in summer but 08:30 in winter
    assert hours.is_open(datetime(2025, 6, 2, 7, 30, tzinfo=UTC))
    assert not hours.is_open(datetime(2025, 1, 6, 7, 30, tzinfo=UTC))
    friday_night = datetime(2025, 6, 6, 22, 0, tzinfo=berlin)
    opening = hours.next_opening(friday_night)
    assert opening == datetime(2025, 6, 7, 10, 0, tzinfo=berlin)
    assert opening is not None and when_text(opening, friday_night) == (
        "tomorrow at 10:00 (Berlin time)"
    )
    early = datetime(2025, 6, 2, 7, 0, tzinfo=berlin)
    assert when_text(hours.next_opening(early) or early, early) == "today at 09:00 (Berlin time)"
    split = BusinessHours.parse("sun-mon 09:00-12:00 13:00-17:00", "America/New_York")
    assert sorted(split.hours) == [0, 6] and len(split.hours[6]) == 2
    assert BusinessHours.parse("", BERLIN).is_open(friday_night)
    for bad in ("mon-fri", "funday 09:00-10:00", "mon 18:00-09:00", "mon 9-10"):
        with pytest.raises(InvalidSupportHours):
            BusinessHours.parse(bad, BERLIN)
