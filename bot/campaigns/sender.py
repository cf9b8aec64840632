"""The campaign sender: starts due campaigns and sends their deliveries, exactly once each.

One sender runs across all app instances (a store lease). For every delivery:

1. a batch of pending rows is read and rendered (placeholders, per-recipient product cards);
2. a worker waits for the campaign budget (`campaign_rate_per_s`) and the channel's admission
   (Telegram: room in the bot's overall budget, interactive replies first);
3. in one small transaction it re-checks consent, reachability and hand-off state and marks the
   row `sending` — an opt-out that lands before this point stops the message;
4. it hands the message to the channel; the outcome (sent → transcript message, retry with
   backoff, blocked, failed) is written in batches.

A sender killed between 3 and 4 leaves rows in `sending`; the next sender marks them
`uncertain` and never sends them again, so a crash can cost at most the few messages that
were on the wire, never a duplicate. Rows not yet at step 3 are still `pending` and go out
after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from aiolimiter import AsyncLimiter
from sqlmodel import Session, col, select

from ..channels.base import Reply, SendOutcome
from ..recommendations import Recommendations
from ..shop import Shop
from ..store import campaigns as store
from ..store import channel_state, conversations, support
from ..store.campaigns import Campaign, CampaignDelivery, DeliveryStatus
from ..store.models import ChannelIdentity, Customer, MessageStatus
from .compose import LinkSigner, Person, Variant, render, variants_from_json
from .segments import CustomerFacts, SegmentFilter, audience, customer_facts

log = logging.getLogger(__name__)

LEASE = "campaign-sender"
MAX_ATTEMPTS = 5
HANDOFF_WAIT = timedelta(minutes=15)


class CampaignTransport(Protocol):
    async def admit_campaign(self) -> None: ...

    async def send_campaign(self, external_id: str, reply: Reply) -> SendOutcome: ...


@dataclass
class Prepared:
    delivery_id: int
    campaign_id: int
    customer_id: int
    channel: str
    external_id: str
    attempts: int
    reply: Reply


@dataclass
class Done:
    prepared: Prepared
    outcome: SendOutcome
    at: datetime


def in_quiet_hours(campaign: Campaign, now: datetime) -> bool:
    if campaign.quiet_start is None or campaign.quiet_end is None:
        return False
    hour = now.astimezone(ZoneInfo(campaign.timezone)).hour
    start, end = campaign.quiet_start, campaign.quiet_end
    return start <= hour < end if start <= end else hour >= start or hour < end


class CampaignSender:
    def __init__(
        self,
        shop: Shop,
        transports: dict[str, CampaignTransport],
        signer: LinkSigner,
        recommender: Callable[[], Recommendations | None] = lambda: None,
        facts: Callable[[Session, datetime], list[CustomerFacts]] | None = None,
        rate_per_s: float = 25.0,
        workers: int = 32,
        batch: int = 200,
        idle_s: float = 1.0,
    ) -> None:
        self.shop = shop
        self.transports = transports
        self.signer = signer
        self.recommender = recommender
        self.facts = facts
        # a bucket of a tenth of a second's messages: smooth, but late wake-ups catch up
        burst = max(1.0, rate_per_s / 10)
        self.budget = AsyncLimiter(burst, burst / rate_per_s)
        self.workers = workers
        self.batch = batch
        self.idle_s = idle_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._queue: asyncio.Queue[Prepared] = asyncio.Queue(maxsize=batch)
        self._done: list[Done] = []
        self._in_flight: set[int] = set()
        self._recovered = False
        self.sent = 0

    # --- running --------------------------------------------------------------------------
    async def run_forever(self) -> None:
        workers = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        finisher = asyncio.create_task(self._finish_forever())
        try:
            while True:
                try:
                    queued = await self.step()
                except Exception:  # a store hiccup: try again on the next round
                    log.exception("campaign round failed")
                    queued = 0
                if not queued:
                    await asyncio.sleep(self.idle_s)
        finally:
            for task in [*workers, finisher]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._flush_done()
            with contextlib.suppress(Exception):
                await self.shop.transaction(
                    lambda s: channel_state.release_lease(s, LEASE, self.holder)
                )

    async def step(self) -> int:
        """Start what is due and queue one batch of deliveries; the number queued."""
        now = self.shop.now()
        held = await self.shop.transaction(
            lambda s: channel_state.acquire_lease(s, LEASE, self.holder, timedelta(seconds=60), now)
        )
        if not held:
            return 0
        if not self._recovered:
            lost = await self.shop.transaction(store.recover_interrupted)
            if lost:
                log.warning("%d campaign deliveries were interrupted mid-send: not resent", lost)
            self._recovered = True
        await self._start_due(now)
        recommender = await asyncio.to_thread(self._recommender)  # never inside a transaction
        prepared = await self.shop.transaction(lambda s: self._prepare(s, now, recommender))
        for item in prepared:
            self._in_flight.add(item.delivery_id)
            await self._queue.put(item)
        await self._finish_campaigns()
        return len(prepared)

    async def drain(self) -> None:
        """Wait until everything queued has been sent and written (tests, benchmarks)."""
        while self._in_flight:
            await asyncio.sleep(0.02)
        await self._flush_done()

    # --- starting campaigns ---------------------------------------------------------------
    async def _start_due(self, now: datetime) -> None:
        due = await self.shop.transaction(lambda s: store.due_to_start(s, now))
        for campaign in due:
            if in_quiet_hours(campaign, now):
                continue
            assert campaign.id is not None
            await self.start(campaign.id, now)

    async def start(self, campaign_id: int, now: datetime) -> int:
        def work(session: Session) -> int:
            campaign = store.get_campaign(session, campaign_id)
            if campaign.status is not store.CampaignStatus.scheduled:
                return 0
            spec = SegmentFilter.model_validate(campaign.segment)
            facts = self.facts(session, now) if self.facts else customer_facts(session, now)
            recipients = audience(facts, spec, now).recipients
            return store.start(session, campaign, recipients, now)

        count = await self.shop.transaction(work)
        log.info("campaign %d started: %d recipients", campaign_id, count)
        return count

    # --- preparing ------------------------------------------------------------------------
    def _recommender(self) -> Recommendations | None:
        try:
            return self.recommender()
        except Exception:  # "picked for you" cards stay empty; the text still goes out
            log.exception("no recommender for campaign cards")
            return None

    def _prepare(
        self, session: Session, now: datetime, recommender: Recommendations | None
    ) -> list[Prepared]:
        campaigns = {
            c.id: c for c in store.sending_campaigns(session) if not in_quiet_hours(c, now)
        }
        room = self._queue.maxsize - self._queue.qsize()
        if not campaigns or room <= 0:
            return []
        rows = store.due_deliveries(
            session, [i for i in campaigns if i is not None], now, room + len(self._in_flight)
        )
        rows = [r for r in rows if r.id not in self._in_flight][:room]
        variants = {
            cid: {v.name: v for v in variants_from_json(c.variants)} for cid, c in campaigns.items()
        }
        people = _people(session, [r.customer_id for r in rows])
        prepared = []
        for row in rows:
            assert row.id is not None
            variant: Variant = variants[row.campaign_id][row.variant]
            delivery_id = row.id
            reply = render(
                session,
                variant,
                people.get(row.customer_id, Person(row.customer_id, "")),
                links=lambda i, d=delivery_id: self.signer.link(d, i),  # type: ignore[misc]
                recommender=recommender,
            )
            prepared.append(
                Prepared(
                    delivery_id,
                    row.campaign_id,
                    row.customer_id,
                    row.channel,
                    row.external_id,
                    row.attempts,
                    reply,
                )
            )
        return prepared

    # --- sending --------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                outcome = await self._send_one(item)
                if outcome is not None:
                    self._done.append(Done(item, outcome, self.shop.now()))
                    if len(self._done) >= 100:
                        await self._flush_done()
            except Exception:
                log.exception("campaign delivery %d failed", item.delivery_id)
                self._done.append(
                    Done(item, SendOutcome("retry", "internal error"), self.shop.now())
                )
            finally:
                self._in_flight.discard(item.delivery_id)
                self._queue.task_done()

    async def _send_one(self, item: Prepared) -> SendOutcome | None:
        transport = self.transports.get(item.channel)
        if transport is None:
            return SendOutcome("retry", f"the {item.channel} channel is not connected")
        await self.budget.acquire()
        await transport.admit_campaign()
        go = await self.shop.transaction(lambda s: _claim(s, item, self.shop.now()))
        if not go:
            return None  # skipped or postponed inside the claim
        return await transport.send_campaign(item.external_id, item.reply)

    async def _finish_forever(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                await self._flush_done()
            except Exception:
                log.exception("writing campaign results failed; retrying")

    async def _flush_done(self) -> None:
        done, self._done = self._done, []
        if not done:
            return
        try:
            await self.shop.transaction(lambda s: _record(s, done))
        except Exception:
            self._done = done + self._done
            raise
        self.sent += sum(1 for d in done if d.outcome.status == "sent")

    async def _finish_campaigns(self) -> None:
        now = self.shop.now()

        def work(session: Session) -> None:
            for campaign in store.sending_campaigns(session):
                store.finish_if_done(session, campaign, now)

        await self.shop.transaction(work)


def _people(session: Session, customer_ids: list[int]) -> dict[int, Person]:
    if not customer_ids:
        return {}
    customers = session.exec(select(Customer).where(col(Customer.id).in_(customer_ids))).all()
    return {
        c.id: Person(c.id, c.first_name, c.last_name, c.country)
        for c in customers
        if c.id is not None
    }


def _claim(session: Session, item: Prepared, now: datetime) -> bool:
    """The last check before the wire; True when the row is now `sending`."""
    row = session.get(CampaignDelivery, item.delivery_id, populate_existing=True)
    campaign = session.get(Campaign, item.campaign_id, populate_existing=True)
    if row is None or campaign is None or row.status is not DeliveryStatus.pending:
        return False
    if campaign.status is not store.CampaignStatus.sending:
        return False  # paused or cancelled since the batch was read
    consent = channel_state.current_consent(session, row.channel, row.external_id)
    identity = _identity(session, row.channel, row.external_id)
    if consent is None or not consent.opted_in:
        store.mark(session, [item.delivery_id], DeliveryStatus.skipped, error="no consent")
        return False
    if identity is not None and identity.unreachable_at is not None:
        store.mark(session, [item.delivery_id], DeliveryStatus.failed, error="unreachable")
        return False
    conversation_id = conversations.conversation_id_for(row.channel, row.external_id)
    if support.in_human_mode(session, conversation_id):
        if campaign.send_after_handoff:
            store.mark(
                session, [item.delivery_id], DeliveryStatus.pending,
                error="in a conversation with staff: later", retry_at=now + HANDOFF_WAIT,
            )  # fmt: skip
        else:
            store.mark(
                session, [item.delivery_id], DeliveryStatus.skipped,
                error="in a conversation with staff",
            )  # fmt: skip
        return False
    store.mark(session, [item.delivery_id], DeliveryStatus.sending, count_attempt=True)
    return True


def _identity(session: Session, channel: str, external_id: str) -> ChannelIdentity | None:
    stmt = select(ChannelIdentity).where(
        ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
    )
    return session.exec(stmt).first()


def _record(session: Session, done: list[Done]) -> None:
    for d in done:
        item, outcome = d.prepared, d.outcome
        ids = [item.delivery_id]
        if outcome.status == "sent":
            conversation = conversations.get_or_create_conversation(
                session, item.channel, item.external_id, now=d.at
            )
            message = conversations.record_outbound(
                session, conversation.id, item.reply.to_json(), None, now=d.at
            )
            message.status = MessageStatus.delivered
            message.delivered_at = d.at
            message.attempts = 1
            message.meta = {"campaign": item.campaign_id, "delivery": item.delivery_id}
            session.add(message)
            session.flush()
            row = session.get(CampaignDelivery, item.delivery_id)
            if row is not None:
                row.status = DeliveryStatus.sent
                row.sent_at = d.at
                row.error = None
                row.message_id = message.id
                session.add(row)
        elif outcome.status == "retry" and item.attempts + 1 < MAX_ATTEMPTS:
            retry_at = d.at + store.backoff(item.attempts + 1)
            store.mark(session, ids, DeliveryStatus.pending, error=outcome.error, retry_at=retry_at)
        else:
            store.mark(session, ids, DeliveryStatus.failed, error=outcome.error or outcome.status)
    session.flush()
