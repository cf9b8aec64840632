"""Console sign-in: signed session cookies, idle expiry, CSRF tokens and role checks.

The session cookie holds the staff id and a CSRF token, signed with SECRET_KEY (itsdangerous);
its timestamp is renewed with every request, so a session expires after
CONSOLE_IDLE_MINUTES without activity. The account is re-read on every request: a deactivated
account or a changed role takes effect at once. Every state-changing request must echo the CSRF
token (form field `csrf_token` or header `X-CSRF-Token`); cookies are SameSite=Strict too.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer

from bot.settings import Settings
from bot.shop import Shop
from bot.store import support
from bot.store.support import StaffRole, StaffUser

SESSION_COOKIE = "nw_console"
LOGIN_COOKIE = "nw_console_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
COOKIE_PATH = "/console"
LOGIN_FORM_MAX_AGE_S = 3600

STAFF_SESSION_KEY = "console_staff_session"


def load_secret_key(settings: Settings) -> str:
    """SECRET_KEY, or a random key generated once and kept in DATA_DIR/secret_key (0600)."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


@dataclass(frozen=True)
class StaffSession:
    staff: StaffUser
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.staff.role == StaffRole.admin


Handler = Callable[[web.Request, StaffSession], Awaitable[web.StreamResponse]]


class ConsoleAuth:
    def __init__(self, shop: Shop, secret: str, idle_minutes: int, secure_cookies: bool) -> None:
        self.shop = shop
        self.idle_s = max(60, idle_minutes * 60)
        self.secure = secure_cookies
        self._sessions = URLSafeTimedSerializer(secret, salt="console-session")
        self._login = URLSafeTimedSerializer(secret, salt="console-login-form")

    # --- cookies ----------------------------------------------------------------------------
    def _set_cookie(
        self, response: web.StreamResponse, name: str, value: str, max_age: int
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Strict",
            secure=self.secure,
        )

    def start_session(self, response: web.StreamResponse, staff: StaffUser) -> None:
        token = self._sessions.dumps({"sid": staff.id, "csrf": secrets.token_urlsafe(24)})
        self._set_cookie(response, SESSION_COOKIE, token, self.idle_s)
        response.del_cookie(LOGIN_COOKIE, path=COOKIE_PATH)

    def end_session(self, response: web.StreamResponse) -> None:
        response.del_cookie(SESSION_COOKIE, path=COOKIE_PATH)

    def renew(self, request: web.Request, response: web.StreamResponse) -> None:
        """Slide the idle expiry forward (called after every authenticated request)."""
        session: StaffSession | None = request.get(STAFF_SESSION_KEY)
        if session is None or response.prepared:
            return
        if any(c.key == SESSION_COOKIE for c in response.cookies.values()):
            return  # the handler set or deleted it itself
        token = self._sessions.dumps({"sid": session.staff.id, "csrf": session.csrf})
        self._set_cookie(response, SESSION_COOKIE, token, self.idle_s)

    async def current(self, request: web.Request) -> StaffSession | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data: Any = self._sessions.loads(raw, max_age=self.idle_s)
        except BadSignature:  # includes SignatureExpired: idle too long
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sid"), int):
            return None
        staff_id = int(data["sid"])
        staff = await self.shop.transaction(lambda s: support.get_staff(s, staff_id))
        if staff is None or not staff.active:
            return None
        return StaffSession(staff, str(data.get("csrf", "")))

    # --- the login form's own CSRF token (there is no session yet) --------------------------
    def login_token(self, request: web.Request, response: web.StreamResponse) -> str:
        raw = request.cookies.get(LOGIN_COOKIE, "")
        try:
            token = str(self._login.loads(raw, max_age=LOGIN_FORM_MAX_AGE_S)) if raw else ""
        except BadSignature:
            token = ""
        if not token:
            token = secrets.token_urlsafe(24)
            self._set_cookie(response, LOGIN_COOKIE, self._login.dumps(token), LOGIN_FORM_MAX_AGE_S)
        return token

    def login_token_ok(self, request: web.Request, given: str) -> bool:
        raw = request.cookies.get(LOGIN_COOKIE, "")
        try:
            expected = str(self._login.loads(raw, max_age=LOGIN_FORM_MAX_AGE_S)) if raw else ""
        except BadSignature:
            return False
        return bool(expected) and hmac.compare_digest(expected.encode(), given.encode())

    # --- route guard ------------------------------------------------------------------------
    def guard(self, roles: frozenset[StaffRole], handler: Handler) -> Callable[..., Any]:
        """Refuse anonymous (login redirect or 401) and wrong-role (403) requests, and
        state-changing requests without the session's CSRF token (403)."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            session = await self.current(request)
            if session is None:
                if request.method == "GET" and not wants_json(request):
                    target = quote(request.path_qs, safe="")
                    raise web.HTTPSeeOther(f"{COOKIE_PATH}/login?next={target}")
                return error(request, 401, "not_signed_in", "Sign in to the console first.")
            if session.staff.role not in roles:
                return error(request, 403, "forbidden", "Your role may not open this page.")
            if request.method not in ("GET", "HEAD") and not await csrf_ok(request, session):
                return error(request, 403, "csrf", "The form expired; reload the page and retry.")
            request[STAFF_SESSION_KEY] = session
            return await handler(request, session)

        return guarded


async def csrf_ok(request: web.Request, session: StaffSession) -> bool:
    given = request.headers.get(CSRF_HEADER, "")
    if not given and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        given = str((await request.post()).get(CSRF_FIELD, ""))
    return bool(session.csrf) and hmac.compare_digest(session.csrf.encode(), given.encode())


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "") or request.path.startswith(
        f"{COOKIE_PATH}/api/"
    )


def error(request: web.Request, status: int, code: str, message: str) -> web.Response:
    if wants_json(request) or request.method != "GET":
        return web.json_response({"error": {"code": code, "message": message}}, status=status)
    return web.Response(status=status, text=message, content_type="text/plain")
