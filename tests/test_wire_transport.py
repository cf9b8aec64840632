"""The announcing transport: a campaign request is announced once, right before it leaves in
one write; everything else passes straight through."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpcore
import httpx
import pytest
from aiohttp import web

from bot.channels.base import before_wire
from bot.channels.wire_transport import (
    WireAnnouncingStream,
    content_length,
    wire_announcing_transport,
)


class RecordingStream(httpcore.AsyncNetworkStream):
    """Stands in for the socket: keeps each write, in order, in a log shared with the hook."""

    def __init__(self, log: list[object]) -> None:
        self.log = log

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:
            self.log.append(bytes(buffer))


def hook_into(log: list[object]) -> Callable[[], None]:
    return lambda: log.append("announced")


HEAD = b"POST /bot1/sendMessage HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"


def test_content_length_is_read_from_a_whole_header_block_only() -> None:
    assert content_length(HEAD) == 10
    assert content_length(b"POST / HTTP/1.1\r\ncontent-length:  7 \r\n\r\n") == 7
    assert content_length(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") is None
    assert content_length(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n") is None  # not ended
    assert content_length(b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n") is None


def test_a_campaign_request_is_announced_then_sent_in_one_write() -> None:
    log: list[object] = []
    stream = WireAnnouncingStream(RecordingStream(log))

    async def send() -> None:
        before_wire.set(hook_into(log))
        await stream.write(HEAD)
        await stream.write(b"text=")
        assert log == []  # nothing leaves, nothing is announced, before the body is complete
        await stream.write(b"hello")
        await stream.write(b"")  # h11's end of message for a Content-Length body

    asyncio.run(send())
    assert log == ["announced", HEAD + b"text=hello"]


def test_requests_outside_a_campaign_send_pass_straight_through() -> None:
    log: list[object] = []
    stream = WireAnnouncingStream(RecordingStream(log))

    async def send() -> None:
        await stream.write(HEAD)
        await stream.write(b"text=hello")

    asyncio.run(send())
    assert log == [HEAD, b"text=hello"]


def test_a_request_without_content_length_is_announced_before_its_first_byte() -> None:
    log: list[object] = []
    stream = WireAnnouncingStream(RecordingStream(log))
    head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"

    async def send() -> None:
        before_wire.set(hook_into(log))
        await stream.write(head)

    asyncio.run(send())
    assert log == ["announced", head]


def test_when_the_announcement_fails_nothing_is_sent() -> None:
    log: list[object] = []
    stream = WireAnnouncingStream(RecordingStream(log))

    def broken() -> None:
        raise OSError("disk full")

    async def send() -> None:
        before_wire.set(broken)
        await stream.write(HEAD)
        with pytest.raises(OSError, match="disk full"):
            await stream.write(b"text=hello")

    asyncio.run(send())
    assert log == []


def test_over_a_real_socket_each_campaign_request_is_announced_once_and_arrives_whole() -> None:
    received: list[bytes] = []
    announced: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({"ok": True})

    async def me(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def run() -> None:
        app = web.Application()
        app.router.add_post("/send", handler)
        app.router.add_get("/me", me)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with httpx.AsyncClient(transport=wire_announcing_transport(4)) as client:
                base = f"http://127.0.0.1:{port}"
                assert (await client.get(f"{base}/me")).status_code == 200
                assert announced == []  # no campaign send in progress: nothing to announce

                async def campaign_send(n: int) -> None:
                    before_wire.set(lambda: announced.append(len(received)))
                    body = bytes([n]) * 200_000  # larger than one socket buffer
                    response = await client.post(f"{base}/send", content=body)
                    assert response.status_code == 200

                await asyncio.gather(*(campaign_send(n) for n in range(3)))
        finally:
            await runner.cleanup()

    asyncio.run(run())
    assert len(announced) == 3
    assert sorted(len(body) for body in received) == [200_000] * 3
    assert all(len(set(body)) == 1 for body in received)  # no request mixed into another
