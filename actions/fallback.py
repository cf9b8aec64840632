"""Two-stage fallback: ask the customer to rephrase, then offer what the bot can do.

When both stages have failed (a third misunderstanding in a row) a person takes over. A
confident out-of-scope message counts as a miss too: its first answer says that it is outside
what the shop assistant does.
"""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import handoff
from bot.shop import Shop

REPHRASE = "Sorry, I didn't quite get that. Could you say it in other words?"
OPTIONS = "I'm still not sure what you need. Here's what I can help with — or type it differently:"
OPTION_BUTTONS = [
    {"title": "Where is my order?", "payload": "/order_status"},
    {"title": "Cancel an order", "payload": "/cancel_order"},
    {"title": "Return an item", "payload": "/return_item"},
    {"title": "Change delivery address", "payload": "/change_shipping_address"},
    {"title": "Talk to a person", "payload": "/contact_human"},
]
ESCALATE_AFTER = 2  # earlier fallbacks in a row: rephrase, then options, then a person


def consecutive_fallbacks(tracker: Tracker) -> int:
    """How many user turns in a row, right before the latest one, the bot answered only with
    this fallback."""
    count = 0
    turn: list[str] = []  # the bot's actions after one earlier user message
    seen_latest_user = False
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "action" and seen_latest_user:
            name = str(event.get("name"))
            if name != "action_listen":
                turn.append(name)
        elif kind == "user":
            if not seen_latest_user:
                seen_latest_user = True
                continue
            if not turn or any(name != ActionFallback.NAME for name in turn):
                return count
            count += 1
            turn = []
    return count


class ActionFallback(Action):
    NAME = "action_fallback"

    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    def name(self) -> str:
        return self.NAME

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        earlier = consecutive_fallbacks(tracker)
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if earlier == 0:
            if intent == "out_of_scope":  # understood, just not ours: say so, with the options
                dispatcher.utter_message(response="utter_out_of_scope")
            else:
                dispatcher.utter_message(text=REPHRASE)
        elif earlier < ESCALATE_AFTER:
            dispatcher.utter_message(text=OPTIONS, buttons=OPTION_BUTTONS)
        else:
            escalation = await handoff.escalate(
                self.shop, tracker.sender_id, handoff.REPEATED_FALLBACK
            )
            dispatcher.utter_message(text=escalation.reply.text)
        return []
