"""The lockout after repeated failed ownership checks."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from bot.store.db import session_scope
from bot.store.verification import (
    lockout_until,
    order_lockout_until,
    recent_failures,
    record_attempt,
)
from tests.conftest_store import NOW

pytest_plugins = ("tests.store_fixtures",)

WINDOW = timedelta(minutes=15)
MAX = 5
CONV = "web:visitor-1"


def fail(engine: Engine, minutes_ago: list[float], conversation: str = CONV) -> None:
    with session_scope(engine) as session:
        for minutes in minutes_ago:
            at = NOW - timedelta(minutes=minutes)
            record_attempt(session, conversation, "104501", False, at)


def locked(
    engine: Engine, at: timedelta = timedelta(0), conversation: str = CONV
) -> datetime | None:
    with session_scope(engine) as session:
        return lockout_until(session, conversation, NOW + at, MAX, WINDOW)


def test_four_failures_do_not_lock(store_engine: Engine) -> None:
    fail(store_engine, [10, 8, 6, 4])
    assert locked(store_engine) is None


def test_five_failures_lock_until_the_last_one_plus_window(store_engine: Engine) -> None:
    fail(store_engine, [10, 8, 6, 4, 2])
    assert locked(store_engine) == NOW - timedelta(minutes=2) + WINDOW
    assert locked(store_engine, conversation="web:someone-else") is None
    # The lock runs out when the last failure leaves the window.
    assert locked(store_engine, at=timedelta(minutes=13, seconds=1)) is None


def test_old_failures_fall_out_of_the_window(store_engine: Engine) -> None:
    fail(store_engine, [40, 30, 20, 16, 2])
    assert locked(store_engine) is None
    with session_scope(store_engine) as session:
        assert recent_failures(session, CONV, NOW, WINDOW) == 1


def test_a_success_resets_the_count(store_engine: Engine) -> None:
    fail(store_engine, [12, 11, 10, 9])
    with session_scope(store_engine) as session:
        record_attempt(session, CONV, "104501", True, NOW - timedelta(minutes=8))
    fail(store_engine, [7, 6, 5, 4])
    assert locked(store_engine) is None
    with session_scope(store_engine) as session:
        assert recent_failures(session, CONV, NOW, WINDOW) == 4
    fail(store_engine, [3])
    assert locked(store_engine) == NOW - timedelta(minutes=3) + WINDOW


def test_order_lockout_counts_across_conversations(store_engine: Engine) -> None:
    for i in range(5):
        fail(store_engine, [float(i + 1)], conversation=f"web:visitor-{i}")
    assert locked(store_engine, conversation="web:visitor-0") is None
    with session_scope(store_engine) as session:
        until = order_lockout_until(session, "104501", NOW, MAX, WINDOW)
        assert until == NOW - timedelta(minutes=1) + WINDOW
        assert order_lockout_until(session, "104502", NOW, MAX, WINDOW) is None
