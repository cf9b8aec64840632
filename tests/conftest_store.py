"""Plain values and helpers for the store tests (the fixtures live in store_fixtures.py).

Kept apart from the fixture plugin so that test modules can import them without importing
the plugin before pytest registers it.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime

from sqlalchemy import Engine

from bot.store.channel_state import lease_holder
from bot.store.db import session_scope
from bot.store.orders import OrderView, list_order_views

# The demo shop is written for this day; NOW is a moment on it.
TODAY = date(2025, 6, 2)
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def views(engine: Engine) -> list[OrderView]:
    with session_scope(engine) as session:
        return list_order_views(session)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()  # exited and reaped: nothing runs under this pid now
    return process.pid


def holder_with_pid(pid: int) -> str:
    """A lease holder on this host and pid namespace with another pid."""
    host, namespace, _, tag = lease_holder().rsplit(":", 3)
    return f"{host}:{namespace}:{pid}:{tag}"
