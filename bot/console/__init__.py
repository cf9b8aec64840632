"""The support console under /console: sign-in, live queue, tickets, canned responses, staff,
audit log and report. Plain HTML rendered on the server (Jinja2, autoescaped) with a little
vanilla JS for live updates; every form works without it.

Roles: agents and admins work tickets; marketers never see them; admins also manage staff and
canned responses and read the audit log. Every action is written to the audit log.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aiohttp
import jinja2
from aiohttp import web
from sqlmodel import Session

from bot.channels.base import ProductCard
from bot.console.auth import (
    COOKIE_PATH,
    CSRF_FIELD,
    ConsoleAuth,
    StaffSession,
    error,
    load_secret_key,
    wants_json,
)
from bot.console.data import (
    product_by_id,
    product_card,
    recent_orders,
    search_products,
    understood_intents,
)
from bot.console.live import LiveHub, customer_label, message_view, queue_snapshot
from bot.console.report import bar_chart, build_report, duration_text, hbar_chart
from bot.handoff import ask_csat, business_hours, staff_reply
from bot.media import MediaStore
from bot.rasa_client import RasaUnavailable
from bot.router import Router
from bot.store import conversations, support
from bot.store.support import (
    TICKET_ROLES,
    AlreadyClaimed,
    StaffRole,
    StaffUser,
    SupportError,
    TicketState,
)

HERE = Path(__file__).parent
ADMIN = frozenset({StaffRole.admin})
ANY_STAFF = frozenset(StaffRole)
FLASH_COOKIE = "nw_console_flash"
LOGIN_FAILURES_ALLOWED = 5
LOGIN_LOCKOUT = timedelta(minutes=15)
TRANSCRIPT_LIMIT = 500
MAX_REPLY_CHARS = 4000


class Console:
    def __init__(self, router: Router, hub: LiveHub) -> None:
        self.router = router
        self.shop = router.shop
        self.settings = router.shop.settings
        self.hub = hub
        public = self.settings.public_url
        self.auth = ConsoleAuth(
            self.shop,
            load_secret_key(self.settings),
            self.settings.console_idle_minutes,
            secure_cookies=urlsplit(public).scheme == "https",
        )
        self.media = MediaStore(self.settings.data_dir / "media", 0)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters["duration"] = duration_text
        self._http: aiohttp.ClientSession | None = None

    # --- wiring -----------------------------------------------------------------------------
    def mount(self, app: web.Application) -> None:
        add, staff = app.router, TICKET_ROLES
        g = self.auth.guard
        add.add_get(COOKIE_PATH, g(ANY_STAFF, self.home))
        add.add_get(f"{COOKIE_PATH}/", g(ANY_STAFF, self.home))
        add.add_get(f"{COOKIE_PATH}/login", self.login_page)
        add.add_post(f"{COOKIE_PATH}/login", self.login)
        add.add_post(f"{COOKIE_PATH}/logout", g(ANY_STAFF, self.logout))
        add.add_static(f"{COOKIE_PATH}/static/", HERE / "static", show_index=False)
        add.add_get(f"{COOKIE_PATH}/queue", g(staff, self.queue_page))
        add.add_get(f"{COOKIE_PATH}/api/queue", g(staff, self.queue_json))
        add.add_get(f"{COOKIE_PATH}/ws", g(staff, self.live))
        add.add_get(f"{COOKIE_PATH}/tickets/{{ticket_id:\\d+}}", g(staff, self.ticket_page))
        add.add_post(
            f"{COOKIE_PATH}/tickets/{{ticket_id:\\d+}}/{{action}}", g(staff, self.ticket_action)
        )
        add.add_get(f"{COOKIE_PATH}/media/{{media_id:[0-9a-f]{{64}}}}", g(staff, self.media_file))
        add.add_get(f"{COOKIE_PATH}/report", g(staff, self.report_page))
        add.add_get(f"{COOKIE_PATH}/canned", g(staff, self.canned_page))
        add.add_post(f"{COOKIE_PATH}/canned", g(ADMIN, self.canned_save))
        add.add_post(
            f"{COOKIE_PATH}/canned/{{canned_id:\\d+}}/delete", g(ADMIN, self.canned_delete)
        )
        add.add_get(f"{COOKIE_PATH}/staff", g(ADMIN, self.staff_page))
        add.add_post(f"{COOKIE_PATH}/staff", g(ADMIN, self.staff_save))
        add.add_get(f"{COOKIE_PATH}/audit", g(ADMIN, self.audit_page))
        app.middlewares.append(self._renew_session)
        app.cleanup_ctx.append(self._lifecycle)

    async def _lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3))
        await self.hub.start()
        yield
        await self.hub.stop()
        await self._http.close()

    @web.middleware
    async def _renew_session(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        if request.path.startswith(COOKIE_PATH):
            self.auth.renew(request, response)
            if isinstance(response, web.Response) and response.content_type == "text/html":
                response.headers.setdefault("X-Frame-Options", "DENY")
                response.headers.setdefault("Referrer-Policy", "same-origin")
                response.headers.setdefault(
                    "Content-Security-Policy",
                    "default-src 'self'; img-src 'self' data: https:; style-src 'self'; "
                    "script-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'",
                )
        return response

    # --- helpers ----------------------------------------------------------------------------
    def render(
        self, request: web.Request, name: str, session: StaffSession | None, **context: Any
    ) -> web.Response:
        flash = unquote(request.cookies.get(FLASH_COOKIE, "")) or None
        html = self.templates.get_template(name).render(
            me=session.staff if session else None,
            csrf=session.csrf if session else "",
            csrf_field=CSRF_FIELD,
            is_admin=bool(session and session.is_admin),
            notice=flash,
            **context,
        )
        response = web.Response(text=html, content_type="text/html")
        if flash:
            response.del_cookie(FLASH_COOKIE, path=COOKIE_PATH)
        return response

    def done(self, request: web.Request, location: str, message: str, **data: Any) -> web.Response:
        """The answer to a state-changing call: JSON for scripts, a redirect for forms."""
        if wants_json(request):
            return web.json_response({"ok": True, "message": message, **data})
        response = redirect(location)
        response.set_cookie(
            FLASH_COOKIE,
            quote(message[:300]),
            max_age=60,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Strict",
        )
        return response

    def refused(self, request: web.Request, location: str, err: SupportError, status: int) -> Any:
        if wants_json(request):
            body: dict[str, Any] = {"code": type(err).__name__, "message": err.message}
            if isinstance(err, AlreadyClaimed):
                body["holder"] = err.holder
            return web.json_response({"error": body}, status=status)
        return self.done(request, location, err.message)

    async def audit(
        self, staff: StaffUser | None, action: str, ticket_id: int | None = None, **details: Any
    ) -> None:
        now = self.shop.now()
        await self.shop.transaction(
            lambda s: support.audit(s, staff, action, ticket_id, details, now)
        )

    # --- sign-in ----------------------------------------------------------------------------
    async def login_page(self, request: web.Request) -> web.StreamResponse:
        if await self.auth.current(request) is not None:
            raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
        response = web.Response(content_type="text/html")
        token = self.auth.login_token(request, response)
        return self._login_form(request, response, token, None, "")

    def _login_form(
        self, request: web.Request, response: web.Response, token: str, err: str | None, email: str
    ) -> web.Response:
        html = self.templates.get_template("login.html").render(
            me=None,
            csrf="",
            csrf_field=CSRF_FIELD,
            is_admin=False,
            notice=None,
            title="Sign in",
            login_token=token,
            error=err,
            next=_safe_next(request.query.get("next")),
            email=email,
        )
        response.text = html
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        email = str(form.get("email", "")).strip().lower()[:254]
        password = str(form.get("password", ""))
        next_url = _safe_next(str(form.get("next", "")) or None)
        if not self.auth.login_token_ok(request, str(form.get(CSRF_FIELD, ""))):
            return error(request, 403, "csrf", "The sign-in form expired; reload and retry.")
        now = self.shop.now()

        def check(session: Session) -> tuple[StaffUser | None, bool]:
            failures = support.failed_logins_since(session, email, now - LOGIN_LOCKOUT)
            if failures >= LOGIN_FAILURES_ALLOWED:
                return None, True
            user = support.authenticate(session, email, password, now)
            if user is None:
                support.audit(
                    session,
                    None,
                    "login_failed",
                    details={"email": email},
                    now=now,
                    actor=email or "anonymous",
                )
            else:
                support.audit(session, user, "login", now=now)
            return user, False

        user, locked = await self.shop.transaction(check)
        if user is None:
            message = (
                "Too many failed sign-ins; try again in 15 minutes."
                if locked
                else "That e-mail and password do not match an active account."
            )
            response = web.Response(status=401, content_type="text/html")
            token = self.auth.login_token(request, response)
            return self._login_form(request, response, token, message, email)
        response = redirect(next_url if user.role in TICKET_ROLES else COOKIE_PATH)
        self.auth.start_session(response, user)
        return response

    async def logout(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        await self.audit(me.staff, "logout")
        response = redirect(f"{COOKIE_PATH}/login")
        self.auth.end_session(response)
        return response

    async def home(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        if me.staff.role in TICKET_ROLES:
            raise web.HTTPSeeOther(f"{COOKIE_PATH}/queue")
        raise web.HTTPSeeOther(f"{COOKIE_PATH}/campaigns")  # marketers

    # --- queue ------------------------------------------------------------------------------
    async def queue_page(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        tickets = await self.shop.transaction(queue_snapshot)
        hours = business_hours(self.settings)
        is_open = hours.is_open(self.shop.now())
        return self.render(
            request,
            "queue.html",
            me,
            title="Queue",
            tickets=tickets,
            support_open=is_open,
            hours=self.settings.support_hours,
            zone=self.settings.support_timezone,
        )

    async def queue_json(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        return web.json_response({"tickets": await self.shop.transaction(queue_snapshot)})

    async def live(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin and urlsplit(origin).netloc != request.host:
            return error(request, 403, "origin", "Cross-site WebSocket refused.")
        ticket = request.query.get("ticket")
        after = request.query.get("after", "0")
        ws = web.WebSocketResponse(heartbeat=25)
        await ws.prepare(request)
        ticket_id = int(ticket) if ticket and ticket.isdigit() else None
        await self.hub.serve(ws, ticket_id, int(after) if after.isdigit() else 0)
        return ws

    # --- ticket page ------------------------------------------------------------------------
    async def ticket_page(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        ticket_id = int(request.match_info["ticket_id"])
        query = request.query.get("q", "").strip()[:100]

        def load(session: Session) -> dict[str, Any] | None:
            try:
                ticket = support.get_ticket(session, ticket_id)
            except support.TicketNotFound:
                return None
            cid = ticket.conversation_id
            messages = [
                message_view(m) for m in conversations.transcript(session, cid, TRANSCRIPT_LIMIT)
            ]
            staff_names = {s.id: s.name for s in support.list_staff(session)}
            return {
                "ticket": ticket,
                "channel": cid.partition(":")[0],
                "customer": customer_label(session, cid),
                "holder": staff_names.get(ticket.assigned_to) if ticket.assigned_to else None,
                "messages": messages,
                "last_id": max((int(m["id"]) for m in messages), default=0),
                "orders": recent_orders(session, cid),
                "notes": [
                    (n, staff_names.get(n.author_id, "?"))
                    for n in support.notes_of(session, ticket_id)
                ],
                "canned": support.list_canned(session),
                "agents": [
                    s
                    for s in support.list_staff(session, TICKET_ROLES)
                    if s.active and s.id != ticket.assigned_to
                ],
                "history": support.tickets_of_conversation(session, cid),
                "products": search_products(session, query) if query else [],
            }

        data = await self.shop.transaction(load)
        if data is None:
            raise web.HTTPNotFound(text="No such ticket.")
        assert self._http is not None
        intents = await understood_intents(
            self._http, self.settings.rasa_urls, data["ticket"].conversation_id
        )
        ticket = data["ticket"]
        mine = ticket.state == TicketState.assigned and (
            ticket.assigned_to == me.staff.id or me.is_admin
        )
        return self.render(
            request,
            "ticket.html",
            me,
            title=f"Ticket #{ticket_id}",
            intents=intents,
            mine=mine,
            query=query,
            **data,
        )

    async def ticket_action(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        ticket_id = int(request.match_info["ticket_id"])
        action = request.match_info["action"]
        form = await _form(request)
        page = f"{COOKIE_PATH}/tickets/{ticket_id}"
        handlers: dict[str, Callable[..., Any]] = {
            "claim": self._claim,
            "reply": self._reply,
            "note": self._note,
            "transfer": self._transfer,
            "release": self._release,
            "resolve": self._resolve,
        }
        handler = handlers.get(action)
        if handler is None:
            raise web.HTTPNotFound(text="Unknown ticket action.")
        try:
            result: web.StreamResponse = await handler(request, me, ticket_id, form, page)
        except support.TicketNotFound as err:
            return self.refused(request, f"{COOKIE_PATH}/queue", err, 404)
        except (AlreadyClaimed, support.NotYourTicket, support.IllegalTransition) as err:
            return self.refused(request, page, err, 409)
        except SupportError as err:
            return self.refused(request, page, err, 400)
        self.hub.poke()
        return result

    async def _claim(
        self, request: web.Request, me: StaffSession, ticket_id: int, form: Any, page: str
    ) -> web.StreamResponse:
        now = self.shop.now()

        def work(session: Session) -> None:
            support.claim(session, ticket_id, me.staff, now)
            support.audit(session, me.staff, "ticket_claim", ticket_id, now=now)

        await self.shop.transaction(work)
        return self.done(request, page, f"You have ticket #{ticket_id} now.", holder=me.staff.name)

    def _owned(self, session: Session, ticket_id: int, me: StaffSession) -> support.HandoffTicket:
        ticket = support.get_ticket(session, ticket_id)
        if ticket.state != TicketState.assigned:
            raise support.IllegalTransition(ticket_id, ticket.state, TicketState.assigned)
        if ticket.assigned_to != me.staff.id and not me.is_admin:
            holder = support.get_staff(session, ticket.assigned_to) if ticket.assigned_to else None
            raise support.NotYourTicket(ticket_id, holder.name if holder else "someone else")
        return ticket

    async def _reply(
        self, request: web.Request, me: StaffSession, ticket_id: int, form: Any, page: str
    ) -> web.StreamResponse:
        text = str(form.get("text", "")).strip()
        canned_id, product_id = str(form.get("canned_id", "")), str(form.get("product_id", ""))
        if len(text) > MAX_REPLY_CHARS:
            raise SupportError(f"Replies can be at most {MAX_REPLY_CHARS} characters.")
        now = self.shop.now()

        def work(session: Session) -> tuple[str, int]:
            ticket = self._owned(session, ticket_id, me)
            body = text
            cards: tuple[ProductCard, ...] = ()
            if not body and canned_id.isdigit():
                canned = session.get(support.CannedResponse, int(canned_id))
                body = canned.body if canned else ""
            if product_id.isdigit():
                found = product_by_id(session, int(product_id))
                if found is None:
                    raise SupportError("That product no longer exists.")
                cards = (product_card(*found),)
            if not body and not cards:
                raise SupportError("Write a message (or pick a canned response) first.")
            message = staff_reply(session, ticket, me.staff, body or None, cards, now)
            support.audit(
                session,
                me.staff,
                "ticket_reply",
                ticket_id,
                {
                    "message_id": message.id,
                    "chars": len(body),
                    "products": [c.product_id for c in cards],
                },
                now,
            )
            assert message.id is not None
            return ticket.conversation_id, message.id

        conversation_id, message_id = await self.shop.transaction(work)
        await self.router.outbox.flush(conversation_id)
        return self.done(request, page, "Sent.", message_id=message_id)

    async def _note(
        self, request: web.Request, me: StaffSession, ticket_id: int, form: Any, page: str
    ) -> web.StreamResponse:
        body = str(form.get("body", "")).strip()[:MAX_REPLY_CHARS]
        if not body:
            raise SupportError("The note is empty.")
        now = self.shop.now()

        def work(session: Session) -> None:
            note = support.add_note(session, ticket_id, me.staff, body, now)
            support.audit(session, me.staff, "ticket_note", ticket_id, {"note_id": note.id}, now)

        await self.shop.transaction(work)
        return self.done(request, page, "Note saved (only staff can see it).")

    async def _transfer(
        self, request: web.Request, me: StaffSession, ticket_id: int, form: Any, page: str
    ) -> web.StreamResponse:
        target = str(form.get("to", ""))
        if not target.isdigit():
            raise SupportError("Pick who gets the ticket.")
        now = self.shop.now()

        def work(session: Session) -> str:
            before = support.get_ticket(session, ticket_id).assigned_to
            ticket = support.transfer(session, ticket_id, me.staff, int(target))
            support.audit(
                session,
                me.staff,
                "ticket_transfer",
                ticket_id,
                {"from": before, "to": ticket.assigned_to},
                now,
            )
            staff = support.get_staff(session, int(target))
            return staff.name if staff else "?"

        name = await self.shop.transaction(work)
        return self.done(request, f"{COOKIE_PATH}/queue", f"Ticket #{ticket_id} went to {name}.")

    async def _release(
        self, request: web.Request, me: StaffSession, ticket_id: int, form: Any, page: str
    ) -> web.StreamResponse:
        now = self.shop.now()

        def work(session: Session) -> None:
            support.release(session, ticket_id, me.staff)
            support.audit(session, me.staff, "ticket_release", ticket_id, now=now)

        await self.shop.transaction(work)
        return self.done(
            request, f"{COOKIE_PATH}/queue", f"Ticket #{ticket_id} is back in the queue."
        )

    async def _resolve(
        self, request: web.Request, me: StaffSession, ticket_id: int, form: Any, page: str
    ) -> web.StreamResponse:
        now = self.shop.now()

        def work(session: Session) -> str:
            ticket = support.resolve(session, ticket_id, me.staff, now)
            ask_csat(session, ticket, now)
            support.audit(session, me.staff, "ticket_resolve", ticket_id, now=now)
            return ticket.conversation_id

        conversation_id = await self.shop.transaction(work)
        await self.router.outbox.flush(conversation_id)
        # Handing back tells Rasa: a fresh session, so no half-finished form resumes.
        with contextlib.suppress(RasaUnavailable, RuntimeError):
            await self.router.rasa.start_new_session(conversation_id)
        return self.done(
            request,
            f"{COOKIE_PATH}/queue",
            f"Ticket #{ticket_id} resolved; the bot asked for a rating.",
        )

    # --- media ------------------------------------------------------------------------------
    async def media_file(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        path = self.media.path_of(request.match_info["media_id"])
        if path is None or not path.is_file():
            raise web.HTTPNotFound(text="No such photo.")
        content_type = mimetypes.types_map.get(path.suffix.lower(), "application/octet-stream")
        return web.FileResponse(
            path,
            headers={
                "Content-Type": content_type,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, max-age=3600",
            },
        )

    # --- report -----------------------------------------------------------------------------
    async def report_page(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        days = 14
        now = self.shop.now()
        tickets = await self.shop.transaction(
            lambda s: support.tickets_since(s, now - timedelta(days=days + 1))
        )
        zone = business_hours(self.settings).zone
        report = build_report(tickets, now, zone, days)
        charts = {
            "per_day": bar_chart(
                "Tickets per day", [f"{d:%d %b}" for d in report.days], report.per_day
            ),
            "csat": bar_chart(
                "CSAT ratings", ["1", "2", "3", "4", "5"], report.csat_counts, width=360
            ),
            "reasons": hbar_chart("Escalation reasons", report.reasons),
        }
        await self.audit(me.staff, "report_view")
        return self.render(
            request, "report.html", me, title="Report", report=report, charts=charts, days=days
        )

    # --- canned responses -------------------------------------------------------------------
    async def canned_page(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        canned = await self.shop.transaction(support.list_canned)
        return self.render(request, "canned.html", me, title="Canned responses", canned=canned)

    async def canned_save(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        form = await _form(request)
        canned_id = str(form.get("id", ""))
        title, body = str(form.get("title", "")), str(form.get("body", ""))
        now = self.shop.now()
        page = f"{COOKIE_PATH}/canned"

        def work(session: Session) -> int:
            canned = support.save_canned(
                session, title, body, me.staff, int(canned_id) if canned_id.isdigit() else None, now
            )
            assert canned.id is not None
            support.audit(
                session,
                me.staff,
                "canned_save",
                details={"id": canned.id, "title": canned.title},
                now=now,
            )
            return canned.id

        try:
            saved = await self.shop.transaction(work)
        except SupportError as err:
            return self.refused(request, page, err, 400)
        return self.done(request, page, "Canned response saved.", id=saved)

    async def canned_delete(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        canned_id = int(request.match_info["canned_id"])
        now = self.shop.now()
        page = f"{COOKIE_PATH}/canned"

        def work(session: Session) -> None:
            canned = support.delete_canned(session, canned_id)
            support.audit(
                session,
                me.staff,
                "canned_delete",
                details={"id": canned_id, "title": canned.title},
                now=now,
            )

        try:
            await self.shop.transaction(work)
        except SupportError as err:
            return self.refused(request, page, err, 404)
        return self.done(request, page, "Canned response deleted.")

    # --- staff ------------------------------------------------------------------------------
    async def staff_page(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        staff = await self.shop.transaction(support.list_staff)
        return self.render(
            request,
            "staff.html",
            me,
            title="Staff",
            staff=staff,
            roles=[r.value for r in StaffRole],
        )

    async def staff_save(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        form = await _form(request)
        page = f"{COOKIE_PATH}/staff"
        now = self.shop.now()
        toggle = str(form.get("toggle", ""))

        def work(session: Session) -> str:
            if toggle.isdigit():
                if int(toggle) == me.staff.id:
                    raise SupportError("You cannot deactivate your own account.")
                user = session.get(StaffUser, int(toggle))
                if user is None:
                    raise SupportError("No such account.")
                support.set_staff_active(session, int(toggle), not user.active)
                support.audit(
                    session,
                    me.staff,
                    "staff_active",
                    details={"id": user.id, "email": user.email, "active": user.active},
                    now=now,
                )
                return f"{user.email} is now {'active' if user.active else 'deactivated'}."
            user = support.create_staff(
                session,
                str(form.get("email", "")),
                str(form.get("name", "")),
                str(form.get("role", "")),
                str(form.get("password", "")),
            )
            support.audit(
                session,
                me.staff,
                "staff_add",
                details={"id": user.id, "email": user.email, "role": user.role.value},
                now=now,
            )
            return f"Account {user.email} created."

        try:
            message = await self.shop.transaction(work)
        except SupportError as err:
            return self.refused(request, page, err, 400)
        return self.done(request, page, message)

    async def audit_page(self, request: web.Request, me: StaffSession) -> web.StreamResponse:
        entries = await self.shop.transaction(support.recent_audit)
        return self.render(
            request,
            "audit.html",
            me,
            title="Audit log",
            entries=entries,
            dumps=lambda d: json.dumps(d, sort_keys=True),
        )


async def _form(request: web.Request) -> Any:
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except json.JSONDecodeError:
            return {}
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return await request.post()


def _safe_next(target: str | None) -> str:
    """Only console paths: never an open redirect to another site."""
    if target and target.startswith(f"{COOKIE_PATH}/") and not target.startswith("//"):
        return target
    return f"{COOKIE_PATH}/queue"


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})
