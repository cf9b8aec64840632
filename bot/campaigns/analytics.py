"""Customer facts for segments, with churn risk and category affinity, cached for a while.

The console's live count re-filters cached facts on every change (milliseconds), and the facts
themselves are rebuilt when older than `ttl_s`. Churn risk comes from a model trained on the
shop's own order history at the latest cutoff that has a full label window; a shop with too
little history (one class only) has no churn risk, and the console says so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from recsys.rfm import OrderRecord

from ..recommendations import Recommendations
from ..store.db import session_scope
from .segments import CustomerFacts, customer_facts, snapshot

log = logging.getLogger(__name__)

HORIZON_DAYS = 90


@dataclass(frozen=True)
class ChurnSummary:
    scores: dict[str, float] | None
    evaluation: dict[str, Any] | None
    problem: str | None = None  # why there is no model, in words


def churn_summary(
    records: list[OrderRecord], now: datetime, horizon_days: int = HORIZON_DAYS
) -> ChurnSummary:
    from recsys.churn import evaluate, train_for

    records = [r for r in records if r.placed_at <= now]
    try:
        model = train_for(records, now, horizon_days)
    except ValueError as error:
        return ChurnSummary(None, None, f"no churn model yet: {error}")
    scores = model.predict(records, now)
    try:
        evaluation: dict[str, Any] | None = evaluate(records, now, horizon_days)
    except ValueError as error:
        evaluation = {"problem": str(error)}
    return ChurnSummary(scores, evaluation)


class Analytics:
    """Call from a worker thread, never inside a transaction: it opens a short one itself."""

    def __init__(
        self,
        engine: Engine,
        recommender: Callable[[], Recommendations | None] = lambda: None,
        ttl_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.recommender = recommender
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, list[CustomerFacts], ChurnSummary] | None = None

    def invalidate(self) -> None:
        self._cached = None

    def facts(self, now: datetime) -> list[CustomerFacts]:
        return self._load(now)[0]

    def churn(self, now: datetime) -> ChurnSummary:
        return self._load(now)[1]

    def _load(self, now: datetime) -> tuple[list[CustomerFacts], ChurnSummary]:
        with self._lock:
            cached = self._cached
            if cached is not None and self._clock() - cached[0] < self.ttl_s:
                return cached[1], cached[2]
            with session_scope(self.engine) as session:
                snap = snapshot(session)
            churn = churn_summary(snap.orders, now)
            affinity: dict[int, str] = {}
            recommender = self.recommender()
            if recommender is not None:
                affinity = recommender.category_affinity([c[0] for c in snap.customers])
            facts = customer_facts(snap, now, churn=churn.scores, affinity=affinity)
            self._cached = (self._clock(), facts, churn)
            return facts, churn


def categories(session: Session) -> list[str]:
    from ..store.models import Product

    return sorted(set(session.exec(select(Product.category).order_by(col(Product.category)))))
