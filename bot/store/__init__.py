"""The shop's data store: tables, migrations and repository functions.

Repository modules (`orders`, `verification`, `conversations`) take a `Session` from
`session_scope` and leave committing to it.
"""

from .db import make_engine, migrate, session_scope
from .errors import (
    AddressNotChangeable,
    InvalidAddress,
    OrderNotCancellable,
    OrderNotFound,
    ReturnNotAllowed,
    StoreError,
)
from .models import OrderStatus, ReturnStatus

__all__ = [
    "AddressNotChangeable",
    "InvalidAddress",
    "OrderNotCancellable",
    "OrderNotFound",
    "OrderStatus",
    "ReturnNotAllowed",
    "ReturnStatus",
    "StoreError",
    "make_engine",
    "migrate",
    "session_scope",
]
