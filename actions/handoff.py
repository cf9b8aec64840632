"""Hand the conversation to a person: `action_handoff` opens (or reuses) a support ticket.

The dialogue runs it when the customer asks for a human or complains, and the fallback hands
over to it when both of its stages failed; the reason stored on the ticket is read from that
context. (Three failed order verifications escalate inside the order form's validation.)
From then on the router keeps the conversation away from Rasa until staff resolve the ticket
(see bot/handoff.py).
"""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.fallback import ActionFallback
from bot import handoff
from bot.shop import Shop


def escalation_reason(tracker: Tracker) -> str:
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    if intent == "complaint":
        return handoff.COMPLAINT
    if intent == "contact_human":
        return handoff.ASKED_FOR_HUMAN
    if intent == "nlu_fallback" or _after_fallback(tracker):
        return handoff.REPEATED_FALLBACK
    return handoff.ASKED_FOR_HUMAN


def _after_fallback(tracker: Tracker) -> bool:
    for event in reversed(tracker.events):
        if event.get("event") == "action" and event.get("name") not in (
            "action_listen",
            ActionHandoff.NAME,
        ):
            return bool(event.get("name") == ActionFallback.NAME)
    return False


class ActionHandoff(Action):
    NAME = "action_handoff"

    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    def name(self) -> str:
        return self.NAME

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        escalation = await handoff.escalate(
            self.shop, tracker.sender_id, escalation_reason(tracker)
        )
        dispatcher.utter_message(text=escalation.reply.text)
        if tracker.active_loop_name:  # a person takes it from here; no form resumes afterwards
            return [ActiveLoop(None), SlotSet("requested_slot", None)]
        return []
