"""HTTP client for the vision service: pooled aiohttp session, timeouts, retries on 503."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import aiohttp
import orjson

from vision.errors import ImageRejected, ImageTooLarge, ImageTooManyPixels, UnsupportedImage
from vision.values import Embedding

_REJECTIONS: dict[str, type[ImageRejected]] = {
    cls.code: cls for cls in (ImageTooLarge, ImageTooManyPixels, UnsupportedImage)
}


class VisionUnavailable(Exception):
    """The vision service cannot answer now (down, overloaded, timed out): offer text search."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _rejection(status: int, error: dict[str, Any]) -> ImageRejected:
    cls = _REJECTIONS.get(str(error.get("code")), ImageRejected)
    exc = cls(str(error.get("message", "image rejected")))
    exc.status = int(error.get("status", status))
    return exc


class VisionClient:
    """One per process; `async with VisionClient(url) as vision: await vision.embed(data)`.

    Retries connection errors and 503s (waiting Retry-After, capped by `max_retry_wait`) up to
    `retries` times, then raises VisionUnavailable. Images the service refuses raise the same
    typed ImageRejected errors the library does (413 ImageTooLarge/ImageTooManyPixels, 415
    UnsupportedImage).
    """

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 2.0,
        retries: int = 3,
        max_retry_wait: float = 5.0,
        pool_size: int = 32,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s)
        self._pool_size = pool_size
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> VisionClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    async def embed(self, image: bytes, labels: int = 0) -> Embedding:
        """One image's vector (and its top `labels` ImageNet classes)."""
        body = await self._post("/v1/embed", image, {"labels": labels}, "application/octet-stream")
        return Embedding.from_json(body)

    async def embed_batch(
        self, images: Sequence[bytes], labels: int = 0
    ) -> list[Embedding | ImageRejected]:
        """Several images in one request; a bad image comes back as its error, in place."""
        if not images:
            return []
        payload = {"images": [base64.b64encode(data).decode("ascii") for data in images]}
        body = await self._post("/v1/embed/batch", payload, {"labels": labels}, "application/json")
        model = str(body["model"])
        return [
            _rejection(int(item["error"].get("status", 400)), item["error"])
            if "error" in item
            else Embedding.from_json(item, model)
            for item in body["results"]
        ]

    async def ready(self) -> bool:
        """True when the model is loaded and warm; False when not (or unreachable)."""
        try:
            async with self._client().get(f"{self.base_url}/readyz") as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def _post(
        self, path: str, body: bytes | dict[str, Any], params: dict[str, int], content_type: str
    ) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        last = "no attempt"
        retry_after: float | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(min(self.max_retry_wait, retry_after or 0.2 * 2**attempt))
            try:
                kwargs: dict[str, Any] = (
                    {"json": body} if isinstance(body, dict) else
                    {"data": body, "headers": {"Content-Type": content_type}}
                )  # fmt: skip
                async with self._client().post(url, params=params, **kwargs) as response:
                    if response.status == 503:
                        retry_after = _retry_after(response.headers.get("Retry-After"))
                        last = f"503 from {url}"
                        continue
                    payload: dict[str, Any] = await response.json(
                        loads=orjson.loads, content_type=None
                    )
                    if response.status >= 400:
                        error = payload.get("error", {}) if isinstance(payload, dict) else {}
                        if response.status in (413, 415):
                            raise _rejection(response.status, error)
                        raise VisionUnavailable(
                            f"vision service answered {response.status}: {error.get('message')}"
                        )
                    return payload
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                retry_after = None
        raise VisionUnavailable(f"vision service unavailable ({last})", retry_after)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to backoff
