"""Rasa's action endpoint served in-process: same JSON protocol as `rasa run actions`.

Reason (DESIGN.md): the actions share the app's store and embedded vector store, which only one
process may open.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from rasa_sdk import Action
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import (
    ActionExecutionRejection,
    ActionMissingDomainException,
    ActionNotFoundException,
)

log = logging.getLogger(__name__)


class ActionEndpoint:
    def __init__(self, actions: list[Action]) -> None:
        self.executor = ActionExecutor()
        for action in actions:
            self.executor.register_action(action)

    def mount(self, app: web.Application) -> None:
        app.router.add_post("/webhook", self.webhook)
        app.router.add_get("/actions", self.list_actions)

    async def list_actions(self, request: web.Request) -> web.Response:
        return web.json_response([a.model_dump() for a in self.executor.list_actions()])

    async def webhook(self, request: web.Request) -> web.Response:
        try:
            call: Any = json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "Invalid body request"}, status=400)
        if not isinstance(call, dict):
            return web.json_response({"error": "Invalid body request"}, status=400)
        name = call.get("next_action")
        try:
            result = await self.executor.run(call)
        except ActionExecutionRejection as error:
            return web.json_response(
                {"error": error.message, "action_name": error.action_name}, status=400
            )
        except ActionNotFoundException as error:
            log.error("unknown action %s", name)
            return web.json_response(
                {"error": error.message, "action_name": error.action_name}, status=404
            )
        except ActionMissingDomainException as error:
            return web.json_response(
                {"error": error.message, "action_name": error.action_name}, status=449
            )
        except Exception as error:
            log.exception("action %s failed", name)
            return web.json_response({"error": str(error), "action_name": name}, status=500)
        return web.json_response(result.model_dump() if result else None)
