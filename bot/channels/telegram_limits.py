"""A rate limiter for python-telegram-bot that pauses only the chat Telegram throttled.

PTB's `AIORateLimiter` answers a RetryAfter on any request by pausing *every* request of the
bot (measured in tests/test_telegram.py: another chat's reply waited the whole retry_after).
Telegram's flood control is per chat, so here a RetryAfter pauses that chat alone; other chats
keep flowing under the overall limit (30 messages per second) and the group limit (20 per minute
per group). A request for a chat paused longer than `max_wait_s` fails at once with RetryAfter,
so the outbox retries it later instead of holding a sender for minutes.

Campaign messages are bulk traffic: `admit_bulk()` lets one through only when no interactive
request is waiting and the overall budget has room, and takes its share of that budget; the
request then goes out with `rate_limit_args=ADMITTED_BULK` so it is not counted twice.
Interactive replies therefore keep priority while a campaign runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

Result = bool | dict[str, Any] | list[dict[str, Any]]
ADMITTED_BULK = -1  # rate_limit_args of a request that `admit_bulk` already let through
BULK_POLL_S = 0.005


def retry_after_seconds(error: RetryAfter) -> float:
    # PTB 22 stores a timedelta but its public attribute still warns about turning into one
    value: Any = getattr(error, "_retry_after", None)
    if not isinstance(value, timedelta):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class PerChatRateLimiter(BaseRateLimiter[int]):
    def __init__(
        self,
        overall_per_second: float = 30,
        group_per_minute: float = 20,
        max_retries: int = 2,
        max_wait_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._overall = AsyncLimiter(overall_per_second, 1)
        self._group_per_minute = group_per_minute
        self._groups: dict[str, AsyncLimiter] = {}
        self._paused_until: dict[str, float] = {}
        self.max_retries = max_retries
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._interactive_waiting = 0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def admit_bulk(self) -> None:
        """Wait until a bulk request may go: interactive requests first, overall budget kept."""
        while self._interactive_waiting or not self._overall.has_capacity():
            await asyncio.sleep(BULK_POLL_S)
        await self._overall.acquire()

    def paused_for(self, chat_id: int | str) -> float:
        """Seconds this chat still has to wait (0 when it may send)."""
        until = self._paused_until.get(str(chat_id), 0.0)
        return max(0.0, until - self._clock())

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Result:
        chat = data.get("chat_id")
        key = None if chat is None else str(chat)
        if rate_limit_args == ADMITTED_BULK:
            if key is not None and self.paused_for(key) > 0:
                raise RetryAfter(int(self.paused_for(key)) + 1)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                self._pause(key, retry_after_seconds(error) + 0.1)
                raise
        retries = self.max_retries if rate_limit_args is None else rate_limit_args
        for attempt in range(retries + 1):
            if key is not None:
                await self._wait_for(key)
            try:
                self._interactive_waiting += 1
                try:
                    await self._enter(key)
                finally:
                    self._interactive_waiting -= 1
                try:
                    return await callback(*args, **kwargs)
                finally:
                    await self._exit(key)
            except RetryAfter as error:
                delay = retry_after_seconds(error) + 0.1
                self._pause(key, delay)
                log.info("Telegram throttled %s (chat %s) for %.1fs", endpoint, key, delay)
                if attempt == retries:
                    raise
                if key is None:
                    await asyncio.sleep(delay)  # not tied to a chat: only this request waits
        raise AssertionError("unreachable")  # the loop returns or raises

    def _pause(self, key: str | None, delay: float) -> None:
        if key is not None:
            self._paused_until[key] = max(self._paused_until.get(key, 0.0), self._clock() + delay)

    async def _enter(self, key: str | None) -> None:
        await self._limits_for(key).__aenter__()

    async def _exit(self, key: str | None) -> None:
        await self._limits_for(key).__aexit__(None, None, None)

    async def _wait_for(self, key: str) -> None:
        remaining = self.paused_for(key)
        if remaining <= 0:
            self._paused_until.pop(key, None)
            return
        if remaining > self.max_wait_s:
            raise RetryAfter(int(remaining) + 1)
        await asyncio.sleep(remaining)

    def _limits_for(self, key: str | None) -> contextlib.AbstractAsyncContextManager[Any]:
        if key is not None and key.startswith("-"):  # groups, supergroups and channels
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = AsyncLimiter(self._group_per_minute, 60)
            return _Both(group, self._overall)
        if key is not None:
            return self._overall
        return contextlib.nullcontext()


class _Both:
    """Enter two limiters in order (group first, then the overall budget)."""

    def __init__(self, first: AsyncLimiter, second: AsyncLimiter) -> None:
        self.first, self.second = first, second

    async def __aenter__(self) -> None:
        await self.first.__aenter__()
        await self.second.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        await self.second.__aexit__(*exc)
        await self.first.__aexit__(*exc)
