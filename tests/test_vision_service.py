"""The vision service's HTTP contract: embeddings, batching, every error code, overload, probes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from tests.vision_fixtures import drawn_pictures, drawn_tshirt, jpeg, png_header_only
from vision import ImageEmbedder, VisionClient, load_model
from vision.errors import UnsupportedImage
from vision.service import ServiceConfig, create_app, json_response
from vision.values import Embedding

pytestmark = pytest.mark.asyncio(loop_scope="session")

CONFIG = ServiceConfig(max_batch=8, max_wait_ms=5, max_queue=64)


class SlowEmbedder(ImageEmbedder):
    """The real model, with a pause before each forward pass (makes overload deterministic)."""

    def __init__(self, inner: ImageEmbedder, delay: float, gate: threading.Event | None = None):
        self.__dict__.update(inner.__dict__)
        self.delay = delay
        self.gate = gate

    def warm_up(self) -> None:
        if self.gate is not None:
            self.gate.wait(30)

    def embed_arrays(self, arrays: Sequence[np.ndarray], top_k: int = 0) -> list[Embedding]:
        time.sleep(self.delay)
        return super().embed_arrays(arrays, top_k)


MODEL = "efficientnet_lite0"  # the contract is the same for every model; Lite0 is the quickest


@pytest.fixture(scope="module")
def embedder() -> ImageEmbedder:
    return ImageEmbedder(load_model(MODEL))


async def start(config: ServiceConfig, embedder: ImageEmbedder, ready: bool = True) -> TestServer:
    server = TestServer(create_app(config, embedder), host="127.0.0.1")
    await server.start_server()
    if ready:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                async with http.get(server.make_url("/readyz")) as response:
                    if response.status == 200:
                        break
                await asyncio.sleep(0.05)
    return server


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(embedder: ImageEmbedder) -> AsyncIterator[str]:
    server = await start(CONFIG, embedder)
    yield str(server.make_url("")).rstrip("/")
    await server.close()


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_probes_and_metrics(service: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{service}/healthz") as r:
        assert r.status == 200
    async with http.get(f"{service}/readyz") as r:
        body = await r.json()
        assert r.status == 200 and body["dim"] == 1280 and body["device"] == "cpu"
    async with http.post(f"{service}/v1/embed", data=jpeg(drawn_tshirt())) as r:
        assert r.status == 200
    async with http.get(f"{service}/metrics") as r:
        text = await r.text()
    for name in ("vision_queue_depth", "vision_batch_size_bucket", "vision_request_seconds_bucket",
                 "vision_errors_total", "vision_images_total"):  # fmt: skip
        assert name in text


async def test_embed_raw_bytes_and_multipart(service: str, http: aiohttp.ClientSession) -> None:
    picture = jpeg(drawn_tshirt())
    async with http.post(f"{service}/v1/embed?labels=3", data=picture) as r:
        raw = await r.json()
    assert r.status == 200 and raw["dim"] == 1280 and len(raw["vector"]) == 1280
    assert raw["model"].startswith(MODEL)
    assert abs(np.linalg.norm(raw["vector"]) - 1) < 1e-4
    assert len(raw["labels"]) == 3 and raw["labels"][0]["name"] == "T-shirt"
    form = aiohttp.FormData()
    form.add_field("image", picture, filename="photo.jpg", content_type="image/jpeg")
    async with http.post(f"{service}/v1/embed", data=form) as r:
        multipart = await r.json()
    assert r.status == 200 and multipart["labels"] == []
    assert np.allclose(multipart["vector"], raw["vector"], atol=1e-6)


def test_vectors_read_back_as_the_same_float32() -> None:
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((50, 1280)).astype(np.float32)
    vectors[0, :4] = (1e-30, -1e-30, 0.0, 1.0)  # tiny, zero and round values too
    for vector in vectors:
        response = json_response(Embedding(vector, "m").to_json())
        assert response.content_type == "application/json"
        assert isinstance(response.body, bytes)
        body = Embedding.from_json(json.loads(response.body))
        assert np.array_equal(body.vector, vector) and body.model == "m"


async def test_batch_equals_one_by_one(service: str, http: aiohttp.ClientSession) -> None:
    pictures = [jpeg(p) for p in drawn_pictures(6)]
    singles = []
    for picture in pictures:
        async with http.post(f"{service}/v1/embed", data=picture) as r:
            singles.append(np.asarray((await r.json())["vector"]))
    form = aiohttp.FormData()
    for i, picture in enumerate(pictures):
        form.add_field("images", picture, filename=f"{i}.jpg", content_type="image/jpeg")
    async with http.post(f"{service}/v1/embed/batch", data=form) as r:
        batch = await r.json()
    assert r.status == 200 and batch["dim"] == 1280 and len(batch["results"]) == 6
    for single, item in zip(singles, batch["results"], strict=True):
        assert np.max(np.abs(single - np.asarray(item["vector"]))) < 1e-4
    async with VisionClient(service) as client:  # JSON/base64 flavour, through the client
        embs = await client.embed_batch(pictures)
    for single, emb in zip(singles, embs, strict=True):
        assert isinstance(emb, Embedding) and np.max(np.abs(single - emb.vector)) < 1e-4


async def test_batch_reports_bad_images_in_place(service: str) -> None:
    good = jpeg(drawn_tshirt())
    async with VisionClient(service) as client:
        results = await client.embed_batch([good, b"not an image", good])
        with pytest.raises(UnsupportedImage):
            await client.embed(b"not an image")
    assert isinstance(results[0], Embedding) and isinstance(results[2], Embedding)
    assert isinstance(results[1], UnsupportedImage) and results[1].status == 415


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"\xff\xd8" + b"\0" * (10 * 1024 * 1024), 413, "image_too_large"),
        (png_header_only(8000, 6000), 413, "image_too_many_pixels"),
        (b"hello, I am text", 415, "unsupported_image"),
        (b"", 415, "unsupported_image"),
        (jpeg(drawn_tshirt())[:200], 415, "unsupported_image"),
    ],
    ids=["over-10MB", "48-megapixels", "text", "empty", "truncated-jpeg"],
)
async def test_error_codes(
    service: str, http: aiohttp.ClientSession, body: bytes, status: int, code: str
) -> None:
    async with http.post(f"{service}/v1/embed", data=body) as r:
        error = (await r.json())["error"]
    assert r.status == status and error["code"] == code and error["message"]


async def test_overload_answers_503_with_retry_after(embedder: ImageEmbedder) -> None:
    config = replace(CONFIG, max_batch=1, max_queue=2, retry_after_s=2)
    server = await start(config, SlowEmbedder(embedder, delay=0.3))
    picture = jpeg(drawn_tshirt())
    try:
        async with aiohttp.ClientSession() as http:

            async def post() -> tuple[int, str | None]:
                async with http.post(server.make_url("/v1/embed"), data=picture) as r:
                    await r.read()
                    return r.status, r.headers.get("Retry-After")

            answers = await asyncio.gather(*(post() for _ in range(10)))
            async with http.get(server.make_url("/metrics")) as r:
                metrics = await r.text()
    finally:
        await server.close()
    statuses = sorted(status for status, _ in answers)
    assert statuses.count(200) >= 2 and statuses.count(503) >= 5, statuses
    assert all(after == "2" for status, after in answers if status == 503)
    assert 'vision_errors_total{code="overloaded"}' in metrics


async def test_concurrent_requests_share_batches(embedder: ImageEmbedder) -> None:
    server = await start(replace(CONFIG, max_batch=8), SlowEmbedder(embedder, delay=0.2))
    pictures = [jpeg(p) for p in drawn_pictures(8)]
    try:
        async with VisionClient(str(server.make_url(""))) as client:
            together = await asyncio.gather(*(client.embed(p) for p in pictures))
        async with aiohttp.ClientSession() as http, http.get(server.make_url("/metrics")) as r:
            metrics = await r.text()
    finally:
        await server.close()
    assert len(together) == 8
    batches = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("vision_batch_size_count")
    )
    assert batches < 8  # some forward passes carried several requests


async def test_not_ready_until_warm(embedder: ImageEmbedder) -> None:
    gate = threading.Event()
    server = await start(CONFIG, SlowEmbedder(embedder, 0, gate), ready=False)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.make_url("/readyz")) as r:
                assert r.status == 503
            async with http.post(server.make_url("/v1/embed"), data=jpeg(drawn_tshirt())) as r:
                assert r.status == 503 and r.headers["Retry-After"]
            gate.set()
            for _ in range(100):
                async with http.get(server.make_url("/readyz")) as r:
                    if r.status == 200:
                        break
                await asyncio.sleep(0.05)
            assert r.status == 200
    finally:
        gate.set()
        await server.close()


class ThreadRecordingEmbedder(ImageEmbedder):
    """The real model, noting which thread each torch call runs on."""

    def __init__(self, inner: ImageEmbedder) -> None:
        self.__dict__.update(inner.__dict__)
        self.threads: list[int] = []

    def warm_up(self) -> None:
        self.threads.append(threading.get_ident())
        super().warm_up()

    def embed_arrays(self, arrays: Sequence[np.ndarray], top_k: int = 0) -> list[Embedding]:
        self.threads.append(threading.get_ident())
        return super().embed_arrays(arrays, top_k)


async def test_every_torch_call_runs_on_one_thread(
    embedder: ImageEmbedder, http: aiohttp.ClientSession
) -> None:
    """Warm-up and every forward pass share one thread: OpenMP gives each calling thread its
    own worker team, and a second team on 2 cores made each forward 2x slower for good."""
    recording = ThreadRecordingEmbedder(embedder)
    server = await start(CONFIG, recording)
    try:
        url = str(server.make_url("/v1/embed"))
        pictures = [jpeg(p) for p in drawn_pictures(6)]

        async def post(data: bytes) -> int:
            async with http.post(url, data=data) as r:
                return r.status

        assert await asyncio.gather(*(post(p) for p in pictures)) == [200] * 6
    finally:
        await server.close()
    assert len(recording.threads) >= 2
    assert len(set(recording.threads)) == 1
    assert recording.threads[0] != threading.get_ident()  # not the event loop's thread
