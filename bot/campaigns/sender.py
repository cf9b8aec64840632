"""The campaign sender: starts due campaigns and sends their deliveries, exactly once each.

One sender runs across all app instances (a store lease). For every delivery:

1. a batch of pending rows is read and rendered (placeholders, per-recipient product cards),
   and each channel looks up what its sends will need (Telegram: short button ids);
2. a worker waits for the campaign budget (`campaign_rate_per_s`) and the channel's admission
   (Telegram: room in the bot's overall budget, interactive replies first);
3. in one small transaction it re-checks consent, reachability and hand-off state and marks the
   row `sending` — an opt-out that lands before this point stops the message;
4. it hands the message to the channel; the outcome (sent → transcript message, retry with
   backoff, blocked, failed) is written in batches.

A sender killed between 3 and 4 leaves rows in `sending`. The next sender reads the wire
journal (`wire_journal`): a row whose claim is there without a `wire` line never left the
process and goes out again; any other becomes `uncertain` and is never sent again (it may
have reached the customer, and a duplicate promotion is worse than a missing one). Rows not
yet at step 3 are still `pending` and go out after the restart. After step 3 a send touches
nothing but the channel. A sender restarted on the same machine takes over the lease of the
killed one at once (`channel_state.holder_has_died`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from aiolimiter import AsyncLimiter
from sqlmodel import Session, col, select

from ..channels.base import Reply, SendOutcome, before_wire
from ..recommendations import Recommendations
from ..shop import Shop
from ..store import campaigns as store
from ..store import channel_state, conversations, support
from ..store.campaigns import Campaign, CampaignDelivery, DeliveryStatus
from ..store.db import session_scope
from ..store.models import Customer
from .compose import LinkSigner, Person, Variant, render, variants_from_json
from .segments import CustomerFacts, SegmentFilter, audience, customer_facts, snapshot
from .wire_journal import WireJournal

log = logging.getLogger(__name__)

T = TypeVar("T")
LEASE = "campaign-sender"
CLAIM_WINDOW_S = 0.05  # deliveries admitted within this window are claimed together
MAX_ATTEMPTS = 5
HANDOFF_WAIT = timedelta(minutes=15)


class CampaignTransport(Protocol):
    async def admit_campaign(self) -> None: ...

    async def prepare_campaign(self, replies: list[Reply]) -> None: ...

    async def send_campaign(self, external_id: str, reply: Reply) -> SendOutcome:
        """Send it; `channels.base.announce_wire()` first, before anything leaves the process."""
        ...


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
        facts: Callable[[datetime], list[CustomerFacts]] | None = None,
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
        self.claim_group = max(1, int(rate_per_s * CLAIM_WINDOW_S))
        self.batch = batch
        self.idle_s = idle_s
        self.holder = channel_state.lease_holder()
        self.journal = WireJournal(shop.settings.data_dir / "campaign-wire.log", self.holder)
        self._queue: asyncio.Queue[Prepared] = asyncio.Queue(maxsize=batch)
        self._done: list[Done] = []
        self._in_flight: set[int] = set()
        self._sending = asyncio.Semaphore(workers)
        self._tasks: set[asyncio.Task[None]] = set()
        self._background: list[asyncio.Task[None]] = []
        # the sender's own store thread: its transactions never queue in front of a reply's
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="campaign-db")
        self._recovered = False
        self.sent = 0

    # --- running --------------------------------------------------------------------------
    async def run_forever(self) -> None:
        self.start_sending()
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
            await self.stop_sending()
            with contextlib.suppress(Exception):
                await self._tx(lambda s: channel_state.release_lease(s, LEASE, self.holder))
            self._db.shutdown(wait=False)

    def start_sending(self) -> None:
        """The dispatcher (admission, claims) and the result writer, in the background."""
        self._background = [
            asyncio.create_task(self._dispatch()),
            asyncio.create_task(self._finish_forever()),
        ]

    async def stop_sending(self) -> None:
        for task in [*self._background, *self._tasks]:
            task.cancel()
        for task in [*self._background, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._background = []
        await self._flush_done()
        self.journal.close()  # reopened by the next write

    async def _tx(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with session_scope(self.shop.engine) as session:
                return work(session)

        return await asyncio.get_running_loop().run_in_executor(self._db, run)

    async def step(self) -> int:
        """Start what is due and queue one batch of deliveries; the number queued."""
        now = self.shop.now()
        held = await self._tx(
            lambda s: channel_state.acquire_lease(s, LEASE, self.holder, timedelta(seconds=60), now)
        )
        if not held:
            return 0
        if not self._recovered:
            await self._recover()
        await self._start_due(now)
        recommender = await asyncio.to_thread(self._recommender)  # never inside a transaction
        prepared = await self._tx(lambda s: self._prepare(s, now, recommender))
        await self._prepare_for_channels(prepared)
        for item in prepared:
            self._in_flight.add(item.delivery_id)
            await self._queue.put(item)
        await self._finish_campaigns()
        return len(prepared)

    async def _recover(self) -> None:
        """Rows a dead sender left in `sending`: those its journal shows never reached a channel
        go out again, the rest become `uncertain` (they may have reached the customer)."""
        never_sent = await asyncio.to_thread(self.journal.never_sent)
        again, uncertain = await self._tx(lambda s: store.recover_interrupted(s, never_sent))
        if again:
            log.warning("%d campaign deliveries were claimed but never sent: sending them", again)
        if uncertain:
            log.warning("%d campaign deliveries were interrupted mid-send: not resent", uncertain)
        self._recovered = True

    async def drain(self) -> None:
        """Wait until everything queued has been sent and written (tests, benchmarks)."""
        while self._in_flight:
            await asyncio.sleep(0.02)
        await self._flush_done()

    # --- starting campaigns ---------------------------------------------------------------
    async def _start_due(self, now: datetime) -> None:
        due = await self._tx(lambda s: store.due_to_start(s, now))
        for campaign in due:
            if in_quiet_hours(campaign, now):
                continue
            assert campaign.id is not None
            await self.start(campaign.id, now)

    async def start(self, campaign_id: int, now: datetime) -> int:
        facts = await asyncio.to_thread(self._facts, now)  # computed outside any transaction

        def work(session: Session) -> int:
            campaign = store.get_campaign(session, campaign_id)
            if campaign.status is not store.CampaignStatus.scheduled:
                return 0
            spec = SegmentFilter.model_validate(campaign.segment)
            recipients = audience(facts, spec, now).recipients
            return store.start(session, campaign, recipients, now)

        count = await self._tx(work)
        log.info("campaign %d started: %d recipients", campaign_id, count)
        return count

    # --- preparing ------------------------------------------------------------------------
    def _facts(self, now: datetime) -> list[CustomerFacts]:
        if self.facts is not None:
            return self.facts(now)
        with session_scope(self.shop.engine) as session:
            snap = snapshot(session)
        return customer_facts(snap, now)

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

    async def _prepare_for_channels(self, prepared: list[Prepared]) -> None:
        """Let each channel look up what its sends will need now, long before the claim: the
        shorter the time between a claim and the wire, the less a crash there can cost."""
        for channel, transport in self.transports.items():
            replies = [item.reply for item in prepared if item.channel == channel]
            if not replies:
                continue
            try:
                await transport.prepare_campaign(replies)
            except Exception:  # the send looks it up itself
                log.exception("preparing %d %s campaign messages failed", len(replies), channel)

    # --- sending --------------------------------------------------------------------------
    async def _dispatch(self) -> None:
        """Admit deliveries at the campaign's pace, claim them a few at a time (one small
        transaction per group), then send each claimed one."""
        loop = asyncio.get_running_loop()
        while True:
            group = [await self._queue.get()]
            await self._admit(group[0])
            until = loop.time() + CLAIM_WINDOW_S
            while len(group) < self.claim_group and loop.time() < until:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                await self._admit(item)
                group.append(item)
            ready = [i for i in group if i.channel in self.transports]
            for item in group:
                if item.channel not in self.transports:
                    error = f"the {item.channel} channel is not connected"
                    self._finish(item, SendOutcome("retry", error))
            try:
                claimed = await self._tx(partial(self._claim, items=ready, now=self.shop.now()))
            except Exception:
                log.exception("claiming campaign deliveries failed; they stay pending")
                claimed = []
            for item in ready:
                if item in claimed:
                    await self._sending.acquire()
                    task = asyncio.create_task(self._send(item))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                else:  # skipped, postponed or paused inside the claim
                    self._in_flight.discard(item.delivery_id)

    def _claim(self, session: Session, items: list[Prepared], now: datetime) -> list[Prepared]:
        claimed = _claim_all(session, items, now)
        self.journal.claimed(i.delivery_id for i in claimed)  # before the claim commits
        return claimed

    async def _admit(self, item: Prepared) -> None:
        transport = self.transports.get(item.channel)
        if transport is not None:
            await self.budget.acquire()
            await transport.admit_campaign()

    async def _send(self, item: Prepared) -> None:
        before_wire.set(partial(self.journal.on_wire, item.delivery_id))  # this task's context
        try:
            outcome = await self.transports[item.channel].send_campaign(
                item.external_id, item.reply
            )
        except Exception:
            log.exception("campaign delivery %d failed", item.delivery_id)
            outcome = SendOutcome("retry", "internal error")
        finally:
            self._sending.release()
        self._finish(item, outcome)

    def _finish(self, item: Prepared, outcome: SendOutcome) -> None:
        self._done.append(Done(item, outcome, self.shop.now()))
        self._in_flight.discard(item.delivery_id)

    async def _finish_forever(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            try:
                await self._flush_done()
            except Exception:
                log.exception("writing campaign results failed; retrying")

    async def _flush_done(self) -> None:
        done, self._done = self._done, []
        if not done:
            return
        try:
            await self._tx(lambda s: _record(s, done))
        except Exception:
            self._done = done + self._done
            raise
        self.sent += sum(1 for d in done if d.outcome.status == "sent")

    async def _finish_campaigns(self) -> None:
        now = self.shop.now()

        def work(session: Session) -> None:
            for campaign in store.sending_campaigns(session):
                store.finish_if_done(session, campaign, now)

        await self._tx(work)


def _people(session: Session, customer_ids: list[int]) -> dict[int, Person]:
    if not customer_ids:
        return {}
    customers = session.exec(select(Customer).where(col(Customer.id).in_(customer_ids))).all()
    return {
        c.id: Person(c.id, c.first_name, c.last_name, c.country)
        for c in customers
        if c.id is not None
    }


def _claim_all(session: Session, items: list[Prepared], now: datetime) -> list[Prepared]:
    """The last check before the wire, for a group: consent, reachability, hand-off and the
    campaign's state are read now; the rows that pass become `sending` (others are skipped,
    postponed or left for later)."""
    ids = [i.delivery_id for i in items]
    rows = {
        r.id: r
        for r in session.exec(
            select(CampaignDelivery)
            .where(col(CampaignDelivery.id).in_(ids))
            .execution_options(populate_existing=True)
        )
    }
    campaigns = {
        c.id: c
        for c in session.exec(
            select(Campaign)
            .where(col(Campaign.id).in_({i.campaign_id for i in items}))
            .execution_options(populate_existing=True)
        )
    }
    keys = {(r.channel, r.external_id) for r in rows.values()}
    consents = channel_state.current_consents(session, keys)
    unreachable = channel_state.unreachable_among(session, keys)
    with_staff = support.in_human_mode_among(
        session, {conversations.conversation_id_for(*key) for key in keys}
    )
    claimed: list[Prepared] = []
    skipped: dict[str, list[int]] = {}
    later: list[int] = []
    for item in items:
        row, campaign = rows.get(item.delivery_id), campaigns.get(item.campaign_id)
        if row is None or campaign is None or row.status is not DeliveryStatus.pending:
            continue
        if campaign.status is not store.CampaignStatus.sending:
            continue  # paused or cancelled since the batch was read
        key = (row.channel, row.external_id)
        if not consents.get(key, False):
            skipped.setdefault("no consent", []).append(item.delivery_id)
        elif key in unreachable:
            store.mark(session, [item.delivery_id], DeliveryStatus.failed, error="unreachable")
        elif conversations.conversation_id_for(*key) in with_staff:
            if campaign.send_after_handoff:
                later.append(item.delivery_id)
            else:
                skipped.setdefault("in a conversation with staff", []).append(item.delivery_id)
        else:
            claimed.append(item)
    for error, skipped_ids in skipped.items():
        store.mark(session, skipped_ids, DeliveryStatus.skipped, error=error)
    store.mark(
        session, later, DeliveryStatus.pending,
        error="in a conversation with staff: later", retry_at=now + HANDOFF_WAIT,
    )  # fmt: skip
    store.mark(
        session, [i.delivery_id for i in claimed], DeliveryStatus.sending, count_attempt=True
    )
    return claimed


def _record(session: Session, done: list[Done]) -> None:
    """Write a batch of outcomes: sent ones become transcript messages (set-based)."""
    sent = [d for d in done if d.outcome.status == "sent"]
    if sent:
        conversations.ensure_conversations(
            session, {(d.prepared.channel, d.prepared.external_id): d.at for d in sent}
        )
        message_ids = conversations.record_delivered_outbound(
            session,
            [
                (
                    conversations.conversation_id_for(d.prepared.channel, d.prepared.external_id),
                    d.prepared.reply.to_json(),
                    {"campaign": d.prepared.campaign_id, "delivery": d.prepared.delivery_id},
                    d.at,
                )
                for d in sent
            ],
        )
        store.mark_sent(
            session,
            [(d.prepared.delivery_id, d.at, mid) for d, mid in zip(sent, message_ids, strict=True)],
        )
    for d in done:
        item, outcome = d.prepared, d.outcome
        ids = [item.delivery_id]
        if outcome.status == "sent":
            continue
        if outcome.status == "retry" and item.attempts + 1 < MAX_ATTEMPTS:
            retry_at = d.at + store.backoff(item.attempts + 1)
            store.mark(session, ids, DeliveryStatus.pending, error=outcome.error, retry_at=retry_at)
        else:
            store.mark(session, ids, DeliveryStatus.failed, error=outcome.error or outcome.status)
    session.flush()
