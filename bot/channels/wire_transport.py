"""An httpx transport that tells a campaign send's journal the moment its request goes out.

The wire journal (`campaigns.wire_journal`) needs a `wire` line no earlier than the request can
reach the peer, and with nothing that can stop it in between: a kill -9 after the line but
before the bytes are in the kernel loses the message (the restarted sender takes the row as
possibly sent and does not resend it). Announcing in PTB's `do_request` left building the
request, taking a pooled connection and two socket writes (header block, then body) in that
window, each with event-loop turns, and kills landed there about once in twenty.

Here the announcement sits in the network stream itself: while a campaign send is in progress
(`channels.base.before_wire` set in its task), a request's header block is held until its body
is complete, then `announce_wire()` runs and the whole request goes to the socket in one write.
Between the two there is no await that can yield before the bytes reach the kernel (anyio hands
them to the transport first), and from then on a kill -9 still delivers them. A request with no
Content-Length (chunked) is announced before its first byte instead: a kill then leaves it
uncertain, never sent twice. Requests outside a campaign send pass straight through.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpcore
import httpx

from .base import announce_wire, before_wire

HEADER_END = b"\r\n\r\n"


def content_length(head: bytes) -> int | None:
    """The Content-Length of an HTTP/1.1 header block, or None (none, or not a header block)."""
    end = head.find(HEADER_END)
    if end < 0:
        return None
    for line in head[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


class WireAnnouncingStream(httpcore.AsyncNetworkStream):
    """One connection's stream: holds a campaign request until it can leave in one write."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._held = bytearray()
        self._body_left = 0

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not self._held:
            if not buffer or before_wire.get() is None:
                await self._inner.write(buffer, timeout)
                return
            length = content_length(buffer)
            if length is None:  # chunked or unknown framing: announce before anything goes
                announce_wire()
                await self._inner.write(buffer, timeout)
                return
            self._body_left = length - (len(buffer) - buffer.find(HEADER_END) - len(HEADER_END))
        else:
            self._body_left -= len(buffer)
        self._held += buffer
        if self._body_left > 0:
            return  # the rest of the body is on its way from httpcore
        request, self._held = bytes(self._held), bytearray()
        announce_wire()  # raises when it cannot be noted: then nothing is sent
        await self._inner.write(request, timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def aclose(self) -> None:
        self._held = bytearray()
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        tls = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return WireAnnouncingStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class WireAnnouncingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's asyncio backend (anyio), every stream wrapped in a `WireAnnouncingStream`."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return WireAnnouncingStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(path, timeout, socket_options)
        return WireAnnouncingStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def wire_announcing_transport(max_connections: int) -> httpx.AsyncHTTPTransport:
    """httpx's own HTTP/1.1 transport over the announcing backend (TLS verified as usual).

    httpx does not take a network backend as a parameter, so its connection pool is replaced
    by an identical one that has it (tests/test_wire_transport.py checks the result).
    """
    transport = httpx.AsyncHTTPTransport()  # its own pool is replaced: the limits live below
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=max_connections,
        keepalive_expiry=5.0,  # httpx's default
        http1=True,
        http2=False,
        network_backend=WireAnnouncingBackend(),
    )
    return transport
