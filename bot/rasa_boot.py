"""Start the Rasa server with five fixes, then hand over to Rasa's own `main()`.

1. Validate action responses with a validator built once. Rasa 3.6 checks every action-server
   response with `jsonschema.validate(result, schema)`, which re-checks the schema and builds a
   new validator on every call; profiling showed that at about 45% of Rasa's CPU under load.
   The same validation (same schema, same error message) with the validator built once.
2. Index the SQL tracker store's events by conversation and time. Rasa loads a tracker with
   "this sender's events since its latest session start" (and counts them again on every
   save), but its `events` table is indexed by sender only: every turn reads every event the
   conversation ever had, so a long conversation gets slower turn by turn even though the app
   opens a new Rasa session every few turns. With (sender, time) and (sender, type, time)
   indexes those queries read only the current session.
3. Carry each slot over once. A new session starts with the old one's slots
   (`carry_over_slots`), but Rasa 3.6 copies every `SlotSet` event the old session applied rather
   than each slot's final value, so a slot set 3 times a session is copied 3, 6, 9... times:
   after 15 sessions one conversation's current session held 915 slot events for 4 turns, and
   every turn loaded, replayed and featurised them all. The last event per slot gives the same
   slots (same values and metadata) in a session that stays small.
4. Look event classes up by name once. Rasa turns every stored event back into an object by
   walking all subclasses of `Event` (recursively, checking each for abstractness) until one has
   the event's type name; profiling a long conversation put that walk at 20% of Rasa's CPU.
   Found classes are remembered by name; an unknown name still goes the original way.
5. `GET /conversations/<id>/active_loop`: the form the conversation is in, read from the current
   session only. The app asks this before opening a new Rasa session; Rasa's own
   `GET .../tracker` rebuilds the tracker from every event the conversation ever had (all
   sessions), which grows with the conversation (19% of Rasa's CPU by turn 300).

Runs in the Rasa venv (Python 3.10): `.venv-rasa/bin/python bot/rasa_boot.py run ...`.
It imports nothing of ours.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any


def install() -> None:
    import jsonschema
    from jsonschema import ValidationError
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    @lru_cache(maxsize=1)
    def validator() -> Any:
        schema = RemoteAction.action_response_format_spec()
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        return cls(schema)

    def validate_action_result(self: Any, result: dict[str, Any]) -> bool:
        try:
            validator().validate(result)
            return True
        except ValidationError as error:
            error.message += (
                ". Failed to validate Action server response from API, make sure your response "
                "from the Action endpoint is valid. For more information about the format visit "
                f"{DOCS_BASE_URL}/custom-actions"
            )
            raise

    RemoteAction._validate_action_result = validate_action_result
    index_tracker_events()
    carry_each_slot_once()
    remember_event_classes()
    serve_active_loop()


EVENT_INDEXES = {
    "ix_events_sender_timestamp": "sender_id, timestamp",
    "ix_events_sender_type_timestamp": "sender_id, type_name, timestamp",
}


def index_tracker_events() -> None:
    import logging

    import sqlalchemy as sa
    from rasa.core.tracker_store import SQLTrackerStore

    original = SQLTrackerStore.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        table = self.SQLEvent.__table__
        for name, columns in EVENT_INDEXES.items():
            try:
                with self.engine.begin() as connection:
                    connection.execute(
                        sa.text(f"CREATE INDEX IF NOT EXISTS {name} ON {table.name} ({columns})")
                    )
            except sa.exc.DBAPIError as error:  # another Rasa process created it just now
                logging.getLogger(__name__).info("index %s not created: %s", name, error)

    SQLTrackerStore.__init__ = __init__


def carry_each_slot_once() -> None:
    from rasa.core.actions.action import ActionSessionStart
    from rasa.shared.core.events import SlotSet

    def slot_set_events_from_tracker(tracker: Any) -> list[Any]:
        last: dict[str, Any] = {}
        for event in tracker.applied_events():
            if isinstance(event, SlotSet):
                last.pop(event.key, None)  # re-inserted: the order is that of the last setting
                last[event.key] = event
        return [SlotSet(key=e.key, value=e.value, metadata=e.metadata) for e in last.values()]

    ActionSessionStart._slot_set_events_from_tracker = staticmethod(slot_set_events_from_tracker)


def remember_event_classes() -> None:
    from rasa.shared.core.events import Event

    original = Event.resolve_by_type
    known: dict[str, Any] = {}

    def resolve_by_type(type_name: str, default: Any = None) -> Any:
        found = known.get(type_name)
        if found is None:
            found = original(type_name, default)
            if found is not None and found is not default:
                known[type_name] = found
        return found

    Event.resolve_by_type = staticmethod(resolve_by_type)


def serve_active_loop() -> None:
    import rasa.server
    from sanic import response

    original = rasa.server.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = original(*args, **kwargs)

        @app.get("/conversations/<conversation_id:path>/active_loop")
        @rasa.server.requires_auth(app, kwargs.get("auth_token"))
        @rasa.server.ensure_loaded_agent(app)
        async def active_loop(request: Any, conversation_id: str) -> Any:
            tracker = await app.ctx.agent.processor.get_tracker(conversation_id)
            return response.json({"active_loop": tracker.active_loop_name})

        return app

    rasa.server.create_app = create_app


if __name__ == "__main__":
    install()
    from rasa.__main__ import main

    sys.argv = ["rasa", *sys.argv[1:]]
    main()
