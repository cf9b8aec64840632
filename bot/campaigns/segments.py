"""Who a campaign reaches: customer facts, segment filters and the consenting audience.

`CustomerFacts` are computed from the store in one pass (orders, identities, consent,
reachability) plus RFM segments, churn risk and category affinity; a `SegmentFilter` picks
customers from them. Only identities whose newest consent row says "opted in" and that are not
marked unreachable become recipients: a filter can never widen that.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import Session, col, select

from recsys.rfm import SEGMENTS, OrderRecord, rfm_features, rfm_segments

from ..store import channel_state
from ..store.campaigns import Recipient
from ..store.models import ChannelIdentity, Customer, Order, OrderStatus

log = logging.getLogger(__name__)

CHANNELS = ("telegram", "web")
CHANNEL_PREFERENCE = {"telegram": 0, "web": 1}


class SegmentFilter(BaseModel):
    """Every field narrows the segment; empty fields do not filter."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["telegram", "web"] | None = None
    countries: list[str] = Field(default_factory=list)  # ISO codes
    min_days_since_purchase: int | None = Field(default=None, ge=0)
    max_days_since_purchase: int | None = Field(default=None, ge=0)
    min_orders: int | None = Field(default=None, ge=0)
    max_orders: int | None = Field(default=None, ge=0)
    min_spend: float | None = Field(default=None, ge=0)
    max_spend: float | None = Field(default=None, ge=0)
    rfm: list[str] = Field(default_factory=list)
    min_churn_risk: float | None = Field(default=None, ge=0, le=1)
    max_churn_risk: float | None = Field(default=None, ge=0, le=1)
    category: str | None = None  # the customer's strongest category (recommender)
    never_purchased: bool = False

    @field_validator("countries")
    @classmethod
    def _upper(cls, value: list[str]) -> list[str]:
        return sorted({c.strip().upper() for c in value if c.strip()})

    @field_validator("rfm")
    @classmethod
    def _known_segments(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SEGMENTS))
        if unknown:
            raise ValueError(f"unknown RFM segment(s) {unknown}; use {list(SEGMENTS)}")
        return value

    @field_validator("category")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


@dataclass(frozen=True)
class Reach:
    """One channel identity of a customer and whether a campaign may use it."""

    channel: str
    external_id: str
    consented: bool
    reachable: bool

    @property
    def sendable(self) -> bool:
        return self.consented and self.reachable


@dataclass(frozen=True)
class CustomerFacts:
    customer_id: int
    first_name: str
    last_name: str
    country: str
    orders: int
    spend: float
    last_order_at: datetime | None
    rfm: str | None  # None: never purchased
    churn_risk: float | None  # None: no model or no orders
    affinity: str | None
    reach: tuple[Reach, ...] = field(default=())

    def days_since_purchase(self, now: datetime) -> float | None:
        if self.last_order_at is None:
            return None
        return (now - self.last_order_at).total_seconds() / 86400


def order_records(session: Session) -> list[OrderRecord]:
    """Orders of known customers that were not cancelled, for RFM and churn."""
    stmt = select(col(Order.customer_id), col(Order.placed_at), col(Order.total)).where(
        col(Order.customer_id).is_not(None), Order.status != OrderStatus.cancelled
    )
    return [
        OrderRecord(customer_id=str(cid), placed_at=placed, total=float(total))
        for cid, placed, total in session.exec(stmt).all()
    ]


@dataclass(frozen=True)
class ShopSnapshot:
    """What segments are computed from, read in one short transaction (plain tuples, so the
    computing happens outside it: on SQLite a transaction holds the write lock)."""

    orders: list[OrderRecord]
    consents: dict[tuple[str, str], bool]
    identities: list[tuple[int, str, str, bool]]  # customer, channel, external id, reachable
    customers: list[tuple[int, str, str, str]]  # id, first name, last name, country


def snapshot(session: Session) -> ShopSnapshot:
    identities = session.exec(
        select(
            col(ChannelIdentity.customer_id),
            col(ChannelIdentity.channel),
            col(ChannelIdentity.external_id),
            col(ChannelIdentity.unreachable_at),
        ).where(col(ChannelIdentity.customer_id).is_not(None))
    ).all()
    customers = session.exec(
        select(
            col(Customer.id), col(Customer.first_name), col(Customer.last_name),
            col(Customer.country),
        ).order_by(col(Customer.id))
    ).all()  # fmt: skip
    return ShopSnapshot(
        orders=order_records(session),
        consents=channel_state.current_consents(session),
        identities=[(c, ch, ext, gone is None) for c, ch, ext, gone in identities if c is not None],
        customers=[(i, first, last, country) for i, first, last, country in customers if i],
    )


def customer_facts(
    snap: ShopSnapshot,
    now: datetime,
    churn: Mapping[str, float] | None = None,
    affinity: Mapping[int, str] | None = None,
) -> list[CustomerFacts]:
    records = [r for r in snap.orders if r.placed_at <= now]
    features = rfm_features(records, now)
    segments = rfm_segments(features)
    reach: dict[int, list[Reach]] = {}
    for customer_id, channel, external_id, reachable in snap.identities:
        consented = snap.consents.get((channel, external_id), False)
        reach.setdefault(customer_id, []).append(
            Reach(channel, external_id, consented=consented, reachable=reachable)
        )
    facts = []
    for customer_id, first_name, last_name, country in snap.customers:
        key = str(customer_id)
        f = features.get(key)
        facts.append(
            CustomerFacts(
                customer_id=customer_id,
                first_name=first_name,
                last_name=last_name,
                country=country,
                orders=f.frequency if f else 0,
                spend=round(f.monetary, 2) if f else 0.0,
                last_order_at=None if f is None else _last_order(now, f.recency_days),
                rfm=segments.get(key),
                churn_risk=None if churn is None or f is None else churn.get(key),
                affinity=(affinity or {}).get(customer_id),
                reach=tuple(
                    sorted(
                        reach.get(customer_id, []),
                        key=lambda r: (CHANNEL_PREFERENCE.get(r.channel, 9), r.external_id),
                    )
                ),
            )
        )
    return facts


def _last_order(now: datetime, recency_days: float) -> datetime:
    return now - timedelta(days=recency_days)


def matches(facts: CustomerFacts, spec: SegmentFilter, now: datetime) -> bool:
    if spec.countries and facts.country.upper() not in spec.countries:
        return False
    if spec.never_purchased and facts.orders > 0:
        return False
    days = facts.days_since_purchase(now)
    if spec.min_days_since_purchase is not None and (
        days is None or days < spec.min_days_since_purchase
    ):
        return False
    if spec.max_days_since_purchase is not None and (
        days is None or days > spec.max_days_since_purchase
    ):
        return False
    if spec.min_orders is not None and facts.orders < spec.min_orders:
        return False
    if spec.max_orders is not None and facts.orders > spec.max_orders:
        return False
    if spec.min_spend is not None and facts.spend < spec.min_spend:
        return False
    if spec.max_spend is not None and facts.spend > spec.max_spend:
        return False
    if spec.rfm and facts.rfm not in spec.rfm:
        return False
    if spec.min_churn_risk is not None and (
        facts.churn_risk is None or facts.churn_risk < spec.min_churn_risk
    ):
        return False
    if spec.max_churn_risk is not None and (
        facts.churn_risk is None or facts.churn_risk > spec.max_churn_risk
    ):
        return False
    if spec.category is not None and (facts.affinity or "").lower() != spec.category.lower():
        return False
    return spec.channel is None or any(r.channel == spec.channel for r in facts.reach)


def recipient_of(facts: CustomerFacts, spec: SegmentFilter) -> Recipient | None:
    """The identity a campaign uses: consented and reachable, Telegram before web."""
    for reach in facts.reach:
        if reach.sendable and (spec.channel is None or reach.channel == spec.channel):
            return Recipient(facts.customer_id, reach.channel, reach.external_id)
    return None


@dataclass(frozen=True)
class Audience:
    matching: int  # customers the filters select
    recipients: list[Recipient]  # of those, the ones who agreed and can be reached

    @property
    def count(self) -> int:
        return len(self.recipients)


def audience(facts: Iterable[CustomerFacts], spec: SegmentFilter, now: datetime) -> Audience:
    matching = 0
    recipients = []
    for f in facts:
        if not matches(f, spec, now):
            continue
        matching += 1
        recipient = recipient_of(f, spec)
        if recipient is not None:
            recipients.append(recipient)
    return Audience(matching, recipients)
