"""Campaigns in the store: segments over hand-built customers, consent, RFM, variants, the
delivery rows, results and attribution (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.campaigns.compose import LinkSigner, Person, Variant, check_variants, render
from bot.campaigns.results import results, to_csv
from bot.campaigns.segments import SegmentFilter, audience, customer_facts, snapshot
from bot.store import campaigns as store
from bot.store import channel_state, conversations
from bot.store.campaigns import CampaignError, CampaignStatus, DeliveryStatus, Recipient
from bot.store.db import session_scope
from bot.store.models import Customer, Order, OrderStatus

pytest_plugins = ("tests.store_fixtures",)

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def order(
    number: str, customer_id: int, email: str, country: str, total: str, at: datetime
) -> Order:
    return Order(
        number=number, customer_id=customer_id, status=OrderStatus.delivered, email=email,
        shipping_name="Test", shipping_line1="Street 1", shipping_city="Berlin",
        shipping_postcode="10115", shipping_country=country, total=Decimal(total),
        placed_at=at, updated_at=at,
    )  # fmt: skip


def customer(
    session: Session,
    name: str,
    country: str = "DE",
    orders: tuple[tuple[float, str], ...] = (),  # (days ago, total)
    channel: str | None = "telegram",
    consent: bool | None = True,
) -> int:
    c = Customer(
        email=f"{name.lower()}@example.com", first_name=name, last_name="Test",
        postcode="10115", country=country,
    )  # fmt: skip
    session.add(c)
    session.flush()
    assert c.id is not None
    for index, (ago, total) in enumerate(orders):
        session.add(order(f"{c.id:03d}{index:03d}", c.id, c.email, country, total, days_ago(ago)))
    if channel is not None:
        external = f"{name.lower()}-chat"
        identity = channel_state.get_or_create_identity(session, channel, external)
        identity.customer_id = c.id
        session.add(identity)
        session.flush()
        if consent is not None:
            channel_state.record_consent(session, channel, external, True, "test", now=days_ago(40))
            if not consent:
                channel_state.record_consent(
                    session, channel, external, False, "test", now=days_ago(20)
                )
    session.flush()
    return c.id


@pytest.fixture
def shop(store_engine: Engine) -> dict[str, int]:
    with session_scope(store_engine) as s:
        return {
            # champions: many recent orders, big spend
            "ana": customer(s, "Ana", "DE", ((2, "120"), (20, "80"), (40, "90"), (60, "70"))),
            "ben": customer(s, "Ben", "AT", ((5, "30"),)),  # new: one recent order
            "cem": customer(s, "Cem", "DE", ((200, "60"), (260, "40"), (300, "50"))),  # at risk
            "dora": customer(s, "Dora", "FR", ((400, "15"),)),  # hibernating
            "eve": customer(s, "Eve", "DE", (), channel="web"),  # never purchased
            "finn": customer(s, "Finn", "DE", ((3, "200"), (9, "50")), consent=False),
            "gil": customer(s, "Gil", "DE", ((4, "20"),), consent=None),  # never asked
            "hana": customer(s, "Hana", "DE", ((10, "70"), (30, "60"), (50, "40")), channel=None),
        }


def names(engine: Engine, spec: SegmentFilter, ids: dict[str, int]) -> tuple[set[str], int]:
    by_id = {v: k for k, v in ids.items()}
    with session_scope(engine) as s:
        found = audience(customer_facts(snapshot(s), NOW), spec, NOW)
    return {by_id[r.customer_id] for r in found.recipients}, found.matching


def test_only_consenting_reachable_customers_are_recipients(
    store_engine: Engine, shop: dict[str, int]
) -> None:
    everyone, matching = names(store_engine, SegmentFilter(), shop)
    assert matching == 8
    # finn opted out, gil never opted in, hana has no chat identity
    assert everyone == {"ana", "ben", "cem", "dora", "eve"}
    with session_scope(store_engine) as s:
        channel_state.mark_unreachable(s, "telegram", "dora-chat", now=NOW)
    assert "dora" not in names(store_engine, SegmentFilter(), shop)[0]


def test_segment_filters(store_engine: Engine, shop: dict[str, int]) -> None:
    def pick(**fields: object) -> set[str]:
        return names(store_engine, SegmentFilter.model_validate(fields), shop)[0]

    assert pick(countries=["de"]) == {"ana", "cem", "eve"}
    assert pick(channel="web") == {"eve"}
    assert pick(never_purchased=True) == {"eve"}
    assert pick(min_orders=3) == {"ana", "cem"}
    assert pick(max_orders=1) == {"ben", "dora", "eve"}
    assert pick(min_spend=150) == {"ana", "cem"}
    assert pick(max_spend=50) == {"ben", "dora", "eve"}
    assert pick(min_days_since_purchase=100) == {"cem", "dora"}
    assert pick(max_days_since_purchase=10) == {"ana", "ben"}
    assert pick(rfm=["champions"]) == {"ana"}
    assert pick(rfm=["at_risk", "hibernating"]) == {"cem", "dora"}
    assert pick(countries=["DE"], min_orders=1) == {"ana", "cem"}


def test_rfm_segments_of_the_fixture(store_engine: Engine, shop: dict[str, int]) -> None:
    with session_scope(store_engine) as s:
        facts = {f.first_name: f for f in customer_facts(snapshot(s), NOW)}
    assert facts["Ana"].rfm == "champions"
    assert facts["Ben"].rfm == "new"
    assert facts["Cem"].rfm == "at_risk"
    assert facts["Dora"].rfm == "hibernating"
    assert facts["Eve"].rfm is None and facts["Eve"].orders == 0
    assert facts["Ana"].orders == 4 and facts["Ana"].spend == 360.0


def test_bad_filters_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="unknown RFM segment"):
        SegmentFilter(rfm=["vip"])
    with pytest.raises(ValueError):
        SegmentFilter(min_churn_risk=1.5)
    with pytest.raises(ValueError, match="unknown placeholder"):
        Variant(text="Hi {name}")
    with pytest.raises(ValueError, match="add up to 100"):
        check_variants(
            [Variant(name="A", share=60, text="a"), Variant(name="B", share=60, text="b")]
        )


def test_variants_split_deterministically_by_share() -> None:
    variants = [{"name": "A", "share": 70}, {"name": "B", "share": 30}]
    picks = [store.variant_for(9, c, variants) for c in range(4000)]
    assert picks == [store.variant_for(9, c, variants) for c in range(4000)]
    share_a = Counter(picks)["A"] / len(picks)
    assert 0.66 < share_a < 0.74


def test_start_writes_each_recipient_once_and_cancel_skips_the_rest(
    store_engine: Engine, shop: dict[str, int]
) -> None:
    with session_scope(store_engine) as s:
        campaign = store.create_campaign(
            s, "Spring", {}, [{"name": "A", "share": 100, "text": "Hi {first_name}"}]
        )
        assert campaign.id is not None
        cid = campaign.id
        store.move(s, cid, "schedule", NOW)
        recipients = [Recipient(shop["ana"], "telegram", "ana-chat")] * 2
        assert store.start(s, campaign, recipients, NOW) == 1  # one row per customer
    with pytest.raises(IntegrityError), session_scope(store_engine) as s:
        store.start(s, store.get_campaign(s, cid), recipients, NOW)  # a second start: refused
    with session_scope(store_engine) as s:
        assert len(store.deliveries_of(s, cid)) == 1
        with pytest.raises(CampaignError, match="cannot resume"):
            store.move(s, cid, "resume", NOW)
        store.move(s, cid, "pause", NOW)
        assert store.get_campaign(s, cid).status is CampaignStatus.paused
        store.move(s, cid, "resume", NOW)
        assert store.get_campaign(s, cid).status is CampaignStatus.sending
        store.move(s, cid, "cancel", NOW)
        (row,) = store.deliveries_of(s, cid)
        assert row.status is DeliveryStatus.skipped and row.error == "campaign cancelled"


def test_render_fills_placeholders_links_and_unsubscribe(store_engine: Engine) -> None:
    signer = LinkSigner("secret", "https://shop.example")
    variant = Variant(
        text="Hi {first_name}, spring is here",
        buttons=[{"title": "Shop now", "url": "https://shop.example/spring"}],  # type: ignore[list-item]
    )
    with session_scope(store_engine) as s:
        reply = render(
            s, variant, Person(1, "Ana"), links=lambda i: signer.link(42, i), recommender=None
        )
    assert reply.text == "Hi Ana, spring is here"
    link, unsubscribe = reply.buttons
    assert link.title == "Shop now" and link.payload.startswith("https://shop.example/r/")
    assert signer.read(link.payload.rsplit("/", 1)[1]) == (42, 0)
    assert signer.read(link.payload.rsplit("/", 1)[1] + "x") is None  # forged
    assert unsubscribe.payload == "/unsubscribe"


def test_results_attribute_clicks_replies_opt_outs_and_orders_inside_the_window(
    store_engine: Engine, shop: dict[str, int]
) -> None:
    sent_at = days_ago(10)
    with session_scope(store_engine) as s:
        variants = [
            {"name": "A", "share": 50, "text": "a"},
            {"name": "B", "share": 50, "text": "b"},
        ]
        campaign = store.create_campaign(s, "Results", {}, variants, attribution_days=7)
        store.move(s, campaign.id or 0, "schedule", sent_at)
        people = ["ana", "ben", "cem", "dora"]
        store.start(
            s, campaign, [Recipient(shop[p], "telegram", f"{p}-chat") for p in people], sent_at
        )
        rows = {r.external_id: r for r in store.deliveries_of(s, campaign.id or 0)}
        ids = [r.id for r in rows.values() if r.id is not None and r.external_id != "dora-chat"]
        store.mark(s, ids, DeliveryStatus.sent, sent_at=sent_at)
        store.mark(s, [rows["dora-chat"].id or 0], DeliveryStatus.failed, error="blocked")
        store.record_click(s, rows["ana-chat"].id or 0, sent_at + timedelta(hours=1))
        conversations.get_or_create_conversation(s, "telegram", "ben-chat")
        conversations.record_inbound(
            s, "telegram:ben-chat", "m1", "tell me more", None, {}, now=sent_at + timedelta(days=1)
        )
        channel_state.record_consent(
            s, "telegram", "cem-chat", False, "test", now=sent_at + timedelta(days=2)
        )
        # ana's order 2 days ago is 8 days after the send: outside the 7-day window; ben's
        # order 5 days ago is inside it, and so is this new order of cem
        s.add(order("999001", shop["cem"], "cem@example.com", "DE", "10", sent_at + timedelta(3)))
        s.flush()
        result = results(s, store.get_campaign(s, campaign.id or 0), NOW)
        csv_text = to_csv(result)
    total = result.total
    assert (total.audience, total.delivered, total.failed) == (4, 3, 1)
    assert (total.clicked, total.replied, total.unsubscribed, total.converted) == (1, 1, 1, 2)
    assert sum(v.audience for v in result.variants) == 4
    assert {v.name for v in result.variants} == {"A", "B"}
    assert csv_text.splitlines()[0].startswith("delivery_id,customer_id")
    assert len(csv_text.splitlines()) == 5
    assert result.timeline and sum(n for _, n in result.timeline) == 3


def test_quiet_hours_follow_the_campaign_time_zone_and_wrap_midnight() -> None:
    from bot.campaigns.sender import in_quiet_hours
    from bot.store.campaigns import Campaign

    night = Campaign(name="n", status=CampaignStatus.scheduled, timezone="Europe/Berlin",
                     quiet_start=21, quiet_end=8)  # fmt: skip
    # 2025-06-02 is summer time: Berlin = UTC+2
    assert in_quiet_hours(night, datetime(2025, 6, 2, 19, 30, tzinfo=UTC))  # 21:30 local
    assert in_quiet_hours(night, datetime(2025, 6, 2, 5, 59, tzinfo=UTC))  # 07:59 local
    assert not in_quiet_hours(night, datetime(2025, 6, 2, 6, 0, tzinfo=UTC))  # 08:00 local
    lunch = Campaign(name="l", status=CampaignStatus.scheduled, quiet_start=12, quiet_end=14)
    assert in_quiet_hours(lunch, datetime(2025, 6, 2, 13, 0, tzinfo=UTC))
    assert not in_quiet_hours(lunch, datetime(2025, 6, 2, 14, 0, tzinfo=UTC))
    assert not in_quiet_hours(Campaign(name="x", status=CampaignStatus.draft), NOW)


def test_stop_and_unsubscribe_typed_alone_always_mean_opt_out() -> None:
    from bot.channels.base import text_for_rasa

    for typed in ("STOP", "stop", " Unsubscribe! ", "stop all"):
        assert text_for_rasa(None, typed) == "/unsubscribe", typed
    assert text_for_rasa(None, "stop my order") == "stop my order"
    assert text_for_rasa("/greet", "stop") == "/greet"  # a button's payload wins


def test_churn_risk_from_the_shops_own_history_feeds_the_segment_filter(
    store_engine: Engine,
) -> None:
    from bot.campaigns.analytics import Analytics

    with session_scope(store_engine) as s:
        for i in range(40):
            # loyal customers order every month up to now; lapsed ones stopped half a year ago
            stopped = 0 if i % 2 == 0 else 180
            orders = tuple((stopped + 30 * k + i % 7, "40") for k in range(12))
            customer(s, f"Cust{i:02d}", orders=orders)
        customer(s, "Never", orders=())
    analytics = Analytics(store_engine)
    summary = analytics.churn(NOW)
    facts = analytics.facts(NOW)
    assert summary.scores is not None and summary.evaluation is not None, summary.problem
    assert summary.evaluation["auc"] > 0.8
    risk = {f.first_name: f.churn_risk for f in facts}
    assert risk["Never"] is None
    lapsed = [risk[f"Cust{i:02d}"] for i in range(1, 40, 2)]
    loyal = [risk[f"Cust{i:02d}"] for i in range(0, 40, 2)]
    assert min(x for x in lapsed if x is not None) > max(x for x in loyal if x is not None)
    high = audience(facts, SegmentFilter(min_churn_risk=0.5), NOW)
    assert high.matching == 20


def test_sent_rows_become_transcript_messages_in_one_go(
    store_engine: Engine, shop: dict[str, int]
) -> None:
    with session_scope(store_engine) as s:
        conversations.get_or_create_conversation(s, "telegram", "ana-chat")  # exists already
        campaign = store.create_campaign(s, "Bulk", {}, [{"name": "A", "share": 100, "text": "x"}])
        store.move(s, campaign.id or 0, "schedule", NOW)
        store.start(
            s, campaign, [Recipient(shop[p], "telegram", f"{p}-chat") for p in ("ana", "ben")], NOW
        )
        rows = store.deliveries_of(s, campaign.id or 0)
        conversations.ensure_conversations(s, {("telegram", r.external_id): NOW for r in rows})
        ids = conversations.record_delivered_outbound(
            s, [(f"telegram:{r.external_id}", {"text": f"hi {r.external_id}"},
                 {"delivery": r.id}, NOW) for r in rows],
        )  # fmt: skip
        store.mark_sent(s, [(r.id or 0, NOW, m) for r, m in zip(rows, ids, strict=True)])
    with session_scope(store_engine) as s:
        for row in store.deliveries_of(s, campaign.id or 0):
            assert row.status is DeliveryStatus.sent and row.sent_at == NOW
            (message,) = conversations.transcript(s, f"telegram:{row.external_id}")
            assert message.id == row.message_id and message.text == f"hi {row.external_id}"
            assert message.meta == {"delivery": row.id}


def test_composer_form_splits_a_and_b_evenly_when_a_still_says_100() -> None:
    from multidict import MultiDict

    from bot.console.campaigns import FormProblem, variants_from_form

    form = MultiDict({"a_text": "Hi {first_name}", "a_share": "100", "b_text": "Hello!"})
    a, b = variants_from_form(form)
    assert (a.name, a.share, b.name, b.share) == ("A", 50, "B", 50)
    form = MultiDict({"a_text": "x", "a_share": "70", "b_text": "y", "b_share": "50"})
    assert [v.share for v in variants_from_form(form)] == [70, 30]
    with pytest.raises(FormProblem, match="http"):
        variants_from_form(
            MultiDict(
                {"a_text": "x", "a_button1_title": "Go", "a_button1_url": "javascript:alert(1)"}
            )
        )
