"""A staff member using the support console over HTTP (cookies, CSRF), for the live tests."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

CSRF_ATTR = re.compile(r'data-csrf="([^"]*)"')
LOGIN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ConsoleUser:
    base_url: str
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)
    csrf: str = ""

    def __post_init__(self) -> None:
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        *,
        as_json: bool = True,
        csrf: str | None = None,
    ) -> Reply:
        data = urllib.parse.urlencode(form or {}).encode() if method == "POST" else None
        headers = {"Accept": "application/json" if as_json else "text/html"}
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            token = self.csrf if csrf is None else csrf
            if token:
                headers["X-CSRF-Token"] = token
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with self._opener.open(request, timeout=30) as response:
                return Reply(response.status, response.read(), dict(response.headers))
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.read(), dict(error.headers))

    def get(self, path: str, as_json: bool = False) -> Reply:
        return self.request("GET", path, as_json=as_json)

    def post(self, path: str, form: dict[str, str] | None = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, form, **kwargs)

    def login(self, email: str, password: str) -> Reply:
        page = self.get("/console/login")
        token = LOGIN_TOKEN.search(page.text)
        assert token, page.text[:500]
        answer = self.request(
            "POST",
            "/console/login",
            {"csrf_token": token.group(1), "email": email, "password": password, "next": ""},
            as_json=False,
            csrf="",
        )
        if answer.status == 303:
            self.refresh_csrf()
        return answer

    def refresh_csrf(self) -> None:
        page = self.get("/console/canned")
        found = CSRF_ATTR.search(page.text)
        if found is None:  # marketers cannot open the canned page
            found = CSRF_ATTR.search(self.get("/console/campaigns").text)
        self.csrf = found.group(1) if found else ""

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)
