"""The vision service: `python -m vision.service` (aiohttp), images in, vectors out.

Requests are decoded in a thread pool, queued, and embedded in dynamic micro-batches: the
batcher takes what is queued, and waits up to `max_wait_ms` for more only while other admitted
images are still being decoded, so a lone request pays no wait. At most `max_queue` images are
admitted at once; beyond that the answer is 503 with Retry-After.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiohttp import BodyPartReader, web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from vision.embedder import ImageEmbedder, pick_device
from vision.errors import ImageRejected, ImageTooLarge, UnsupportedImage
from vision.imaging import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, ImageLimits
from vision.launcher import reexec_with_malloc_tuning
from vision.models import DEFAULT_MODEL, MODEL_NAMES, load_model
from vision.values import Embedding

log = logging.getLogger("vision.service")

MAX_LABELS = 10


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Every knob of the service; `from_env` reads VISION_* variables, CLI flags override."""

    host: str = "127.0.0.1"
    port: int = 8090
    model: str = DEFAULT_MODEL
    clip_dir: Path | None = None
    device: str | None = None
    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_queue: int = 64
    max_batch_images: int = 64
    decode_threads: int = 2
    torch_threads: int | None = None
    retry_after_s: int = 1
    max_bytes: int = MAX_IMAGE_BYTES
    max_pixels: int = MAX_IMAGE_PIXELS

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServiceConfig:
        env = dict(os.environ) if env is None else env
        base = cls()
        converters: dict[str, Callable[[str], Any]] = {
            "host": str, "port": int, "model": str, "clip_dir": Path, "device": str,
            "max_batch": int, "max_wait_ms": float, "max_queue": int, "max_batch_images": int,
            "decode_threads": int, "torch_threads": int, "retry_after_s": int,
            "max_bytes": int, "max_pixels": int,
        }  # fmt: skip
        values = {
            name: convert(env[f"VISION_{name.upper()}"])
            for name, convert in converters.items()
            if env.get(f"VISION_{name.upper()}")
        }
        return replace(base, **values)


class Overloaded(Exception):
    """The queue is full (or the model is not ready): answer 503 with Retry-After."""


@dataclass(slots=True)
class _Pending:
    array: np.ndarray
    top_k: int
    future: asyncio.Future[Embedding]
    queued_at: float = field(default_factory=time.perf_counter)


class ServiceMetrics:
    """Prometheus metrics in a registry of their own (one per app, so tests can make many)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge("vision_queue_depth", "Images waiting for a batch", registry=r)
        self.in_flight = Gauge("vision_in_flight", "Images admitted, not yet answered", registry=r)
        self.batch_size = Histogram(
            "vision_batch_size", "Images per forward pass",
            buckets=(1, 2, 4, 8, 16, 32, 64), registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "vision_request_seconds", "Request latency", ["endpoint"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip
        self.forward = Histogram("vision_forward_seconds", "Forward pass time", registry=r)
        self.errors = Counter("vision_errors_total", "Refused requests", ["code"], registry=r)
        self.images = Counter("vision_images_total", "Images embedded", registry=r)


class MicroBatcher:
    """Collects prepared images from concurrent requests into batches for one model."""

    def __init__(
        self,
        embedder: ImageEmbedder,
        config: ServiceConfig,
        metrics: ServiceMetrics,
        torch_thread: ThreadPoolExecutor,
    ) -> None:
        self.embedder = embedder
        self.config = config
        self.metrics = metrics
        self._items: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._admitted = 0  # admitted images not answered yet
        self._decoding = 0  # admitted images not queued yet
        self._torch_thread = torch_thread
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="vision-batcher")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def admit(self, n: int) -> None:
        """Reserve room for `n` images or raise Overloaded; pair with `release(n)`."""
        if self._admitted + n > self.config.max_queue:
            raise Overloaded(f"{self._admitted} images in flight (limit {self.config.max_queue})")
        self._admitted += n
        self._decoding += n
        self.metrics.in_flight.set(self._admitted)

    def release(self, n: int) -> None:
        self._admitted -= n
        self.metrics.in_flight.set(self._admitted)

    def not_queued(self, n: int) -> None:
        """`n` admitted images will never be queued (their decoding failed)."""
        self._decoding -= n
        self._wakeup.set()

    def submit(self, array: np.ndarray, top_k: int) -> asyncio.Future[Embedding]:
        future: asyncio.Future[Embedding] = asyncio.get_running_loop().create_future()
        self._decoding -= 1
        self._items.append(_Pending(array, top_k, future))
        self.metrics.queue_depth.set(len(self._items))
        self._wakeup.set()
        return future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        max_batch = max(1, self.config.max_batch)
        while True:
            while not self._items:
                self._wakeup.clear()
                await self._wakeup.wait()
            deadline = loop.time() + self.config.max_wait_ms / 1000
            # Wait for more only while admitted images are still decoding: they will come.
            while len(self._items) < max_batch and self._decoding > 0:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
            batch = [self._items.popleft() for _ in range(min(max_batch, len(self._items)))]
            self.metrics.queue_depth.set(len(self._items))
            batch = [item for item in batch if not item.future.done()]  # client went away
            if not batch:
                continue
            top_k = max(item.top_k for item in batch)
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(
                    self._torch_thread, self.embedder.embed_arrays, [i.array for i in batch], top_k
                )
            except Exception as exc:  # a failed forward fails its requests, not the service
                log.exception("forward pass failed")
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            self.metrics.forward.observe(time.perf_counter() - started)
            self.metrics.batch_size.observe(len(batch))
            self.metrics.images.inc(len(batch))
            for item, result in zip(batch, results, strict=True):
                if not item.future.done():
                    item.future.set_result(
                        Embedding(result.vector, result.model, result.labels[: item.top_k])
                    )


APP_STATE: web.AppKey[ServiceState] = web.AppKey("vision_state")


class ServiceState:
    """What the handlers share: config, model (once loaded), batcher, pools, metrics."""

    def __init__(self, config: ServiceConfig, embedder: ImageEmbedder | None) -> None:
        self.config = config
        self.metrics = ServiceMetrics()
        self.embedder = embedder
        self.batcher: MicroBatcher | None = None
        self.decode_pool = ThreadPoolExecutor(config.decode_threads, thread_name_prefix="decode")
        # Every torch call (load, warm-up, forward) runs on this one thread. OpenMP (libgomp)
        # gives each thread that enters a parallel region its own worker team; a second team
        # means more OpenMP threads than cores, and libgomp then stops spinning between
        # operators: a Lite0 forward at batch 1 measured 22-24 ms instead of 10 ms, for good.
        # `torch.set_num_threads` is per thread under OpenMP as well.
        self.torch_thread = ThreadPoolExecutor(1, thread_name_prefix="vision-torch")
        self.ready = False
        self.load_error: str | None = None

    async def load(self) -> None:
        """Load (unless injected) and warm the model without blocking the event loop."""
        loop = asyncio.get_running_loop()
        try:
            if self.embedder is None:
                self.embedder = await loop.run_in_executor(self.torch_thread, self._build)
            await loop.run_in_executor(self.torch_thread, self.embedder.warm_up)
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.exception("model failed to load")
            return
        self.batcher = MicroBatcher(self.embedder, self.config, self.metrics, self.torch_thread)
        self.batcher.start()
        self.ready = True
        log.info(
            "vision ready: model %s dim %d on %s, max batch %d",
            self.embedder.model_id, self.embedder.dim, self.embedder.device, self.config.max_batch,
        )  # fmt: skip

    def _build(self) -> ImageEmbedder:
        if self.config.torch_threads:
            import torch

            torch.set_num_threads(self.config.torch_threads)
        limits = ImageLimits(self.config.max_bytes, self.config.max_pixels)
        model = load_model(self.config.model, self.config.clip_dir)
        return ImageEmbedder(model, pick_device(self.config.device), limits)

    async def embed(self, images: list[bytes], top_k: int) -> list[Embedding | ImageRejected]:
        """Admit, decode in the pool, queue for a batch; per-image errors come back as values."""
        if not self.ready or self.batcher is None or self.embedder is None:
            raise Overloaded("model is loading")
        batcher, embedder = self.batcher, self.embedder
        batcher.admit(len(images))
        loop = asyncio.get_running_loop()
        try:

            async def one(data: bytes) -> Embedding | ImageRejected:
                try:
                    array = await loop.run_in_executor(self.decode_pool, embedder.prepare, data)
                except ImageRejected as exc:
                    batcher.not_queued(1)
                    return exc
                except BaseException:
                    batcher.not_queued(1)
                    raise
                return await batcher.submit(array, top_k)

            return list(await asyncio.gather(*(one(d) for d in images)))
        finally:
            batcher.release(len(images))


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response; numpy vectors are written as float32 (see `Embedding.to_json`)."""
    return web.Response(
        body=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response({"error": {"code": code, "message": message}}, status, headers)


def _top_k(request: web.Request) -> int:
    raw = request.query.get("labels", "0")
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(reason="labels must be an integer") from None
    return max(0, min(MAX_LABELS, value))


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ImageTooLarge(f"body is {request.content_length} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise ImageTooLarge(f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_images(request: web.Request, config: ServiceConfig, many: bool) -> list[bytes]:
    """Raw bytes, multipart/form-data (file parts), or JSON {"images": [base64, ...]}."""
    per_image = config.max_bytes
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        images: list[bytes] = []
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):  # nested multipart: not an image
                continue
            data = bytearray()
            while chunk := await part.read_chunk(1 << 16):
                data.extend(chunk)
                if len(data) > per_image:
                    raise ImageTooLarge(f"image is over the limit of {per_image} bytes")
            images.append(bytes(data))
            if not many:
                break
            if len(images) > config.max_batch_images:
                raise ImageTooLarge(f"at most {config.max_batch_images} images per request")
        if not images:
            raise UnsupportedImage("no image part in the multipart body")
        return images
    if many:
        if request.content_type != "application/json":
            raise UnsupportedImage('send multipart/form-data or JSON {"images": [base64, ...]}')
        body = await _read_body(request, per_image * 2 * config.max_batch_images)
        try:
            import json

            encoded = json.loads(body)["images"]
            if not isinstance(encoded, list):
                raise TypeError("images must be a list")
            images = [base64.b64decode(item, validate=True) for item in encoded]
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise web.HTTPBadRequest(reason=f"bad JSON body: {exc}") from None
        if len(images) > config.max_batch_images:
            raise ImageTooLarge(f"at most {config.max_batch_images} images per request")
        return images
    return [await _read_body(request, per_image)]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[APP_STATE]
    endpoint = (
        request.match_info.route.resource.canonical if request.match_info.route.resource else "?"
    )
    started = time.perf_counter()
    try:
        return await handler(request)
    except ImageRejected as exc:
        state.metrics.errors.labels(exc.code).inc()
        return _error(exc.status, exc.code, exc.message)
    except Overloaded as exc:
        state.metrics.errors.labels("overloaded").inc()
        retry = str(state.config.retry_after_s)
        return _error(503, "overloaded", str(exc), {"Retry-After": retry})
    except web.HTTPException as exc:
        if exc.status >= 400:
            state.metrics.errors.labels(f"http_{exc.status}").inc()
            return _error(exc.status, f"http_{exc.status}", exc.reason)
        raise
    finally:
        if endpoint.startswith("/v1/"):
            state.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)


async def handle_embed(request: web.Request) -> web.Response:
    state = request.app[APP_STATE]
    top_k = _top_k(request)
    images = await _read_images(request, state.config, many=False)
    (result,) = await state.embed(images, top_k)
    if isinstance(result, ImageRejected):
        raise result
    return json_response(result.to_json())


async def handle_embed_batch(request: web.Request) -> web.Response:
    state = request.app[APP_STATE]
    top_k = _top_k(request)
    images = await _read_images(request, state.config, many=True)
    results = await state.embed(images, top_k)
    out: list[dict[str, object]] = []
    for result in results:
        if isinstance(result, ImageRejected):
            state.metrics.errors.labels(result.code).inc()
            out.append(
                {"error": {"code": result.code, "status": result.status, "message": result.message}}
            )
        else:
            body = result.to_json()
            out.append({"vector": body["vector"], "labels": body["labels"]})
    assert state.embedder is not None
    return json_response(
        {"model": state.embedder.model_id, "dim": state.embedder.dim, "results": out}
    )


async def handle_health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def handle_ready(request: web.Request) -> web.Response:
    state = request.app[APP_STATE]
    if not state.ready or state.embedder is None:
        body = {
            "status": "loading" if state.load_error is None else "failed",
            "error": state.load_error,
        }
        return json_response(body, 503, {"Retry-After": "1"})
    return json_response(
        {
            "status": "ready",
            "model": state.embedder.model_id,
            "dim": state.embedder.dim,
            "device": str(state.embedder.device),
            "max_batch": state.config.max_batch,
        }
    )


async def handle_metrics(request: web.Request) -> web.Response:
    state = request.app[APP_STATE]
    body = generate_latest(state.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(config: ServiceConfig, embedder: ImageEmbedder | None = None) -> web.Application:
    """The aiohttp app; pass an already loaded `embedder` to share one model (tests)."""
    body_limit = config.max_bytes * 2 * max(1, config.max_batch_images) + 1024 * 1024
    app = web.Application(client_max_size=body_limit, middlewares=[_errors_as_json])
    state = ServiceState(config, embedder)
    app[APP_STATE] = state

    async def lifecycle(app: web.Application) -> Any:
        loader = asyncio.create_task(state.load())
        yield
        loader.cancel()
        await asyncio.gather(loader, return_exceptions=True)
        if state.batcher:
            await state.batcher.stop()
        state.decode_pool.shutdown(wait=False, cancel_futures=True)
        state.torch_thread.shutdown(wait=True, cancel_futures=True)

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/v1/embed", handle_embed)
    app.router.add_post("/v1/embed/batch", handle_embed_batch)
    app.router.add_get("/healthz", handle_health)
    app.router.add_get("/readyz", handle_ready)
    app.router.add_get("/metrics", handle_metrics)
    return app


def parse_args(argv: list[str], base: ServiceConfig) -> ServiceConfig:
    parser = argparse.ArgumentParser(prog="python -m vision.service", description=__doc__)
    parser.add_argument("--host", default=base.host)
    parser.add_argument("--port", type=int, default=base.port)
    parser.add_argument("--model", default=base.model, choices=MODEL_NAMES)
    parser.add_argument("--clip-dir", type=Path, default=base.clip_dir)
    parser.add_argument("--device", default=base.device, help="cpu, cuda, cuda:1 (default: auto)")
    parser.add_argument("--max-batch", type=int, default=base.max_batch)
    parser.add_argument("--max-wait-ms", type=float, default=base.max_wait_ms)
    parser.add_argument("--max-queue", type=int, default=base.max_queue)
    parser.add_argument("--decode-threads", type=int, default=base.decode_threads)
    parser.add_argument("--torch-threads", type=int, default=base.torch_threads)
    args = parser.parse_args(argv)
    return replace(
        base,
        host=args.host, port=args.port, model=args.model, clip_dir=args.clip_dir,
        device=args.device, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue, decode_threads=args.decode_threads,
        torch_threads=args.torch_threads,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    reexec_with_malloc_tuning(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s vision %(levelname)s %(message)s")
    config = parse_args(argv, ServiceConfig.from_env())
    web.run_app(create_app(config), host=config.host, port=config.port, print=None)


if __name__ == "__main__":
    main()
