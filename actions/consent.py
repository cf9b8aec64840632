"""Marketing consent from the chat: "subscribe me" / "unsubscribe", stored with source and time."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlmodel import Session

from bot.outbox import split_conversation_id
from bot.shop import Shop
from bot.store import channel_state

SUBSCRIBED = (
    "Done — you'll get our news and offers in this chat. You can stop them any time by "
    'writing "unsubscribe".'
)
UNSUBSCRIBED = (
    "Done — you won't get any more marketing messages from us. Order updates and answers to "
    "your questions still come as usual."
)


WELCOME = "You're welcome! Is there anything else I can do for you?"
OFFER = "By the way: would you like our offers and new arrivals in this chat now and then?"
OFFER_BUTTON = ("Yes, send me offers", "/newsletter_subscribe")


def consent_source(tracker: Tracker, channel: str) -> str:
    """`telegram:/start <param>` for a deep link, else `<channel>:chat`."""
    metadata = tracker.latest_message.get("metadata") or {}
    start = metadata.get("start_param") if isinstance(metadata, dict) else None
    return f"{channel}:/start {start}" if start else f"{channel}:chat"


class ActionSetMarketingConsent(Action):
    """Records an opt-in or opt-out (append-only; the newest row counts)."""

    def __init__(self, shop: Shop, opted_in: bool) -> None:
        self.shop = shop
        self.opted_in = opted_in

    def name(self) -> str:
        return "action_subscribe" if self.opted_in else "action_unsubscribe"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        channel, external_id = split_conversation_id(tracker.sender_id)
        now = self.shop.now()
        await self.shop.transaction(
            lambda s: channel_state.record_consent(
                s, channel, external_id, self.opted_in, consent_source(tracker, channel), now=now
            )
        )
        dispatcher.utter_message(text=SUBSCRIBED if self.opted_in else UNSUBSCRIBED)
        return []


class ActionYoureWelcome(Action):
    """After a thank-you (a good moment), offer marketing messages once: only to customers who
    never said yes or no."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    def name(self) -> str:
        return "action_youre_welcome"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        channel, external_id = split_conversation_id(tracker.sender_id)

        def undecided(session: Session) -> bool:
            return channel_state.current_consent(session, channel, external_id) is None

        dispatcher.utter_message(text=WELCOME)
        if await self.shop.transaction(undecided):
            title, payload = OFFER_BUTTON
            dispatcher.utter_message(text=OFFER, buttons=[{"title": title, "payload": payload}])
        return []
