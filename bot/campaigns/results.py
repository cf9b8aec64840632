"""What a campaign achieved, per variant: delivered, failed, clicked, replied, unsubscribed,
converted — each counted once per recipient, inside the campaign's attribution window after
that recipient's message was sent — plus deliveries over time and an A/B significance note."""

from __future__ import annotations

import csv
import io
import math
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from ..store.campaigns import Campaign, CampaignDelivery, DeliveryStatus, deliveries_of
from ..store.channel_state import MARKETING, Consent
from ..store.models import Direction, Message, Order, OrderStatus

FUNNEL = ("audience", "delivered", "clicked", "replied", "converted")


@dataclass
class Row:
    delivery: CampaignDelivery
    clicked: bool = False
    replied: bool = False
    unsubscribed: bool = False
    converted: bool = False


@dataclass
class VariantResult:
    name: str
    audience: int = 0
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    uncertain: int = 0
    waiting: int = 0
    clicked: int = 0
    replied: int = 0
    unsubscribed: int = 0
    converted: int = 0

    def rate(self, what: str) -> float:
        return getattr(self, what) / self.delivered if self.delivered else 0.0


@dataclass
class CampaignResults:
    campaign_id: int
    variants: list[VariantResult]
    total: VariantResult
    timeline: list[tuple[str, int]]  # (bucket start ISO, messages sent)
    significance: str | None
    rows: list[Row] = field(default_factory=list)


def results(session: Session, campaign: Campaign, now: datetime) -> CampaignResults:
    assert campaign.id is not None
    window = timedelta(days=campaign.attribution_days)
    rows = [Row(d) for d in deliveries_of(session, campaign.id)]
    sent = [r for r in rows if r.delivery.sent_at is not None]
    _attribute(session, sent, window)
    by_variant: dict[str, VariantResult] = {}
    names = [str(v.get("name")) for v in campaign.variants]
    for name in names:
        by_variant[name] = VariantResult(name)
    total = VariantResult("all")
    for row in rows:
        for result in (
            by_variant.setdefault(row.delivery.variant, VariantResult(row.delivery.variant)),
            total,
        ):
            _count(result, row)
    return CampaignResults(
        campaign.id,
        list(by_variant.values()),
        total,
        _timeline(sent),
        _significance(list(by_variant.values())),
        rows,
    )


def _count(result: VariantResult, row: Row) -> None:
    result.audience += 1
    status = row.delivery.status
    if status is DeliveryStatus.sent:
        result.delivered += 1
    elif status is DeliveryStatus.failed:
        result.failed += 1
    elif status is DeliveryStatus.skipped:
        result.skipped += 1
    elif status is DeliveryStatus.uncertain:
        result.uncertain += 1
    else:
        result.waiting += 1
    result.clicked += row.clicked
    result.replied += row.replied
    result.unsubscribed += row.unsubscribed
    result.converted += row.converted


def _attribute(session: Session, rows: list[Row], window: timedelta) -> None:
    if not rows:
        return
    start = min(r.delivery.sent_at for r in rows if r.delivery.sent_at is not None)
    conversations = {f"{r.delivery.channel}:{r.delivery.external_id}" for r in rows}
    inbound: dict[str, list[datetime]] = defaultdict(list)
    stmt = (
        select(Message.conversation_id, Message.created_at)
        .where(Message.direction == Direction.inbound, col(Message.created_at) >= start)
        .order_by(col(Message.created_at))
    )
    for conversation_id, moment in session.exec(stmt).all():
        if conversation_id in conversations:
            inbound[conversation_id].append(moment)
    opt_outs: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    consent = (
        select(Consent.channel, Consent.external_id, Consent.created_at)
        .where(
            Consent.purpose == MARKETING,
            col(Consent.opted_in).is_(False),
            col(Consent.created_at) >= start,
        )
        .order_by(col(Consent.created_at))
    )
    for channel, external_id, moment in session.exec(consent).all():
        opt_outs[(channel, external_id)].append(moment)
    orders: dict[int, list[datetime]] = defaultdict(list)
    order_stmt = (
        select(Order.customer_id, Order.placed_at)
        .where(col(Order.placed_at) >= start, Order.status != OrderStatus.cancelled)
        .order_by(col(Order.placed_at))
    )
    for customer_id, moment in session.exec(order_stmt).all():
        if customer_id is not None:
            orders[customer_id].append(moment)
    for row in rows:
        d = row.delivery
        assert d.sent_at is not None
        end = d.sent_at + window
        row.clicked = d.clicked_at is not None and d.clicked_at <= end
        row.replied = _any_between(inbound.get(f"{d.channel}:{d.external_id}", []), d.sent_at, end)
        row.unsubscribed = _any_between(
            opt_outs.get((d.channel, d.external_id), []), d.sent_at, end
        )
        row.converted = _any_between(orders.get(d.customer_id, []), d.sent_at, end)


def _any_between(moments: list[datetime], start: datetime, end: datetime) -> bool:
    """Sorted `moments`: is one in (start, end]?"""
    index = bisect_right(moments, start)
    return index < len(moments) and moments[index] <= end


def _timeline(rows: list[Row]) -> list[tuple[str, int]]:
    if not rows:
        return []
    moments = sorted(r.delivery.sent_at for r in rows if r.delivery.sent_at is not None)
    span = (moments[-1] - moments[0]).total_seconds()
    step = 1 if span <= 120 else 60 if span <= 7200 else 3600  # seconds per bucket
    counts: Counter[int] = Counter(int(m.timestamp()) // step * step for m in moments)
    first, last = min(counts), max(counts)
    buckets = range(first, last + step, step)
    return [(datetime.fromtimestamp(b).astimezone().isoformat(), counts.get(b, 0)) for b in buckets]


def _significance(variants: list[VariantResult]) -> str | None:
    """Two-proportion z-test on the click rate of the two largest variants."""
    tested = sorted((v for v in variants if v.delivered), key=lambda v: -v.delivered)[:2]
    if len(tested) < 2:
        return None
    a, b = tested
    for what in ("converted", "clicked"):
        pooled = (getattr(a, what) + getattr(b, what)) / (a.delivered + b.delivered)
        if 0 < pooled < 1:
            break
    else:
        return "No clicks or conversions yet: nothing to compare."
    error = math.sqrt(pooled * (1 - pooled) * (1 / a.delivered + 1 / b.delivered))
    z = (a.rate(what) - b.rate(what)) / error
    p = math.erfc(abs(z) / math.sqrt(2))
    better = a if z > 0 else b
    verdict = (
        f"{better.name} is better (p = {p:.3f}, significant at 5%)."
        if p < 0.05
        else f"the difference could be chance (p = {p:.2f}); keep collecting."
    )
    rates = f"{a.name} {a.rate(what):.1%} vs {b.name} {b.rate(what):.1%}"
    return f"{what.capitalize()} rate {rates}: {verdict}"


def to_csv(result: CampaignResults) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["delivery_id", "customer_id", "channel", "variant", "status", "error", "attempts",
         "sent_at", "clicked", "replied", "unsubscribed", "converted"]
    )  # fmt: skip
    for row in result.rows:
        d = row.delivery
        writer.writerow(
            [d.id, d.customer_id, d.channel, d.variant, d.status.value, d.error or "", d.attempts,
             d.sent_at.isoformat() if d.sent_at else "", int(row.clicked), int(row.replied),
             int(row.unsubscribed), int(row.converted)]
        )  # fmt: skip
    return out.getvalue()
