"""Rasa custom actions: thin adapters from the dialogue to the shop's store and services.

The app serves them in-process through rasa_sdk's `ActionExecutor` at `POST /webhook`; the shop
(database, settings, clock) and the shared services (vector store, knowledge base,
recommender) are injected here rather than held in module globals.
"""

from __future__ import annotations

from rasa_sdk import Action

from actions.consent import ActionSetMarketingConsent, ActionYoureWelcome
from actions.fallback import ActionFallback
from actions.handoff import ActionHandoff
from actions.knowledge import ActionAnswerKnowledge
from actions.orders import (
    ActionAskCancelConfirmed,
    ActionAskReturnItem,
    ActionOrderTask,
    ActionStopOrderForm,
    ValidateOrderForm,
)
from actions.photos import ActionPhotoSearch, ActionSimilarItems
from actions.products import ActionProductQuestion, ActionProductSearch
from actions.recommend import ActionRecommend
from bot.services import Services
from bot.shop import Shop


def build_actions(shop: Shop, services: Services) -> list[Action]:
    return [
        ValidateOrderForm(shop),
        ActionAskCancelConfirmed(shop),
        ActionAskReturnItem(shop),
        ActionOrderTask(shop, services),
        ActionStopOrderForm(),
        ActionFallback(services),
        ActionHandoff(shop),
        ActionProductQuestion(shop),
        ActionProductSearch(shop),
        ActionSetMarketingConsent(shop, opted_in=True),
        ActionSetMarketingConsent(shop, opted_in=False),
        ActionYoureWelcome(shop),
        ActionAnswerKnowledge(services),
        ActionRecommend(shop, services),
        ActionPhotoSearch(shop, services),
        ActionSimilarItems(shop, services),
    ]


__all__ = ["build_actions"]
