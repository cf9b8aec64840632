"""Campaign pages of the console (marketers and admins): list, composer with a live segment
count and a preview, schedule / pause / resume / cancel, and the results page with charts and
a CSV export. Every page is a plain form; console.js only adds the live count."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from pydantic import ValidationError
from sqlmodel import Session

from bot.campaigns.analytics import Analytics, categories
from bot.campaigns.compose import (
    LinkSigner,
    Person,
    Variant,
    check_variants,
    render,
    variants_from_json,
)
from bot.campaigns.results import FUNNEL, results, to_csv
from bot.campaigns.segments import CHANNELS, SegmentFilter, audience
from bot.console.auth import COOKIE_PATH, StaffSession, error, wants_json
from bot.console.report import bar_chart, hbar_chart
from bot.recommendations import Recommendations
from bot.store import campaigns as store
from bot.store import support
from bot.store.campaigns import CampaignError
from bot.store.support import StaffRole
from recsys.rfm import SEGMENTS

MARKETING = frozenset({StaffRole.marketer, StaffRole.admin})
PAGE = f"{COOKIE_PATH}/campaigns"


class FormProblem(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CampaignPages:
    def __init__(
        self,
        console: Any,  # bot.console.Console (its render/done/audit helpers)
        analytics: Analytics,
        signer: LinkSigner,
        recommender: Any = lambda: None,
    ) -> None:
        self.console = console
        self.shop = console.shop
        self.analytics = analytics
        self.signer = signer
        self.recommender = recommender

    def mount(self, app: web.Application) -> None:
        g, add = self.console.auth.guard, app.router
        add.add_get(PAGE, g(MARKETING, self.list_page))
        add.add_get(f"{PAGE}/new", g(MARKETING, self.new_page))
        add.add_post(PAGE, g(MARKETING, self.create))
        add.add_post(f"{PAGE}/preview", g(MARKETING, self.preview))
        add.add_post(f"{COOKIE_PATH}/api/segments/count", g(MARKETING, self.count))
        add.add_get(f"{PAGE}/{{campaign_id:\\d+}}", g(MARKETING, self.campaign_page))
        add.add_get(f"{PAGE}/{{campaign_id:\\d+}}/export.csv", g(MARKETING, self.export))
        add.add_post(f"{PAGE}/{{campaign_id:\\d+}}/{{action}}", g(MARKETING, self.move))
        add.add_get("/r/{token}", self.follow_link)

    # --- list -------------------------------------------------------------------------------
    async def list_page(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        campaigns = await self.shop.transaction(store.list_campaigns)
        return self.console.render(
            request, "campaigns.html", me, title="Campaigns", campaigns=campaigns
        )

    # --- composer ---------------------------------------------------------------------------
    async def new_page(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        return await self._composer(request, me, {}, None, None)

    async def _composer(
        self,
        request: web.Request,
        me: StaffSession,
        form: Any,
        problem: str | None,
        preview: dict[str, Any] | None,
        status: int = 200,
    ) -> web.Response:
        churn = await asyncio.to_thread(self.analytics.churn, self.shop.now())
        context = {"churn": churn, "categories": await self.shop.transaction(categories)}
        response: web.Response = self.console.render(
            request,
            "campaign_new.html",
            me,
            title="New campaign",
            form=_Values(form),
            problem=problem,
            preview=preview,
            channels=CHANNELS,
            segments=SEGMENTS,
            **context,
        )
        response.set_status(status)
        return response

    async def count(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        form = await request.post()
        try:
            spec = segment_from_form(form)
        except FormProblem as problem:
            return web.json_response(
                {"error": {"code": "invalid", "message": problem.message}}, status=400
            )
        now = self.shop.now()
        result = audience(await asyncio.to_thread(self.analytics.facts, now), spec, now)
        return web.json_response({"matching": result.matching, "recipients": result.count})

    async def preview(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        form = await request.post()
        try:
            spec = segment_from_form(form)
            variants = variants_from_form(form)
        except FormProblem as problem:
            return await self._composer(request, me, form, problem.message, None, 400)
        now = self.shop.now()
        recommender = self.recommender()
        facts = await asyncio.to_thread(self.analytics.facts, now)
        found = audience(facts, spec, now)

        def work(session: Session) -> dict[str, Any]:
            sample = next(
                (
                    f
                    for f in facts
                    if found.recipients and f.customer_id == found.recipients[0].customer_id
                ),
                None,
            )
            person = (
                Person(sample.customer_id, sample.first_name, sample.last_name, sample.country)
                if sample
                else Person(None, "Alex", "Sample", "")
            )
            rendered = [
                (v.name, render(session, v, person, links=None, recommender=recommender))
                for v in variants
            ]
            return {
                "person": person,
                "replies": rendered,
                "matching": found.matching,
                "recipients": found.count,
            }

        preview = await self.shop.transaction(work)
        return await self._composer(request, me, form, None, preview)

    async def create(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        form = await request.post()
        try:
            spec = segment_from_form(form)
            variants = variants_from_form(form)
            schedule = schedule_from_form(form, self.shop.now())
        except FormProblem as problem:
            if wants_json(request):
                return error(request, 400, "invalid", problem.message)
            return await self._composer(request, me, form, problem.message, None, 400)
        now = self.shop.now()
        name = str(form.get("name", "")).strip()

        def work(session: Session) -> int:
            campaign = store.create_campaign(
                session,
                name,
                spec.model_dump(mode="json"),
                [v.model_dump(mode="json") for v in variants],
                created_by=me.staff.id,
                timezone=schedule.timezone,
                quiet_start=schedule.quiet_start,
                quiet_end=schedule.quiet_end,
                send_after_handoff=schedule.send_after_handoff,
                attribution_days=schedule.attribution_days,
            )
            assert campaign.id is not None
            if schedule.send:
                store.move(session, campaign.id, "schedule", now, schedule.send_at)
            support.audit(
                session, me.staff, "campaign_create",
                details={"id": campaign.id, "name": campaign.name, "send": schedule.send},
                now=now,
            )  # fmt: skip
            return campaign.id

        try:
            campaign_id = await self.shop.transaction(work)
        except CampaignError as err:
            return await self._composer(request, me, form, err.message, None, 400)
        message = "Campaign scheduled." if schedule.send else "Draft saved."
        return self.console.done(request, f"{PAGE}/{campaign_id}", message, id=campaign_id)

    # --- one campaign -----------------------------------------------------------------------
    async def campaign_page(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        campaign_id = int(request.match_info["campaign_id"])
        now = self.shop.now()

        def load(session: Session) -> Any:
            campaign = store.get_campaign(session, campaign_id)
            return campaign, results(session, campaign, now)

        try:
            campaign, result = await self.shop.transaction(load)
        except CampaignError as err:
            return error(request, 404, "not_found", err.message)
        if wants_json(request):
            return web.json_response(
                {
                    "id": campaign.id,
                    "status": campaign.status.value,
                    "variants": [vars(v) for v in result.variants],
                    "total": vars(result.total),
                    "significance": result.significance,
                }
            )
        charts = {
            "timeline": bar_chart(
                "Messages sent over time",
                [label[11:19] for label, _ in result.timeline],
                [count for _, count in result.timeline],
            ),
            "funnel": hbar_chart(
                "Funnel", [(step, getattr(result.total, step)) for step in FUNNEL]
            ),
            "ab": hbar_chart(
                "Click rate per variant (per mille)",
                [(v.name, round(1000 * v.rate("clicked"))) for v in result.variants],
            ),
        }
        return self.console.render(
            request,
            "campaign.html",
            me,
            title=campaign.name,
            campaign=campaign,
            result=result,
            charts=charts,
            variants=variants_from_json(campaign.variants),
        )

    async def export(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        campaign_id = int(request.match_info["campaign_id"])
        now = self.shop.now()

        def load(session: Session) -> str:
            return to_csv(results(session, store.get_campaign(session, campaign_id), now))

        try:
            body = await self.shop.transaction(load)
        except CampaignError as err:
            return error(request, 404, "not_found", err.message)
        return web.Response(
            text=body,
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="campaign-{campaign_id}.csv"'},
        )

    async def move(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        campaign_id = int(request.match_info["campaign_id"])
        action = request.match_info["action"]
        form = await request.post()
        now = self.shop.now()
        page = f"{PAGE}/{campaign_id}"
        try:
            send_at = schedule_from_form(form, now).send_at if action == "schedule" else None
        except FormProblem as problem:
            return self.console.done(request, page, problem.message)

        def work(session: Session) -> str:
            campaign = store.move(session, campaign_id, action, now, send_at)
            support.audit(
                session, me.staff, f"campaign_{action}", details={"id": campaign_id}, now=now
            )
            return campaign.status.value

        try:
            status = await self.shop.transaction(work)
        except CampaignError as err:
            if wants_json(request):
                return error(request, 409, "invalid_move", err.message)
            return self.console.done(request, page, err.message)
        return self.console.done(request, page, f"Campaign is now {status}.", status=status)

    # --- tracked links (customers, no sign-in) ----------------------------------------------
    async def follow_link(self, request: web.Request) -> web.StreamResponse:
        found = self.signer.read(request.match_info["token"])
        if found is None:
            return web.Response(status=404, text="This link is not valid.")
        delivery_id, button = found
        now = self.shop.now()

        def work(session: Session) -> str | None:
            delivery = session.get(store.CampaignDelivery, delivery_id)
            if delivery is None:
                return None
            campaign = session.get(store.Campaign, delivery.campaign_id)
            variants = {
                v.name: v for v in variants_from_json(campaign.variants if campaign else [])
            }
            variant = variants.get(delivery.variant)
            if variant is None or not 0 <= button < len(variant.buttons):
                return None
            store.record_click(session, delivery_id, now)
            return variant.buttons[button].url

        target = await self.shop.transaction(work)
        if target is None:
            return web.Response(status=404, text="This link is not valid.")
        raise web.HTTPFound(target)


# --- form parsing ----------------------------------------------------------------------------


class _Values:
    """Form values for re-rendering the composer (empty on a fresh page)."""

    def __init__(self, form: Any) -> None:
        self.form = form

    def get(self, name: str, default: str = "") -> str:
        return str(self.form.get(name, default)) if self.form else default

    def has(self, name: str, value: str) -> bool:
        return bool(self.form) and value in [str(v) for v in self.form.getall(name, [])]


def _number(form: Any, name: str, cast: Any, scale: float = 1.0) -> Any:
    raw = str(form.get(name, "")).strip()
    if not raw:
        return None
    try:
        value = cast(raw)
    except ValueError as err:
        raise FormProblem(f"“{raw}” is not a number ({name.replace('_', ' ')}).") from err
    return value / scale if scale != 1.0 else value


def segment_from_form(form: Any) -> SegmentFilter:
    try:
        return SegmentFilter(
            channel=str(form.get("channel", "")) or None,
            countries=str(form.get("countries", "")).replace(";", ",").split(","),
            min_days_since_purchase=_number(form, "min_days", int),
            max_days_since_purchase=_number(form, "max_days", int),
            min_orders=_number(form, "min_orders", int),
            max_orders=_number(form, "max_orders", int),
            min_spend=_number(form, "min_spend", float),
            max_spend=_number(form, "max_spend", float),
            rfm=[str(v) for v in form.getall("rfm", [])],
            min_churn_risk=_number(form, "min_churn", float, 100.0),
            max_churn_risk=_number(form, "max_churn", float, 100.0),
            category=str(form.get("category", "")) or None,
            never_purchased=str(form.get("never_purchased", "")) == "on",
        )
    except ValidationError as err:
        raise FormProblem(_first_error(err)) from err


def variants_from_form(form: Any) -> list[Variant]:
    variants = []
    names = ["A", "B"] if str(form.get("b_text", "")).strip() else ["A"]
    for name in names:
        p = name.lower() + "_"
        ids = [i.strip() for i in str(form.get(p + "product_ids", "")).split(",") if i.strip()]
        if not all(i.isdigit() for i in ids):
            raise FormProblem("Product ids are numbers separated by commas.")
        buttons = []
        for i in (1, 2):
            title = str(form.get(f"{p}button{i}_title", "")).strip()
            url = str(form.get(f"{p}button{i}_url", "")).strip()
            if title or url:
                buttons.append({"title": title, "url": url})
        share = _number(form, p + "share", int)
        try:
            variants.append(
                Variant.model_validate(
                    {
                        "name": name,
                        "share": share if share is not None else 100 // len(names),
                        "text": str(form.get(p + "text", "")),
                        "cards": {
                            "mode": str(form.get(p + "cards", "none")) or "none",
                            "product_ids": [int(i) for i in ids],
                            "count": _number(form, p + "count", int) or 3,
                            "max_price": _number(form, p + "max_price", float),
                        },
                        "buttons": buttons,
                    }
                )
            )
        except ValidationError as err:
            raise FormProblem(f"Message {name}: {_first_error(err)}") from err
    if len(variants) == 2 and sum(v.share for v in variants) != 100:
        # B added while A still says 100 %: an even split; otherwise B takes the rest
        a_share = 50 if variants[0].share == 100 else variants[0].share
        variants = [
            variants[0].model_copy(update={"share": a_share}),
            variants[1].model_copy(update={"share": 100 - a_share}),
        ]
    try:
        return check_variants(variants)
    except ValueError as err:
        raise FormProblem(str(err)) from err


class Schedule:
    def __init__(
        self,
        send: bool,
        send_at: datetime | None,
        timezone: str,
        quiet_start: int | None,
        quiet_end: int | None,
        send_after_handoff: bool,
        attribution_days: int,
    ) -> None:
        self.send = send
        self.send_at = send_at
        self.timezone = timezone
        self.quiet_start = quiet_start
        self.quiet_end = quiet_end
        self.send_after_handoff = send_after_handoff
        self.attribution_days = attribution_days


def schedule_from_form(form: Any, now: datetime) -> Schedule:
    zone_name = str(form.get("timezone", "")).strip() or "UTC"
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise FormProblem(f"Unknown time zone “{zone_name}” (use e.g. Europe/Berlin).") from err
    when = str(form.get("send_at", "")).strip()
    send_at = None
    if when:
        try:
            local = datetime.fromisoformat(when)
        except ValueError as err:
            raise FormProblem("The send time must look like 2026-12-24T09:00.") from err
        send_at = (local if local.tzinfo else local.replace(tzinfo=zone)).astimezone(now.tzinfo)
        if send_at < now - timedelta(minutes=1):
            raise FormProblem("The send time is in the past.")
    quiet = [_number(form, n, int) for n in ("quiet_start", "quiet_end")]
    if (quiet[0] is None) != (quiet[1] is None) or any(
        q is not None and not 0 <= q <= 23 for q in quiet
    ):
        raise FormProblem("Quiet hours need a start and an end hour between 0 and 23.")
    days = _number(form, "attribution_days", int)
    if days is not None and not 1 <= days <= 90:
        raise FormProblem("The attribution window is 1 to 90 days.")
    return Schedule(
        send=str(form.get("intent", "draft")) == "send",
        send_at=send_at,
        timezone=zone_name,
        quiet_start=quiet[0],
        quiet_end=quiet[1],
        send_after_handoff=str(form.get("skip_handoff", "")) != "on",
        attribution_days=days or 7,
    )


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("__root__",))
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{where.replace('_', ' ')}: {message}" if where else message


def recommender_of(services: Any) -> Any:
    """The recommender once it is loaded (campaign pages never wait for a first training)."""

    def get() -> Recommendations | None:
        return services.recommendations() if services.recommendations_ready() else None

    return get
