"""Channel-neutral values: one inbound message type and one reply structure for every channel."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

# Set by the campaign sender around one send: called just before each request of it leaves
# the process (`campaigns.wire_journal`). Every channel's `send_campaign` must announce.
before_wire: ContextVar[Callable[[], None] | None] = ContextVar("before_wire", default=None)


def announce_wire() -> None:
    """This send is about to leave the process (raises if that cannot be noted: do not send)."""
    hook = before_wire.get()
    if hook is not None:
        hook()


def is_link(payload: str) -> bool:
    """A button whose payload is an absolute http(s) address opens that page (campaign links)
    instead of sending a message back."""
    return payload.startswith(("https://", "http://"))


@dataclass(frozen=True)
class Button:
    title: str
    payload: str  # "/intent{...}" sent back when pressed, or a link (see `is_link`)

    def to_json(self) -> dict[str, str]:
        return {"title": self.title, "payload": self.payload}


@dataclass(frozen=True)
class ProductCard:
    product_id: int
    title: str
    subtitle: str
    price: str
    currency: str
    image_url: str | None = None
    buttons: tuple[Button, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "title": self.title,
            "subtitle": self.subtitle,
            "price": self.price,
            "currency": self.currency,
            "image_url": self.image_url,
            "buttons": [b.to_json() for b in self.buttons],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProductCard:
        return cls(
            product_id=int(data["product_id"]),
            title=str(data["title"]),
            subtitle=str(data.get("subtitle", "")),
            price=str(data["price"]),
            currency=str(data.get("currency", "EUR")),
            image_url=data.get("image_url"),
            buttons=tuple(
                Button(str(b["title"]), str(b["payload"])) for b in data.get("buttons", [])
            ),
        )


@dataclass(frozen=True)
class Reply:
    """One bot message as every channel receives it; each channel renders it its own way."""

    text: str | None = None
    buttons: tuple[Button, ...] = ()
    cards: tuple[ProductCard, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "buttons": [b.to_json() for b in self.buttons],
            "cards": [c.to_json() for c in self.cards],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        return cls(
            text=data.get("text"),
            buttons=tuple(
                Button(str(b["title"]), str(b["payload"])) for b in data.get("buttons", [])
            ),
            cards=tuple(ProductCard.from_json(c) for c in data.get("cards", [])),
        )


OPT_OUT_KEYWORDS = frozenset({"stop", "unsubscribe", "stop all"})


def text_for_rasa(payload: str | None, text: str | None) -> str:
    """What Rasa gets: the button payload, else the text — with the opt-out keywords ("STOP",
    "unsubscribe" on their own) as the unsubscribe intent, so they always work."""
    if payload:
        return payload
    if text and text.strip().strip(".!").lower() in OPT_OUT_KEYWORDS:
        return "/unsubscribe"
    return text or ""


@dataclass(frozen=True)
class InboundMessage:
    """A customer's message as it arrives from any channel."""

    channel: str
    external_id: str  # the customer's id on that channel (web session, Telegram chat id)
    text: str | None
    payload: str | None = None  # a button's "/intent{...}" payload
    client_message_id: str | None = None  # the channel's id for dedupe
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def conversation_id(self) -> str:
        return f"{self.channel}:{self.external_id}"

    @property
    def rasa_text(self) -> str:
        return text_for_rasa(self.payload, self.text)


@dataclass(frozen=True)
class SendOutcome:
    """What a channel made of one campaign message: `retry` later, or a final answer."""

    status: Literal["sent", "retry", "blocked", "failed"]
    error: str | None = None
