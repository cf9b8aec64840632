"""The channel-neutral `Reply` rendered the Telegram way, as plain values (no network here).

Telegram's limits: 4096 characters per message, 1024 per caption, 64 bytes of callback data per
button, 2-10 photos per media group (which cannot carry buttons). Lengths are counted in UTF-16
code units, as Telegram counts them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.channels.base import Button, ProductCard, Reply, is_link

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_BYTES = 64
ALBUM_MAX = 10
SHORT_ID_PREFIX = "~"  # callback data starting with this is a short id of a stored payload

Keyboard = tuple[tuple[tuple[str, str], ...], ...]  # rows of (title, callback data)


@dataclass(frozen=True)
class SendText:
    text: str
    keyboard: Keyboard = ()


@dataclass(frozen=True)
class SendPhoto:
    photo: str  # an absolute URL
    caption: str
    keyboard: Keyboard = ()


@dataclass(frozen=True)
class SendAlbum:
    photos: tuple[tuple[str, str], ...]  # (URL, caption)


Operation = SendText | SendPhoto | SendAlbum


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _prefix_within(text: str, limit: int) -> int:
    """How many characters of `text` fit in `limit` UTF-16 units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split at paragraph, line or word boundaries so that every part fits `limit`."""
    parts: list[str] = []
    rest = text.strip()
    while rest:
        fit = _prefix_within(rest, limit)
        if fit == len(rest):
            parts.append(rest)
            break
        window = rest[:fit]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            cut = window.rfind(separator)
            if cut > fit // 2:
                break
        if cut <= 0:
            cut = fit  # one very long word: cut it hard
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return parts


def truncate(text: str, limit: int) -> str:
    if utf16_len(text) <= limit:
        return text
    return text[: _prefix_within(text, limit - 1)].rstrip() + "…"


def needs_short_id(payload: str) -> bool:
    return len(payload.encode("utf-8")) > CALLBACK_DATA_BYTES or payload.startswith(SHORT_ID_PREFIX)


def payloads_of(reply: Reply) -> list[str]:
    buttons = list(reply.buttons) + [b for card in reply.cards for b in card.buttons]
    return [b.payload for b in buttons if not is_link(b.payload)]


def keyboard(buttons: tuple[Button, ...], short_ids: Mapping[str, str]) -> Keyboard:
    """One button per row (titles stay readable on a phone)."""
    return tuple(((b.title, _callback_data(b.payload, short_ids)),) for b in buttons)


def _callback_data(payload: str, short_ids: Mapping[str, str]) -> str:
    if not is_link(payload) and needs_short_id(payload):
        return SHORT_ID_PREFIX + short_ids[payload]
    return payload


def card_caption(card: ProductCard) -> str:
    lines = [card.title, card.subtitle, f"{card.price} {card.currency}"]
    return truncate("\n".join(line for line in lines if line), CAPTION_LIMIT)


def render(reply: Reply, short_ids: Mapping[str, str], public_url: str = "") -> list[Operation]:
    """Operations in sending order; `short_ids` maps every long payload to its stored id."""
    operations: list[Operation] = []
    texts = split_text(reply.text or "")
    photo_cards = [c for c in reply.cards if c.image_url]
    text_cards = [c for c in reply.cards if not c.image_url]
    texts += [card_caption(c) for c in text_cards]
    for index, part in enumerate(texts):
        last = index == len(texts) - 1
        operations.append(SendText(part, keyboard(reply.buttons, short_ids) if last else ()))
    if len(photo_cards) == 1:
        card = photo_cards[0]
        url = _absolute(card.image_url or "", public_url)
        operations.append(SendPhoto(url, card_caption(card), keyboard(card.buttons, short_ids)))
    elif photo_cards:
        for start in range(0, len(photo_cards), ALBUM_MAX):
            chunk = photo_cards[start : start + ALBUM_MAX]
            if len(chunk) == 1:  # a media group needs two photos
                card = chunk[0]
                operations.append(
                    SendPhoto(_absolute(card.image_url or "", public_url), card_caption(card))
                )
            else:
                operations.append(
                    SendAlbum(
                        tuple(
                            (_absolute(c.image_url or "", public_url), card_caption(c))
                            for c in chunk
                        )
                    )
                )
        card_buttons = tuple(
            Button(truncate(f"{c.title}: {b.title}", 60), b.payload)
            for c in photo_cards
            for b in c.buttons
        )
        if card_buttons:
            operations.append(SendText("Choose:", keyboard(card_buttons, short_ids)))
    if reply.buttons and not texts:
        operations.append(SendText("Choose:", keyboard(reply.buttons, short_ids)))
    return operations


def _absolute(url: str, public_url: str) -> str:
    if url.startswith(("http://", "https://")) or not public_url:
        return url
    return public_url.rstrip("/") + "/" + url.lstrip("/")
