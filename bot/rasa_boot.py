"""Start the Rasa server with one fix: validate action responses with a validator built once.

Rasa 3.6 checks every action-server response with `jsonschema.validate(result, schema)`, which
re-checks the schema and builds a new validator on every call; profiling showed that at about
45% of Rasa's CPU under load. This wrapper keeps exactly the same validation (same schema, same
error message) but builds the validator once, then hands over to Rasa's own `main()`.

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


if __name__ == "__main__":
    install()
    from rasa.__main__ import main

    sys.argv = ["rasa", *sys.argv[1:]]
    main()
