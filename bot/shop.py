"""The running shop: database engine, settings and clock, injected into actions and channels.

Store functions are synchronous (SQLAlchemy sessions); `Shop.transaction` runs one unit of work in
a worker thread so the event loop never blocks on the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.settings import Settings
from bot.store.db import session_scope

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Shop:
    engine: Engine
    settings: Settings
    clock: Callable[[], datetime] = field(default=utc_now)

    def now(self) -> datetime:
        return self.clock()

    async def transaction(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` in a thread inside one committed transaction."""

        def _run() -> T:
            with session_scope(self.engine) as session:
                return work(session)

        return await asyncio.to_thread(_run)
