"""Photos on the web: the widget's photo upload and the catalogue's product photos.

`POST /api/v1/sessions/{session}/photos` takes one photo — raw image bytes, or multipart/form-data
with a file part (any name) and optional `caption` and `message_id` fields; for raw bytes
`?caption=` and `?message_id=` — checks it (10 MB, a JPEG/PNG/GIF/WebP by its bytes, at most 40
megapixels), stores it content-addressed and routes a `/photo_search` turn carrying
`metadata["media"]` through the router. Answers like `POST /api/v1/chat` (the replies also reach
the widget's open sockets through the outbox). Errors are JSON: 413 too large, 415 not an image.

`GET /media/products/{id}` serves a product's photo (the `image_url` of product cards).
"""

from __future__ import annotations

import asyncio
import io
import logging
import warnings
from typing import TYPE_CHECKING

from aiohttp import BodyPartReader, StreamReader, web
from PIL import Image, UnidentifiedImageError

from bot.channels.base import InboundMessage
from bot.channels.web import CHANNEL, SESSION_RE, error_response
from bot.media import MediaRejected, MediaStore, image_extension
from bot.outbox import message_json
from bot.photo_index import resolve_image
from bot.router import Router
from bot.store.models import Product
from vision.imaging import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

PHOTO_SEARCH_PAYLOAD = "/photo_search"
PHOTO_TITLE = "📷 Photo"
MAX_CAPTION_CHARS = 500
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}


class PhotoRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def check_photo(data: bytes, max_bytes: int = MAX_IMAGE_BYTES) -> None:
    """Refuse what photo search could not use, from the bytes alone (headers, no decoding)."""
    if not data:
        raise PhotoRefused(400, "empty_photo", "The photo is empty: send the image bytes.")
    if len(data) > max_bytes:
        raise PhotoRefused(
            413, "photo_too_large", f"The photo is {len(data)} bytes; the limit is {max_bytes}."
        )
    if image_extension(data) is None:
        raise PhotoRefused(415, "not_an_image", "Send a photo as a JPEG, PNG, GIF or WebP file.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            width, height = Image.open(io.BytesIO(data)).size
    except Image.DecompressionBombError:
        raise PhotoRefused(
            413, "too_many_pixels", f"The photo has over {MAX_IMAGE_PIXELS} pixels."
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise PhotoRefused(
            415, "unsupported_image", "The photo is damaged or unreadable."
        ) from None
    if width * height > MAX_IMAGE_PIXELS:
        raise PhotoRefused(
            413,
            "too_many_pixels",
            f"The photo is {width}x{height} pixels; the limit is {MAX_IMAGE_PIXELS} pixels.",
        )


async def read_upload(request: web.Request, max_bytes: int) -> tuple[bytes, str | None, str | None]:
    """(photo bytes, caption, client message id) from a raw or multipart body."""
    if request.content_length is not None and request.content_length > max_bytes + 64 * 1024:
        raise PhotoRefused(413, "photo_too_large", f"The photo can be at most {max_bytes} bytes.")
    caption = request.query.get("caption")
    client_id = request.query.get("message_id")
    if not request.content_type.startswith("multipart/"):
        return await _read_limited(request.content, max_bytes), caption, client_id
    reader = await request.multipart()
    photo: bytes | None = None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.filename is None and part.name in ("caption", "message_id"):
            value = (await part.read_chunk(8 * 1024)).decode("utf-8", "replace")
            if part.name == "caption":
                caption = value
            else:
                client_id = value
        elif photo is None:
            photo = await _read_limited(part, max_bytes)
    if photo is None:
        raise PhotoRefused(400, "missing_photo", "The form has no file part with the photo.")
    return photo, caption, client_id


async def _read_limited(source: StreamReader | BodyPartReader, max_bytes: int) -> bytes:
    data = bytearray()
    while True:
        chunk = (
            await source.read_chunk(1 << 16)
            if isinstance(source, BodyPartReader)
            else await source.read(1 << 16)
        )
        if not chunk:
            return bytes(data)
        data.extend(chunk)
        if len(data) > max_bytes:
            raise PhotoRefused(
                413, "photo_too_large", f"The photo can be at most {max_bytes} bytes."
            )


class WebPhotos:
    """Mount with `WebPhotos(router, services).mount(app)`."""

    def __init__(self, router: Router, services: Services, max_bytes: int = MAX_IMAGE_BYTES):
        self.router = router
        self.services = services
        self.max_bytes = max_bytes
        settings = router.shop.settings
        self.media = MediaStore(settings.data_dir / "media", max_bytes)

    def mount(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/sessions/{session}/photos", self.upload)
        app.router.add_get("/media/products/{product_id}", self.product_photo)
        app.on_cleanup.append(self._close)

    async def _close(self, app: web.Application) -> None:
        await self.services.photo_search().close()

    async def upload(self, request: web.Request) -> web.Response:
        session = request.match_info["session"]
        if not SESSION_RE.match(session):
            return error_response(400, "invalid_session", "Malformed session id.")
        try:
            data, caption, client_id = await read_upload(request, self.max_bytes)
            caption = (caption or "").strip()
            if len(caption) > MAX_CAPTION_CHARS:
                raise PhotoRefused(
                    413, "caption_too_long", f"Captions can be at most {MAX_CAPTION_CHARS} chars."
                )
            if client_id is not None and not 1 <= len(client_id) <= 128:
                raise PhotoRefused(400, "invalid_message_id", "'message_id' must be 1-128 chars.")
            await asyncio.to_thread(check_photo, data, self.max_bytes)
            stored = await asyncio.to_thread(self.media.save_image, data)
        except PhotoRefused as refused:
            return error_response(refused.status, refused.code, refused.message)
        except MediaRejected as rejected:  # check_photo already refuses these
            return error_response(415, rejected.reason, str(rejected))
        inbound = InboundMessage(
            channel=CHANNEL,
            external_id=session,
            text=caption or None,
            payload=PHOTO_SEARCH_PAYLOAD,
            client_message_id=client_id,
            metadata={
                "media": stored.to_json(),
                "caption": caption,
                "title": caption or PHOTO_TITLE,
            },
        )
        turn = await self.router.handle(inbound)
        await self.router.outbox.flush(inbound.conversation_id)  # open widget sockets get it
        await self.router.outbox.mark_delivered(turn.replies)  # and this response carries it
        return web.json_response(
            {
                "session": session,
                "photo": stored.to_json(),
                "message_id": turn.inbound.id,
                "messages": [message_json(m) for m in turn.replies],
            },
            status=503 if turn.failed else 200,
            headers={"Retry-After": "30"} if turn.failed else None,
        )

    async def product_photo(self, request: web.Request) -> web.StreamResponse:
        try:
            product_id = int(request.match_info["product_id"])
        except ValueError:
            return error_response(404, "unknown_product", "No such product.")
        product = await self.router.shop.transaction(lambda s: s.get(Product, product_id))
        settings = self.router.shop.settings
        path = resolve_image(product.image_path if product else None, settings.data_dir)
        if path is None or not path.is_file():
            return error_response(404, "no_photo", "This product has no photo.")
        with path.open("rb") as handle:
            head = handle.read(16)
        kind = image_extension(head)
        if kind is None:
            return error_response(404, "no_photo", "This product's photo is not an image.")
        return web.FileResponse(
            path,
            headers={
                "Content-Type": CONTENT_TYPES[kind],
                "Cache-Control": "public, max-age=3600",
                "X-Content-Type-Options": "nosniff",
            },
        )
