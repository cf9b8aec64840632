"""Two-stage fallback: ask the customer to rephrase, then offer what the bot can do.

A message NLU could not place that the shop's documents clearly answer is answered from them
instead. When both stages have failed (a third misunderstanding in a row) a person takes over. A
confident out-of-scope message counts as a miss too: its first answer says that it is outside
what the shop assistant does.
"""

from __future__ import annotations

import asyncio
import logging

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.knowledge import ActionAnswerKnowledge
from bot.services import Services

log = logging.getLogger(__name__)

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
# NLU was unsure, so the shop's documents must be surer than for a recognised policy question.
KNOWLEDGE_SCORE = 0.5


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

    def __init__(self, services: Services | None = None) -> None:
        self.services = services

    async def _documents_know(self, text: str) -> bool:
        """Whether the shop's documents clearly answer what NLU could not place."""
        if self.services is None or not text.strip() or text.startswith("/"):
            return False
        services = self.services
        try:
            answer = await asyncio.to_thread(lambda: services.knowledge().ask(text, limit=1))
        except Exception:  # the fallback must answer even when the knowledge base cannot
            log.exception("knowledge base unavailable to the fallback")
            return False
        return answer.best is not None and answer.best.score >= KNOWLEDGE_SCORE

    def name(self) -> str:
        return self.NAME

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        text = str((tracker.latest_message or {}).get("text") or "")
        if await self._documents_know(text):
            return [FollowupAction(ActionAnswerKnowledge.NAME)]
        earlier = consecutive_fallbacks(tracker)
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if earlier == 0:
            if intent == "out_of_scope":  # understood, just not ours: say so, with the options
                dispatcher.utter_message(response="utter_out_of_scope")
            else:
                dispatcher.utter_message(text=REPHRASE)
        elif earlier < ESCALATE_AFTER:
            dispatcher.utter_message(text=OPTIONS, buttons=OPTION_BUTTONS)
        else:  # a person takes over; the hand-off action words it and records why
            from actions.handoff import ActionHandoff  # (it imports this module)

            return [FollowupAction(ActionHandoff.NAME)]
        return []
