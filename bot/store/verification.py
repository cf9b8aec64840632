"""Order-ownership attempts and the lockout that slows down guessing."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, func, select

from .models import VerificationAttempt


def record_attempt(
    session: Session, conversation_id: str, order_number: str, success: bool, now: datetime
) -> VerificationAttempt:
    attempt = VerificationAttempt(
        conversation_id=conversation_id,
        order_number=order_number,
        success=success,
        created_at=now,
    )
    session.add(attempt)
    session.flush()
    return attempt


def lockout_until(
    session: Session,
    conversation_id: str,
    now: datetime,
    max_failures: int,
    window: timedelta,
) -> datetime | None:
    """When this conversation may try again, or None when it is not locked.

    Locked when `max_failures` or more attempts failed within `window` (and after the last
    success); the lock lasts until the last failure + `window`.
    """
    return _lockout(
        session,
        col(VerificationAttempt.conversation_id) == conversation_id,
        now,
        max_failures,
        window,
    )


def order_lockout_until(
    session: Session,
    order_number: str,
    now: datetime,
    max_failures: int,
    window: timedelta,
) -> datetime | None:
    """The same rule per order number, across conversations.

    A web visitor can open new sessions at will, so the per-conversation lock alone does not
    stop someone guessing the postcode of one order.
    """
    return _lockout(
        session, col(VerificationAttempt.order_number) == order_number, now, max_failures, window
    )


def recent_failures(
    session: Session, conversation_id: str, now: datetime, window: timedelta
) -> int:
    """Failed attempts of this conversation within `window` and after its last success."""
    who = col(VerificationAttempt.conversation_id) == conversation_id
    count, _ = _failures_since_success(session, who, now, window)
    return count


def _lockout(
    session: Session, who: ColumnElement[bool], now: datetime, max_failures: int, window: timedelta
) -> datetime | None:
    count, last_failure = _failures_since_success(session, who, now, window)
    if count < max_failures or last_failure is None:
        return None
    until: datetime = last_failure + window
    return until if until > now else None


def _failures_since_success(
    session: Session, who: ColumnElement[bool], now: datetime, window: timedelta
) -> tuple[int, datetime | None]:
    """How many attempts failed in the window after the last success, and the latest one."""
    since = now - window
    last_success = session.exec(
        select(func.max(VerificationAttempt.created_at)).where(
            who, col(VerificationAttempt.success).is_(True)
        )
    ).one()
    if last_success is not None and last_success > since:
        since = last_success
    count, last_failure = session.exec(
        select(func.count(), func.max(VerificationAttempt.created_at)).where(
            who,
            col(VerificationAttempt.success).is_(False),
            col(VerificationAttempt.created_at) > since,
            col(VerificationAttempt.created_at) <= now,
        )
    ).one()
    return count, last_failure
