"""Rasa custom actions: thin adapters from the dialogue to the shop's store.

The app serves them in-process through rasa_sdk's `ActionExecutor` at `POST /webhook`; the shop
(database, settings, clock) is injected here rather than held in module globals.
"""

from __future__ import annotations

from rasa_sdk import Action

from actions.fallback import ActionFallback
from actions.orders import (
    ActionAskCancelConfirmed,
    ActionAskReturnItem,
    ActionOrderTask,
    ActionStopOrderForm,
    ValidateOrderForm,
)
from bot.shop import Shop


def build_actions(shop: Shop) -> list[Action]:
    return [
        ValidateOrderForm(shop),
        ActionAskCancelConfirmed(shop),
        ActionAskReturnItem(shop),
        ActionOrderTask(shop),
        ActionStopOrderForm(),
        ActionFallback(),
    ]


__all__ = ["build_actions"]
