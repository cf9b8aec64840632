"""Marketing campaigns: the campaign, its variants and one delivery row per recipient.

A campaign moves draft → scheduled → sending → done (or paused / cancelled on the way). When
it starts, its audience is written as delivery rows in one transaction (unique per campaign
and customer, with an idempotency key), so a restart never builds it twice. The sender moves
each row pending → sending → sent | failed | skipped; a row left in `sending` by a sender that
died is pending again when the sender's wire journal shows it never left, else `uncertain`,
never sent again (a second promotional message is worse than a missing one). Migration
`0005_campaigns` creates these tables.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint, func, insert, update
from sqlmodel import Field, Session, SQLModel, col, select

from .columns import EnumText, UTCDateTime, utcnow
from .errors import StoreError


class CampaignStatus(StrEnum):
    draft = "draft"
    scheduled = "scheduled"  # waits for send_at
    sending = "sending"  # audience written; deliveries go out
    paused = "paused"
    cancelled = "cancelled"
    done = "done"


class DeliveryStatus(StrEnum):
    pending = "pending"  # waits for its turn (or for a retry / the end of a hand-off)
    sending = "sending"  # handed to the channel; the result is not stored yet
    sent = "sent"
    failed = "failed"  # the channel refused it (blocked, deactivated, retries used up)
    skipped = "skipped"  # not sent on purpose: no consent any more, cancelled, in a hand-off
    uncertain = "uncertain"  # the sender died while sending: never sent twice


ACTIVE = frozenset({CampaignStatus.scheduled, CampaignStatus.sending, CampaignStatus.paused})


class Campaign(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    status: CampaignStatus = Field(sa_type=EnumText(CampaignStatus, 16), index=True)
    segment: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # SegmentFilter JSON
    variants: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)  # Variant JSON
    send_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    timezone: str = Field(default="UTC", max_length=64)  # send time and quiet hours are local
    quiet_start: int | None = Field(default=None)  # local hour, e.g. 21
    quiet_end: int | None = Field(default=None)  # local hour, e.g. 9
    send_after_handoff: bool = Field(default=True)  # else customers in a hand-off are skipped
    attribution_days: int = Field(default=7)
    created_by: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(sa_type=UTCDateTime(), default_factory=utcnow)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    audience_size: int = Field(default=0)


class CampaignDelivery(SQLModel, table=True):
    __tablename__ = "campaign_delivery"
    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id"),
        Index("ix_campaign_delivery_status_due", "status", "next_attempt_at"),
        Index("ix_campaign_delivery_campaign_status", "campaign_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    customer_id: int = Field(foreign_key="customer.id", index=True)
    idempotency_key: str = Field(max_length=64, unique=True)
    channel: str = Field(max_length=32)
    external_id: str = Field(max_length=128)
    variant: str = Field(max_length=32)
    status: DeliveryStatus = Field(sa_type=EnumText(DeliveryStatus, 16))
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(sa_type=UTCDateTime(), default_factory=utcnow)
    error: str | None = Field(default=None, max_length=200)
    message_id: int | None = Field(default=None, foreign_key="message.id")
    created_at: datetime = Field(sa_type=UTCDateTime(), default_factory=utcnow)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime(), index=True)
    clicked_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    clicks: int = Field(default=0)


class CampaignError(StoreError):
    pass


@dataclass(frozen=True)
class Recipient:
    customer_id: int
    channel: str
    external_id: str


# --- campaigns ------------------------------------------------------------------------------


def create_campaign(
    session: Session,
    name: str,
    segment: dict[str, Any],
    variants: list[dict[str, Any]],
    *,
    created_by: int | None = None,
    timezone: str = "UTC",
    quiet_start: int | None = None,
    quiet_end: int | None = None,
    send_after_handoff: bool = True,
    attribution_days: int = 7,
) -> Campaign:
    if not name.strip():
        raise CampaignError("A campaign needs a name.")
    if not variants:
        raise CampaignError("A campaign needs at least one message.")
    campaign = Campaign(
        name=name.strip()[:200],
        status=CampaignStatus.draft,
        segment=segment,
        variants=variants,
        created_by=created_by,
        timezone=timezone,
        quiet_start=quiet_start,
        quiet_end=quiet_end,
        send_after_handoff=send_after_handoff,
        attribution_days=attribution_days,
    )
    session.add(campaign)
    session.flush()
    return campaign


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None:
        raise CampaignError(f"There is no campaign {campaign_id}.")
    return campaign


def list_campaigns(session: Session) -> list[Campaign]:
    return list(session.exec(select(Campaign).order_by(col(Campaign.id).desc())).all())


_MOVES: dict[str, tuple[frozenset[CampaignStatus], CampaignStatus | None]] = {
    "schedule": (frozenset({CampaignStatus.draft}), CampaignStatus.scheduled),
    "pause": (frozenset({CampaignStatus.scheduled, CampaignStatus.sending}), CampaignStatus.paused),
    "resume": (frozenset({CampaignStatus.paused}), None),  # back to where it was
    "cancel": (ACTIVE | {CampaignStatus.draft}, CampaignStatus.cancelled),
}


def move(
    session: Session, campaign_id: int, action: str, now: datetime, send_at: datetime | None = None
) -> Campaign:
    """schedule (send_at None = now), pause, resume or cancel; refuses moves that make no
    sense (resuming a finished campaign) with a CampaignError."""
    campaign = get_campaign(session, campaign_id)
    if action not in _MOVES:
        raise CampaignError(f"Unknown action {action!r}.")
    allowed, target = _MOVES[action]
    if campaign.status not in allowed:
        raise CampaignError(f"A {campaign.status.value} campaign cannot {action}.")
    if action == "schedule":
        campaign.send_at = send_at or now
    if target is None:  # resume
        target = CampaignStatus.sending if campaign.started_at else CampaignStatus.scheduled
    if target is CampaignStatus.cancelled:
        session.execute(
            update(CampaignDelivery)
            .where(
                col(CampaignDelivery.campaign_id) == campaign_id,
                col(CampaignDelivery.status) == DeliveryStatus.pending,
            )
            .values(status=DeliveryStatus.skipped, error="campaign cancelled")
            .execution_options(synchronize_session=False)
        )
        campaign.finished_at = now
    campaign.status = target
    session.add(campaign)
    session.flush()
    return campaign


def due_to_start(session: Session, now: datetime) -> list[Campaign]:
    stmt = select(Campaign).where(
        Campaign.status == CampaignStatus.scheduled, col(Campaign.send_at) <= now
    )
    return list(session.exec(stmt).all())


def sending_campaigns(session: Session) -> list[Campaign]:
    stmt = select(Campaign).where(Campaign.status == CampaignStatus.sending)
    return list(session.exec(stmt.execution_options(populate_existing=True)).all())


def variant_for(campaign_id: int, customer_id: int, variants: Sequence[dict[str, Any]]) -> str:
    """The same recipient always gets the same variant: a hash picks a point in the split."""
    digest = hashlib.blake2b(f"{campaign_id}:{customer_id}".encode(), digest_size=8).digest()
    point = int.from_bytes(digest, "big") % 10_000 / 100  # 0 <= point < 100
    total = sum(max(0, int(v.get("share", 0))) for v in variants) or 1
    edge = 0.0
    for variant in variants:
        edge += max(0, int(variant.get("share", 0))) * 100 / total
        if point < edge:
            return str(variant["name"])
    return str(variants[-1]["name"])


def start(
    session: Session, campaign: Campaign, recipients: Iterable[Recipient], now: datetime
) -> int:
    """Write the audience (one pending delivery per customer) and mark the campaign sending;
    one transaction, so it happens exactly once."""
    assert campaign.id is not None
    rows = []
    seen: set[int] = set()
    for r in recipients:
        if r.customer_id in seen:  # one message per customer even with several channels
            continue
        seen.add(r.customer_id)
        rows.append(
            {
                "campaign_id": campaign.id,
                "customer_id": r.customer_id,
                "idempotency_key": f"c{campaign.id}:u{r.customer_id}",
                "channel": r.channel,
                "external_id": r.external_id,
                "variant": variant_for(campaign.id, r.customer_id, campaign.variants),
                "status": DeliveryStatus.pending,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "clicks": 0,
            }
        )
    for offset in range(0, len(rows), 5000):
        session.execute(insert(CampaignDelivery), rows[offset : offset + 5000])
    campaign.status = CampaignStatus.sending
    campaign.started_at = now
    campaign.audience_size = len(rows)
    session.add(campaign)
    session.flush()
    return len(rows)


def finish_if_done(session: Session, campaign: Campaign, now: datetime) -> bool:
    open_rows = session.exec(
        select(func.count())
        .select_from(CampaignDelivery)
        .where(
            CampaignDelivery.campaign_id == campaign.id,
            col(CampaignDelivery.status).in_([DeliveryStatus.pending, DeliveryStatus.sending]),
        )
    ).one()
    if open_rows:
        return False
    campaign.status = CampaignStatus.done
    campaign.finished_at = now
    session.add(campaign)
    session.flush()
    return True


# --- deliveries -----------------------------------------------------------------------------


def recover_interrupted(session: Session, never_sent: Collection[int] = ()) -> tuple[int, int]:
    """Rows a dead sender left in `sending`: those in `never_sent` (known not to have left it)
    are pending again, the others may or may not have reached the customer. (again, uncertain)"""
    again = 0
    if never_sent:
        resent = session.execute(
            update(CampaignDelivery)
            .where(
                col(CampaignDelivery.status) == DeliveryStatus.sending,
                col(CampaignDelivery.id).in_(sorted(never_sent)),
            )
            .values(status=DeliveryStatus.pending, error="sender stopped before sending it")
            .execution_options(synchronize_session=False)
        )
        again = int(resent.rowcount or 0)  # type: ignore[attr-defined]
    result = session.execute(
        update(CampaignDelivery)
        .where(col(CampaignDelivery.status) == DeliveryStatus.sending)
        .values(status=DeliveryStatus.uncertain, error="sender stopped while sending")
        .execution_options(synchronize_session=False)
    )
    return again, int(result.rowcount or 0)  # type: ignore[attr-defined]


def due_deliveries(
    session: Session, campaign_ids: Sequence[int], now: datetime, limit: int
) -> list[CampaignDelivery]:
    if not campaign_ids:
        return []
    stmt = (
        select(CampaignDelivery)
        .where(
            col(CampaignDelivery.campaign_id).in_(campaign_ids),
            CampaignDelivery.status == DeliveryStatus.pending,
            col(CampaignDelivery.next_attempt_at) <= now,
        )
        # due order: read along ix_campaign_delivery_status_due, so a campaign of 100k rows
        # is not sorted by id on every batch
        .order_by(col(CampaignDelivery.next_attempt_at), col(CampaignDelivery.id))
        .limit(limit)
    )
    return list(session.exec(stmt).all())


def mark(
    session: Session,
    ids: Sequence[int],
    status: DeliveryStatus,
    *,
    error: str | None = None,
    sent_at: datetime | None = None,
    retry_at: datetime | None = None,
    count_attempt: bool = False,
) -> None:
    if not ids:
        return
    values: dict[str, Any] = {"status": status, "error": error}
    if sent_at is not None:
        values["sent_at"] = sent_at
    if retry_at is not None:
        values["next_attempt_at"] = retry_at
    if count_attempt:
        values["attempts"] = CampaignDelivery.attempts + 1
    session.execute(
        update(CampaignDelivery)
        .where(col(CampaignDelivery.id).in_(list(ids)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def mark_sent(session: Session, sent: Sequence[tuple[int, datetime, int]]) -> None:
    """(delivery id, sent at, transcript message id) for each delivered row, in one go."""
    if sent:
        session.execute(
            update(CampaignDelivery),
            [
                {"id": d, "status": DeliveryStatus.sent, "sent_at": at, "error": None,
                 "message_id": m}
                for d, at, m in sent
            ],
        )  # fmt: skip


def record_click(session: Session, delivery_id: int, now: datetime) -> CampaignDelivery | None:
    delivery = session.get(CampaignDelivery, delivery_id)
    if delivery is None:
        return None
    delivery.clicks += 1
    delivery.clicked_at = delivery.clicked_at or now
    session.add(delivery)
    session.flush()
    return delivery


def deliveries_of(session: Session, campaign_id: int) -> list[CampaignDelivery]:
    stmt = (
        select(CampaignDelivery)
        .where(CampaignDelivery.campaign_id == campaign_id)
        .order_by(col(CampaignDelivery.id))
        .execution_options(populate_existing=True)
    )
    return list(session.exec(stmt).all())


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, 4 min … capped at 30 min."""
    return timedelta(seconds=min(30 * 2 ** max(0, attempts - 1), 1800))
