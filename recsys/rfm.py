"""RFM: recency, frequency and monetary value of customers, their quintile scores and segments.

Input is one `OrderRecord` per order (customer, UTC time, total); the app maps its store's
orders onto it, `recsys.datasets.online_retail_orders` reads the public Online Retail data.
Only orders placed strictly before `now` count, so the same history gives the same answer
at any later time. Customers without an order have no RFM values and no segment (marketing
calls them "never purchased").

Scores (`rfm_scores`): R, F and M are quintiles 1..5 within the population, 5 the best (most
recent, most orders, highest spend). A customer's score is `1 + floor(5 * p)` (capped at 5)
where `p = (number of customers strictly worse + half the number tied, itself included) / n`
is its mid-rank percentile. Tied values get the same score whatever the input order; a single
customer, or a population where everyone is equal, scores 3 (the middle).

Segments (`rfm_segments`), the first rule that matches wins; every customer with an order
gets exactly one of `SEGMENTS`:

1. ``new``: exactly one order, placed recently: R >= 4, or first order at most 30 days ago
   (`tenure_days <= NEW_DAYS`). Welcome / second-order campaigns.
2. ``champions``: at least two orders, R >= 4 and F >= 4: bought recently and often.
3. ``loyal``: at least two orders and R >= 3: repeat customers who are still active (includes
   recent repeat buyers not yet frequent enough to be champions).
4. ``at_risk``: at least two orders and R <= 2: used to come back, have not for a while.
   Win-back campaigns.
5. ``hibernating``: the rest, i.e. one order that is neither recent nor new (R <= 3 and first
   order more than 30 days ago): low recency, low frequency.

So one-order customers are ``new`` or ``hibernating``, repeat customers are ``champions``,
``loyal`` or ``at_risk`` by recency. M does not change the segment: it ranks customers within
one (e.g. target the at-risk customers with the highest M first).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

DAY_SECONDS = 86_400.0
NEW_DAYS = 30.0
SEGMENTS = ("champions", "loyal", "new", "at_risk", "hibernating")


@dataclass(frozen=True)
class OrderRecord:
    """One order: who placed it, when (timezone-aware, UTC) and what it cost in total."""

    customer_id: str
    placed_at: datetime
    total: float


@dataclass(frozen=True)
class RFMFeatures:
    customer_id: str
    recency_days: float  # days from the last order to `now`
    frequency: int  # number of orders
    monetary: float  # total spend
    tenure_days: float  # days from the first order to `now`


def require_aware(moment: datetime, name: str = "now") -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {moment.isoformat()}")


def days_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier).total_seconds() / DAY_SECONDS


def rfm_features(orders: Iterable[OrderRecord], now: datetime) -> dict[str, RFMFeatures]:
    """R, F, M and tenure of every customer with at least one order placed before `now`."""
    require_aware(now)
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    count: dict[str, int] = {}
    spend: dict[str, float] = {}
    for order in orders:
        if order.placed_at >= now:
            continue
        customer = order.customer_id
        if customer not in count:
            first[customer] = last[customer] = order.placed_at
            count[customer] = 0
            spend[customer] = 0.0
        first[customer] = min(first[customer], order.placed_at)
        last[customer] = max(last[customer], order.placed_at)
        count[customer] += 1
        spend[customer] += float(order.total)
    return {
        customer: RFMFeatures(
            customer_id=customer,
            recency_days=days_between(last[customer], now),
            frequency=count[customer],
            monetary=spend[customer],
            tenure_days=days_between(first[customer], now),
        )
        for customer in sorted(count)
    }


def quintile_scores(values: Mapping[str, float]) -> dict[str, int]:
    """1..5 by mid-rank percentile, higher value = higher score; ties share a score."""
    n = len(values)
    if n == 0:
        return {}
    ordered = sorted(values.values())
    scores: dict[float, int] = {}
    start = 0
    while start < n:
        end = start
        while end < n and ordered[end] == ordered[start]:
            end += 1
        percentile = (start + (end - start) / 2) / n
        scores[ordered[start]] = min(5, 1 + math.floor(5 * percentile))
        start = end
    return {customer: scores[value] for customer, value in values.items()}


def rfm_scores(features: Mapping[str, RFMFeatures]) -> dict[str, tuple[int, int, int]]:
    """(R, F, M) quintile scores 1..5 within `features`, 5 = most recent / frequent / spending."""
    recency = quintile_scores({c: -f.recency_days for c, f in features.items()})
    frequency = quintile_scores({c: float(f.frequency) for c, f in features.items()})
    monetary = quintile_scores({c: f.monetary for c, f in features.items()})
    return {c: (recency[c], frequency[c], monetary[c]) for c in features}


def segment_of(feature: RFMFeatures, score: tuple[int, int, int]) -> str:
    """The segment of one customer from its features and (R, F, M) scores (module docstring)."""
    r, f, _ = score
    if feature.frequency <= 1:
        return "new" if r >= 4 or feature.tenure_days <= NEW_DAYS else "hibernating"
    if r >= 4 and f >= 4:
        return "champions"
    if r >= 3:
        return "loyal"
    return "at_risk"


def rfm_segments(features: Mapping[str, RFMFeatures]) -> dict[str, str]:
    """One of `SEGMENTS` for every customer in `features` (rules in the module docstring)."""
    scores = rfm_scores(features)
    return {c: segment_of(f, scores[c]) for c, f in features.items()}


def segment_counts(segments: Mapping[str, str]) -> dict[str, int]:
    """How many customers each segment holds, every segment present (0 when empty)."""
    counts = dict.fromkeys(SEGMENTS, 0)
    for segment in segments.values():
        counts[segment] += 1
    return counts
