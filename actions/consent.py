"""Marketing consent from the chat: "subscribe me" / "unsubscribe", stored with source and time."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

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
                s, channel, external_id, self.opted_in, f"{channel}:chat", now=now
            )
        )
        dispatcher.utter_message(text=SUBSCRIBED if self.opted_in else UNSUBSCRIBED)
        return []
