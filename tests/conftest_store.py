"""Plain values and helpers for the store tests (the fixtures live in store_fixtures.py).

Kept apart from the fixture plugin so that test modules can import them without importing
the plugin before pytest registers it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Engine

from bot.store.db import session_scope
from bot.store.orders import OrderView, list_order_views

# The demo shop is written for this day; NOW is a moment on it.
TODAY = date(2025, 6, 2)
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def views(engine: Engine) -> list[OrderView]:
    with session_scope(engine) as session:
        return list_order_views(session)
