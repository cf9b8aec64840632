"""Product photos for the demo shop, drawn here: each product's silhouette in its own colour.

Deterministic (the same product always gives the same JPEG bytes), so re-running `bot demo-data`
re-indexes nothing. The photos are written under DATA_DIR, never committed: a real shop imports
its own photos with `bot catalog import`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SIZE = 320
BACKGROUND = (244, 243, 240)

# Colour words of the demo catalogue (and common ones of imported catalogues) → RGB.
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (28, 28, 30), "white": (250, 250, 248), "ivory": (245, 240, 225),
    "ecru": (234, 226, 205), "cream": (240, 232, 210), "oatmeal": (214, 200, 176),
    "sand": (212, 192, 158), "stone": (190, 182, 166), "beige": (215, 198, 170),
    "camel": (190, 145, 95), "khaki": (176, 160, 112), "tan": (196, 154, 108),
    "cognac": (150, 80, 40), "brown": (105, 68, 42), "tobacco": (122, 82, 48),
    "rust": (176, 84, 44), "terracotta": (196, 98, 70), "red": (196, 36, 40),
    "burgundy": (110, 24, 40), "pink": (232, 150, 170), "lilac": (196, 170, 216),
    "purple": (110, 60, 140), "yellow": (242, 200, 40), "mustard": (214, 168, 40),
    "orange": (236, 128, 40), "champagne": (236, 216, 180), "green": (60, 130, 70),
    "sage": (150, 172, 140), "olive": (110, 110, 60), "forest": (40, 84, 52),
    "bottle": (30, 80, 56), "blue": (50, 100, 190), "navy": (30, 40, 80),
    "indigo": (40, 50, 100), "slate": (90, 110, 140), "grey": (140, 140, 140),
    "gray": (140, 140, 140), "charcoal": (64, 64, 68), "heather": (165, 165, 168),
    "melange": (150, 150, 152), "light blue": (160, 195, 230), "mid blue": (80, 120, 180),
    "light wash": (150, 180, 210), "stone wash": (120, 150, 185), "dark brown": (80, 52, 36),
}  # fmt: skip


def colour_rgb(colour: str) -> tuple[int, int, int]:
    """The RGB of a colour name such as "sage green" or "ecru and navy stripe"."""
    lowered = colour.lower()
    for phrase in sorted((p for p in PALETTE if " " in p), key=len, reverse=True):
        if phrase in lowered:
            return PALETTE[phrase]
    words = re.findall(r"[a-z]+", lowered)
    known = [w for w in words if w in PALETTE]
    # "sage green": the last colour word is the hue, the others only tint it.
    if not known:
        return (120, 120, 130)
    base = PALETTE[known[-1]]
    if len(known) > 1 and known[0] not in ("and",):
        tint = PALETTE[known[0]]
        return tuple((2 * b + t) // 3 for b, t in zip(base, tint, strict=True))  # type: ignore[return-value]
    return base


def _darker(rgb: tuple[int, int, int], amount: float = 0.65) -> tuple[int, int, int]:
    return (int(rgb[0] * amount), int(rgb[1] * amount), int(rgb[2] * amount))


def _accent(colour: str) -> tuple[int, int, int] | None:
    """The second colour of a pattern ("ecru and navy stripe" → navy)."""
    words = [w for w in re.findall(r"[a-z]+", colour.lower()) if w in PALETTE]
    return PALETTE[words[-1]] if len(words) > 1 else None


Shape = Sequence[tuple[float, float]]


def _scale(points: Shape) -> list[tuple[float, float]]:
    """Shapes are drawn on a 100x100 grid."""
    return [(x * SIZE / 100, y * SIZE / 100) for x, y in points]


def _dress(title: str) -> list[Shape]:
    if "slip" in title or "sundress" in title:
        top = [(40, 14), (42, 14), (44, 30), (56, 30), (58, 14), (60, 14), (62, 34)]
    else:
        top = [(38, 12), (46, 16), (54, 16), (62, 12), (72, 22), (66, 28), (62, 26), (62, 36)]
    left = [(100 - x, y) for x, y in reversed(top)]
    flare = 16 if "wrap" in title or "tea" in title or "broderie" in title else 10
    hem = 88 if "midi" in title or "wrap" in title or "slip" in title else 80
    return [[*top, (66 + flare, hem), (34 - flare, hem), *left]]


def _top(title: str, long_sleeves: bool) -> list[Shape]:
    sleeve = [(92, 66), (82, 70), (70, 34)] if long_sleeves else [(86, 40), (74, 46), (70, 40)]
    right = [(58, 14), (70, 18), *sleeve, (70, 88)]
    left = [(100 - x, y) for x, y in reversed(right)]
    shapes: list[Shape] = [[(42, 14), *right, *left]]
    if "shirt" in title or "blouse" in title or "polo" in title:
        shapes.append([(42, 14), (50, 24), (58, 14), (54, 12), (50, 18), (46, 12)])  # collar
    return shapes


def _trousers(title: str) -> list[Shape]:
    wide = 8 if "wide" in title or "drawstring" in title else 0
    return [[(30, 10), (70, 10), (74 + wide, 92), (56, 92), (50, 36), (44, 92), (26 - wide, 92)]]


def _jacket(title: str) -> list[Shape]:
    length = 92 if "overcoat" in title else 80
    right = [(58, 12), (72, 18), (94, 70), (84, 74), (72, 40), (74, length)]
    left = [(100 - x, y) for x, y in reversed(right)]
    body: Shape = [(42, 12), *right, *left]
    if "puffer" in title or "quilted" in title:
        body = [(x * 1.04 - 2, y) for x, y in body]
    return [body]


def _shoe(title: str) -> list[Shape]:
    if "boot" in title:
        return [[(30, 24), (52, 24), (54, 58), (84, 66), (88, 78), (20, 78), (22, 50)]]
    if "high-top" in title:
        return [[(22, 34), (46, 34), (52, 56), (82, 62), (88, 76), (14, 76), (16, 56)]]
    if "espadrille" in title or "loafer" in title:
        return [[(14, 56), (40, 50), (70, 52), (88, 62), (88, 72), (12, 72)]]
    return [[(14, 50), (40, 46), (58, 54), (82, 60), (90, 74), (10, 74)]]


def _accessory(title: str) -> list[Shape]:
    if "belt" in title:
        return [[(8, 44), (92, 44), (92, 56), (8, 56)], [(14, 40), (28, 40), (28, 60), (14, 60)]]
    if "tote" in title or "bag" in title:
        return [[(20, 36), (80, 36), (86, 88), (14, 88)]]
    if "backpack" in title:
        return [[(26, 20), (74, 20), (80, 88), (20, 88)], [(34, 56), (66, 56), (66, 80), (34, 80)]]
    if "beanie" in title or "hat" in title:
        return [[(22, 74), (24, 44), (38, 26), (62, 26), (76, 44), (78, 74)]]
    if "cap" in title:
        return [[(20, 62), (26, 38), (44, 28), (62, 32), (72, 50), (94, 62)]]
    if "scarf" in title:
        return [[(30, 8), (50, 8), (50, 92), (30, 92)], [(50, 8), (70, 8), (70, 60), (50, 60)]]
    if "glove" in title:
        return [[(30, 90), (30, 40), (36, 18), (42, 40), (46, 14), (52, 40), (58, 16),
                 (62, 42), (68, 22), (72, 50), (82, 44), (74, 66), (70, 90)]]  # fmt: skip
    return [[(24, 24), (76, 24), (76, 76), (24, 76)]]


SILHOUETTES: dict[str, Callable[[str], list[Shape]]] = {
    "dresses": _dress,
    "shirts": lambda t: _top(t, long_sleeves=not ("tee" in t or "camp" in t or "polo" in t)),
    "knitwear": lambda t: _top(t, long_sleeves="polo" not in t),
    "trousers": _trousers,
    "jackets": _jacket,
    "shoes": _shoe,
    "accessories": _accessory,
}


def render_product_photo(category: str, title: str, colour: str, size: int = SIZE) -> bytes:
    """A JPEG of the product's silhouette in its colour (pattern for checks/stripes/florals)."""
    lowered = title.lower()
    shapes = SILHOUETTES.get(category.lower(), _accessory)(lowered)
    fill = colour_rgb(colour)
    edge = _darker(fill) if sum(fill) > 120 else (90, 90, 96)
    image = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    shadow = Image.new("L", (SIZE, SIZE), 0)
    shadow_draw = ImageDraw.Draw(shadow)
    for shape in shapes:
        shadow_draw.polygon([(x + 6, y + 8) for x, y in _scale(shape)], fill=90)
    shadow = shadow.filter(ImageFilter.GaussianBlur(8))
    image.paste((200, 198, 194), mask=shadow)
    mask = Image.new("L", (SIZE, SIZE), 0)
    mask_draw = ImageDraw.Draw(mask)
    for shape in shapes:
        mask_draw.polygon(_scale(shape), fill=255)
    garment = Image.new("RGB", (SIZE, SIZE), fill)
    _pattern(garment, colour, fill)
    image.paste(garment, mask=mask)
    draw = ImageDraw.Draw(image)
    for shape in shapes:
        draw.polygon(_scale(shape), outline=edge, width=3)
    _details(draw, category.lower(), lowered, edge)
    if size != SIZE:
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88, optimize=True)
    return out.getvalue()


def _details(draw: ImageDraw.ImageDraw, category: str, title: str, edge: tuple[int, ...]) -> None:
    """What tells a jacket from a jumper: zips, pockets, rib bands, soles, handles."""

    def line(*points: tuple[float, float], width: int = 3) -> None:
        draw.line(_scale(list(points)), fill=edge, width=width)

    if category == "jackets":
        line((50, 14), (50, 80 if "overcoat" not in title else 92))
        line((30, 56), (40, 56))
        line((60, 56), (70, 56))
        if "puffer" in title or "quilted" in title:
            for y in range(26, 80, 10):
                line((28, y), (72, y), width=2)
        if "overcoat" in title or "trucker" in title or "field" in title:
            line((42, 12), (50, 34), (58, 12))
    elif category == "knitwear":
        for x in range(31, 70, 3):
            line((x, 82), (x, 88), width=1)
        if "cardigan" in title:
            line((50, 16), (50, 88))
            for y in range(28, 84, 12):
                draw.ellipse([c * SIZE / 100 for c in (51, y, 54, y + 3)], fill=edge)
        if "roll-neck" in title:
            draw.rectangle([c * SIZE / 100 for c in (42, 6, 58, 15)], outline=edge, width=3)
    elif category == "trousers":
        line((30, 16), (70, 16))
    elif category == "shoes":
        line((12, 72), (89, 72), width=6)
        for x in range(36, 52, 5):
            draw.ellipse([c * SIZE / 100 for c in (x, 52, x + 2, 54)], fill=edge)
    elif category == "accessories" and ("tote" in title or "bag" in title):
        draw.arc([c * SIZE / 100 for c in (32, 12, 68, 60)], 180, 360, fill=edge, width=8)


def _pattern(garment: Image.Image, colour: str, fill: tuple[int, int, int]) -> None:
    lowered = colour.lower()
    accent = _accent(colour) or _darker(fill, 0.55)
    draw = ImageDraw.Draw(garment)
    step = SIZE // 16
    if "stripe" in lowered:
        for y in range(0, SIZE, step):
            draw.rectangle([0, y, SIZE, y + step // 3], fill=accent)
    elif "check" in lowered:
        for x in range(0, SIZE, step * 2):
            draw.rectangle([x, 0, x + step // 2, SIZE], fill=accent)
        for y in range(0, SIZE, step * 2):
            draw.rectangle([0, y, SIZE, y + step // 2], fill=accent)
    elif "floral" in lowered:
        for i, y in enumerate(range(step // 2, SIZE, step)):
            for x in range(step // 2 + (i % 2) * step // 2, SIZE, step):
                draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=(236, 226, 200))


def write_product_photo(directory: Path, sku: str, data: bytes) -> Path:
    """Write `data` as `directory/<sku>.jpg` unless the same bytes are already there."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", sku)
    path = directory / f"{safe}.jpg"
    if not path.exists() or path.read_bytes() != data:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path
