"""Pictures for the vision tests: drawn ones (always available) and real photos from shared/."""

from __future__ import annotations

import csv
import io
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent

CLOTHING = ROOT.parent / "shared" / "datasets" / "clothing"


def jpeg(image: Image.Image, quality: int = 90, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, **params)
    return out.getvalue()


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def drawn_tshirt(colour: tuple[int, int, int] = (200, 30, 30), size: int = 224) -> Image.Image:
    """A flat T-shirt silhouette on white: the pretrained head calls it "T-shirt"."""
    image = Image.new("RGB", (224, 224), "white")
    outline = [(60, 30), (164, 30), (200, 70), (175, 90), (165, 80), (165, 200), (59, 200),
               (59, 80), (49, 90), (24, 70)]  # fmt: skip
    ImageDraw.Draw(image).polygon(outline, fill=colour)
    return image.resize((size, size)) if size != 224 else image


def drawn_pictures(n: int) -> list[Image.Image]:
    """`n` different drawings (colour and shape vary) for batch tests."""
    pictures = []
    for i in range(n):
        image = Image.new("RGB", (200 + 8 * i, 260 - 4 * i), (255 - 20 * i, 240, 230))
        draw = ImageDraw.Draw(image)
        draw.ellipse([10 + 3 * i, 20, 150, 180 + 2 * i], fill=(20 * i % 255, 90, 200 - 10 * i))
        draw.rectangle([30, 200 - 3 * i, 170, 240 - 4 * i], fill=(200, 30 + 15 * i, 30))
        pictures.append(image)
    return pictures


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but carries no pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def clothing_photos(label: str, n: int) -> list[Path]:
    """The first `n` photos with `label` in shared/datasets/clothing (sorted by file name)."""
    with (CLOTHING / "labels.csv").open(newline="", encoding="utf-8") as handle:
        names = sorted(row["image"] for row in csv.DictReader(handle) if row["label"] == label)
    return [CLOTHING / "images" / f"{name}.jpg" for name in names[:n]]
