"""VisionClient: retries 503 honouring Retry-After, typed errors, VisionUnavailable when down."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from vision import ImageTooLarge, VisionClient, VisionUnavailable

pytestmark = pytest.mark.asyncio(loop_scope="session")

VECTOR = (np.ones(4, dtype=np.float32) / 2).tolist()


class FlakyService:
    """Answers 503 (Retry-After: 1) `busy` times, then a fixed embedding."""

    def __init__(self, busy: int) -> None:
        self.busy = busy
        self.calls: list[float] = []

    async def embed(self, request: web.Request) -> web.Response:
        await request.read()
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.busy:
            error = {"error": {"code": "overloaded", "message": "queue full"}}
            return web.json_response(error, status=503, headers={"Retry-After": "1"})
        return web.json_response({"model": "fake", "dim": 4, "vector": VECTOR, "labels": []})

    async def too_large(self, request: web.Request) -> web.Response:
        error = {"error": {"code": "image_too_large", "message": "over 10 MB"}}
        return web.json_response(error, status=413)


async def serve(handler: FlakyService) -> TestServer:
    app = web.Application()
    app.router.add_post("/v1/embed", handler.embed)
    app.router.add_post("/v1/embed/batch", handler.too_large)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest_asyncio.fixture(loop_scope="session")
async def flaky() -> AsyncIterator[tuple[FlakyService, str]]:
    handler = FlakyService(busy=1)
    server = await serve(handler)
    yield handler, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_retries_503_after_retry_after(flaky: tuple[FlakyService, str]) -> None:
    handler, url = flaky
    async with VisionClient(url, retries=2) as client:
        emb = await client.embed(b"jpeg bytes")
    assert emb.model == "fake" and emb.dim == 4 and emb.vector.dtype == np.float32
    assert len(handler.calls) == 2
    assert handler.calls[1] - handler.calls[0] >= 0.95  # waited the Retry-After second


async def test_gives_up_with_vision_unavailable(flaky: tuple[FlakyService, str]) -> None:
    handler, url = flaky
    handler.busy = 100
    async with VisionClient(url, retries=1, max_retry_wait=0.1) as client:
        with pytest.raises(VisionUnavailable):
            await client.embed(b"jpeg bytes")
    assert len(handler.calls) == 2


async def test_rejected_image_is_a_typed_error(flaky: tuple[FlakyService, str]) -> None:
    _, url = flaky
    async with VisionClient(url) as client:
        with pytest.raises(ImageTooLarge) as error:
            await client.embed_batch([b"x"])
    assert error.value.status == 413


async def test_service_down_is_vision_unavailable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with VisionClient(f"http://127.0.0.1:{port}", retries=1, max_retry_wait=0.05) as client:
        assert not await client.ready()
        with pytest.raises(VisionUnavailable):
            await client.embed(b"jpeg bytes")
