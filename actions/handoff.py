"""Hand the conversation to a person: `action_handoff` opens (or reuses) a support ticket.

The dialogue runs it when the customer asks for a human, complains, the bot failed twice in a
row, or order verification failed three times; the reason stored on the ticket is read from
that context. From then on the router keeps the conversation away from Rasa until staff
resolve the ticket (see bot/handoff.py).
"""

from __future__ import annotations

from datetime import timedelta

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.fallback import ActionFallback
from bot import handoff
from bot.shop import Shop
from bot.store import verification

VERIFICATION_FAILURES = 3


def escalation_reason(tracker: Tracker, verification_failures: int) -> str:
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    if intent == "complaint":
        return handoff.COMPLAINT
    if intent == "contact_human":
        return handoff.ASKED_FOR_HUMAN
    if verification_failures >= VERIFICATION_FAILURES:
        return handoff.VERIFICATION_FAILED
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
        sender = tracker.sender_id
        now = self.shop.now()
        window = timedelta(minutes=self.shop.settings.verify_lockout_minutes)
        failures = await self.shop.transaction(
            lambda s: verification.recent_failures(s, sender, now, window)
        )
        escalation = await handoff.escalate(self.shop, sender, escalation_reason(tracker, failures))
        dispatcher.utter_message(text=escalation.reply.text)
        if tracker.active_loop_name:  # a person takes it from here; no form resumes afterwards
            return [ActiveLoop(None), SlotSet("requested_slot", None)]
        return []
