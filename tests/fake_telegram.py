"""A fake Telegram Bot API server on loopback that speaks the real JSON.

Serves `/bot<token>/<method>` and `/file/bot<token>/<path>` like api.telegram.org for the
methods the channel uses (getMe, getUpdates, setWebhook, deleteWebhook, sendMessage, sendPhoto,
sendMediaGroup, sendChatAction, answerCallbackQuery, getFile, file download). It enforces what
the real one does that matters here: getUpdates confirms updates below `offset`, two concurrent
getUpdates conflict (409), getUpdates while a webhook is set conflicts. Faults can be injected:
429 with retry_after, 5xx, 403 "bot was blocked by the user".

It runs in a thread with its own event loop, so synchronous tests drive it directly.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.live_stack import free_port

BOT_ID = 7000001


@dataclass
class Call:
    method: str
    chat_id: int | None
    params: dict[str, Any]
    at: float
    status: int


@dataclass
class Fault:
    method: str
    chat_id: int | None
    status: int
    times: int  # how many more calls fail
    until: float  # or: fail every call until this moment (monotonic)
    retry_after: int = 1


@dataclass
class BotState:
    updates: list[dict[str, Any]] = field(default_factory=list)
    confirmed_below: int = 0
    polling: int = 0  # getUpdates in flight
    conflicts: int = 0
    webhook_url: str = ""
    webhook_secret: str = ""
    calls: list[Call] = field(default_factory=list)
    calls_by_chat: dict[int, list[Call]] = field(default_factory=dict)  # the same, per chat


class FakeTelegram:
    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/bot"
        self.base_file_url = f"http://127.0.0.1:{self.port}/file/bot"
        self._bots: dict[str, BotState] = {}
        self._faults: list[Fault] = []
        self._files: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._recorded = threading.Condition(self._lock)
        self._ids = itertools.count(1)
        self._update_ids = itertools.count(100_001)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeTelegram:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _serve(self) -> None:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.*}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    # --- test side ------------------------------------------------------------------------
    def bot(self, token: str) -> BotState:
        with self._lock:
            return self._bots.setdefault(token, BotState())

    def push(self, token: str, update: dict[str, Any]) -> int:
        with self._lock:
            update_id = next(self._update_ids)
            self._bots.setdefault(token, BotState()).updates.append(
                {"update_id": update_id, **update}
            )
            return update_id

    def message(self, chat_id: int, text: str | None = None, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Ana"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ana", "language_code": "en"},
            **fields,
        }
        if text is not None:
            body["text"] = text
            if text.startswith("/"):
                command = text.split(" ", 1)[0]
                body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return body

    def send_text(self, token: str, chat_id: int, text: str) -> int:
        return self.push(token, {"message": self.message(chat_id, text)})

    def press(self, token: str, chat_id: int, bot_message: dict[str, Any], data: str) -> int:
        """The customer taps an inline button under `bot_message` (a message the bot sent)."""
        query = {
            "id": str(next(self._ids)),
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ana"},
            "chat_instance": "1",
            "message": bot_message,
            "data": data,
        }
        return self.push(token, {"callback_query": query})

    def add_file(self, data: bytes) -> str:
        file_id = f"file-{next(self._ids)}"
        with self._lock:
            self._files[file_id] = data
        return file_id

    def photo_sizes(self, largest: bytes) -> list[dict[str, Any]]:
        """Three sizes like Telegram sends; only the largest holds the real photo."""
        sizes = []
        for width, blob in ((90, b"thumb"), (320, b"small"), (1280, largest)):
            file_id = self.add_file(blob)
            sizes.append(
                {
                    "file_id": file_id,
                    "file_unique_id": "u" + file_id,
                    "width": width,
                    "height": width,
                    "file_size": len(blob),
                }
            )
        return sizes

    def fail(
        self,
        method: str,
        status: int,
        chat_id: int | None = None,
        times: int = 1,
        for_seconds: float = 0.0,
        retry_after: int = 1,
    ) -> None:
        until = time.monotonic() + for_seconds if for_seconds else 0.0
        with self._lock:
            self._faults.append(Fault(method, chat_id, status, times, until, retry_after))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def calls(
        self, token: str, method: str | None = None, chat_id: int | None = None
    ) -> list[Call]:
        with self._lock:
            state = self._bots.setdefault(token, BotState())
            calls = state.calls if chat_id is None else state.calls_by_chat.get(chat_id, [])
            return [c for c in calls if method is None or c.method == method]

    def chat_call_count(self, token: str, chat_id: int) -> int:
        """How many calls a chat has had so far: a position to pass to `next_call`."""
        with self._lock:
            return len(self._bots.setdefault(token, BotState()).calls_by_chat.get(chat_id, []))

    def next_call(
        self, token: str, chat_id: int, method: str, after: int, timeout: float
    ) -> Call | None:
        """The first `method` call to the chat at a position >= `after`, waiting for it up to
        `timeout` seconds. Looks only at new calls, so its cost does not grow with the history
        (benchmarks poll this while a campaign adds thousands of calls)."""
        deadline = time.monotonic() + timeout
        with self._recorded:
            while True:
                calls = self._bots.setdefault(token, BotState()).calls_by_chat.get(chat_id, [])
                for call in calls[after:]:
                    if call.method == method:
                        return call
                after = max(after, len(calls))
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._recorded.wait(left)

    def delivered_texts(self, token: str, chat_id: int) -> list[str]:
        """What the customer saw: texts and captions of accepted sends, in order."""
        texts = []
        for call in self.calls(token, chat_id=chat_id):
            if call.status != 200:
                continue
            if call.method == "sendMessage":
                texts.append(str(call.params.get("text")))
            elif call.method == "sendPhoto":
                texts.append(str(call.params.get("caption")))
        return texts

    def wait_for(
        self, check: Callable[[], Any], timeout: float = 30.0, what: str = "condition"
    ) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def post_webhook(self, token: str, update: dict[str, Any], secret: str | None) -> int:
        """Deliver an update to the registered webhook the way Telegram does."""
        url = self.bot(token).webhook_url
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        request = urllib.request.Request(
            url, data=json.dumps(update).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    # --- server side ----------------------------------------------------------------------
    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = value.file.read()
                    continue
                try:
                    params[key] = json.loads(value)
                except (ValueError, TypeError):
                    params[key] = value
        return params

    def _fault_for(self, method: str, chat_id: int | None) -> Fault | None:
        now = time.monotonic()
        for fault in self._faults:
            if fault.method != method or (fault.chat_id is not None and fault.chat_id != chat_id):
                continue
            if fault.until and now < fault.until:
                return fault
            if not fault.until and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    async def _api(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        params = await self._params(request)
        chat_id = _int(params.get("chat_id"))
        with self._lock:
            state = self._bots.setdefault(token, BotState())
            fault = self._fault_for(method, chat_id)
        if fault is not None:
            response = _error(fault)
            self._record(state, method, chat_id, params, response.status)
            return response
        if method == "getUpdates":
            response = await self._get_updates(state, params)
            self._record(state, method, chat_id, params, response.status)
            return response
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _json({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
        result = handler(state, token, chat_id, params)
        if isinstance(result, web.Response):
            self._record(state, method, chat_id, params, result.status)
            return result
        self._record(state, method, chat_id, params, 200)
        return _json({"ok": True, "result": result})

    def _record(
        self, state: BotState, method: str, chat_id: int | None, params: dict[str, Any], status: int
    ) -> None:
        call = Call(method, chat_id, params, time.monotonic(), status)
        with self._lock:
            state.calls.append(call)
            if chat_id is not None:
                state.calls_by_chat.setdefault(chat_id, []).append(call)
            self._recorded.notify_all()

    async def _get_updates(self, state: BotState, params: dict[str, Any]) -> web.Response:
        with self._lock:
            if state.webhook_url:
                return _conflict(
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first"
                )
            if state.polling:
                state.conflicts += 1
                return _conflict(
                    "Conflict: terminated by other getUpdates request; make sure that only "
                    "one bot instance is running"
                )
            state.polling += 1
            offset = _int(params.get("offset"))
            if offset:
                state.confirmed_below = max(state.confirmed_below, offset)
                state.updates = [u for u in state.updates if u["update_id"] >= offset]
        try:
            deadline = time.monotonic() + float(params.get("timeout") or 0)
            while True:
                with self._lock:
                    ready = list(state.updates[:100])
                if ready or time.monotonic() >= deadline:
                    break
                await asyncio.sleep(0.02)
            return _json({"ok": True, "result": ready})
        finally:
            with self._lock:
                state.polling -= 1

    def _bot_message(self, chat_id: int | None, **fields: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Ana"},
            "from": _me(),
            **fields,
        }

    def _m_getMe(self, state: BotState, token: str, chat_id: int | None, p: dict[str, Any]) -> Any:
        return _me()

    def _m_setWebhook(
        self, state: BotState, token: str, chat_id: int | None, p: dict[str, Any]
    ) -> Any:
        state.webhook_url = str(p.get("url", ""))
        state.webhook_secret = str(p.get("secret_token", ""))
        return True

    def _m_deleteWebhook(
        self, state: BotState, token: str, chat_id: int | None, p: dict[str, Any]
    ) -> Any:
        state.webhook_url = ""
        return True

    def _m_sendMessage(
        self, state: BotState, token: str, chat_id: int | None, p: dict[str, Any]
    ) -> Any:
        text = str(p.get("text", ""))
        if not text or len(text) > 4096:
            return _json({"ok": False, "error_code": 400, "description": "Bad Request: text"}, 400)
        extra = {"reply_markup": p["reply_markup"]} if p.get("reply_markup") else {}
        return self._bot_message(chat_id, text=text, **extra)

    def _m_sendPhoto(
        self, state: BotState, token: str, chat_id: int | None, p: dict[str, Any]
    ) -> Any:
        caption = str(p.get("caption", ""))
        if len(caption) > 1024:
            return _json(
                {"ok": False, "error_code": 400, "description": "Bad Request: caption"}, 400
            )
        extra = {"reply_markup": p["reply_markup"]} if p.get("reply_markup") else {}
        photo = [{"file_id": "sent", "file_unique_id": "s", "width": 1, "height": 1}]
        return self._bot_message(chat_id, photo=photo, caption=caption, **extra)

    def _m_sendMediaGroup(
        self, state: BotState, token: str, chat_id: int | None, p: dict[str, Any]
    ) -> Any:
        media = p.get("media") or []
        if not 2 <= len(media) <= 10:
            return _json({"ok": False, "error_code": 400, "description": "Bad Request: media"}, 400)
        photo = [{"file_id": "sent", "file_unique_id": "s", "width": 1, "height": 1}]
        return [self._bot_message(chat_id, photo=photo, caption=m.get("caption")) for m in media]

    def _m_sendChatAction(
        self, state: BotState, token: str, chat_id: int | None, p: dict[str, Any]
    ) -> Any:
        return True

    def _m_answerCallbackQuery(
        self, state: BotState, token: str, chat_id: int | None, p: dict[str, Any]
    ) -> Any:
        return True

    def _m_getFile(
        self, state: BotState, token: str, chat_id: int | None, p: dict[str, Any]
    ) -> Any:
        file_id = str(p.get("file_id"))
        with self._lock:
            data = self._files.get(file_id)
        if data is None:
            return _json(
                {"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"}, 400
            )
        return {
            "file_id": file_id,
            "file_unique_id": "u" + file_id,
            "file_size": len(data),
            "file_path": f"photos/{file_id}.jpg",
        }

    async def _download(self, request: web.Request) -> web.Response:
        name = request.match_info["path"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
        with self._lock:
            data = self._files.get(name)
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")


def _me() -> dict[str, Any]:
    return {
        "id": BOT_ID,
        "is_bot": True,
        "first_name": "Northwind Threads",
        "username": "northwind_threads_bot",
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _conflict(description: str) -> web.Response:
    return _json({"ok": False, "error_code": 409, "description": description}, 409)


def _error(fault: Fault) -> web.Response:
    if fault.status == 429:
        return _json(
            {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {fault.retry_after}",
                "parameters": {"retry_after": fault.retry_after},
            },
            429,
        )
    if fault.status == 403:
        return _json(
            {
                "ok": False,
                "error_code": 403,
                "description": "Forbidden: bot was blocked by the user",
            },
            403,
        )
    return _json(
        {"ok": False, "error_code": fault.status, "description": "Internal Server Error"},
        fault.status,
    )
