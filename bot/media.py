"""Customer photos on disk, content-addressed: `DATA_DIR/media/ab/cd/<sha256>.<ext>`.

The type comes from the bytes (magic numbers), never from the file name or the declared MIME
type; the same photo sent twice is stored once. Production swaps this for an S3-compatible store
behind the same two methods.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

IMAGE_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"GIF87a", 0, "gif"),
    (b"GIF89a", 0, "gif"),
    (b"WEBP", 8, "webp"),  # after "RIFF" + 4 size bytes
)


class MediaRejected(Exception):
    """The upload is not a photo we accept; `reason` is `too_large`, `empty` or `not_an_image`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class StoredMedia:
    id: str  # sha256 hex of the content
    extension: str
    size: int
    path: Path

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "type": self.extension, "size": self.size}


def image_extension(data: bytes) -> str | None:
    for signature, offset, extension in IMAGE_SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            if extension == "webp" and data[:4] != b"RIFF":
                continue
            return extension
    return None


class MediaStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def check_size(self, size: int | None) -> None:
        """Refuse before downloading when the sender already told us the size."""
        if size is not None and size > self.max_bytes:
            raise MediaRejected("too_large", f"{size} bytes is over the {self.max_bytes} limit")

    def save_image(self, data: bytes) -> StoredMedia:
        if not data:
            raise MediaRejected("empty", "no bytes")
        self.check_size(len(data))
        extension = image_extension(data)
        if extension is None:
            raise MediaRejected("not_an_image", "not a JPEG, PNG, GIF or WebP image")
        digest = hashlib.sha256(data).hexdigest()
        path = self.root / digest[:2] / digest[2:4] / f"{digest}.{extension}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path)  # atomic: readers never see half a file
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return StoredMedia(digest, extension, len(data), path)

    def path_of(self, media_id: str) -> Path | None:
        if len(media_id) != 64 or not all(c in "0123456789abcdef" for c in media_id):
            return None
        folder = self.root / media_id[:2] / media_id[2:4]
        return next(iter(folder.glob(f"{media_id}.*")), None)
