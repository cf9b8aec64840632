"""Policy and help questions answered from the shop's own documents (knowledge base)."""

from __future__ import annotations

import asyncio
import logging

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.services import Services
from knowledge import Answer

log = logging.getLogger(__name__)

MAX_QUOTE_CHARS = 900
HUMAN_BUTTON = {"title": "Talk to a person", "payload": "/contact_human"}
UNSURE = (
    "I'm not sure I have the right answer to that. Could you put it another way — or shall I "
    "pass you to a person?"
)
UNAVAILABLE = "Sorry, I can't look that up right now. A person from our team can help you with it."


def quote(answer: Answer) -> str:
    """The best passage under its title, cut at a sentence end when it is long."""
    best = answer.best
    assert best is not None
    text = best.text.strip()
    if len(text) > MAX_QUOTE_CHARS:
        cut = text[:MAX_QUOTE_CHARS]
        end = max(cut.rfind(". "), cut.rfind(".\n"))
        text = (cut[: end + 1] if end > MAX_QUOTE_CHARS // 2 else cut.rstrip() + "…").strip()
    return f"{best.title}\n{text}"


class ActionAnswerKnowledge(Action):
    NAME = "action_answer_knowledge"

    def __init__(self, services: Services) -> None:
        self.services = services

    def name(self) -> str:
        return self.NAME

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        question = str((tracker.latest_message or {}).get("text") or "")
        try:
            answer = await asyncio.to_thread(lambda: self.services.knowledge().ask(question))
        except Exception:
            log.exception("knowledge base failed for %r", question)
            dispatcher.utter_message(text=UNAVAILABLE, buttons=[HUMAN_BUTTON])
            return []
        if answer.confident:
            dispatcher.utter_message(text=quote(answer))
        else:
            dispatcher.utter_message(text=UNSURE, buttons=[HUMAN_BUTTON])
        return []
