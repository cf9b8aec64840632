"""Errors the store raises; each carries a message that can be shown to the customer."""

from __future__ import annotations


class StoreError(Exception):
    """Base class. `message` is customer-readable; the action layer may show it verbatim."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OrderNotFound(StoreError):
    def __init__(self, number: str) -> None:
        super().__init__(f"I couldn't find an order with the number {number}.")
        self.number = number


class OrderNotCancellable(StoreError):
    """The order has moved past the point where it can be cancelled."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(f"This order can't be cancelled any more: {reason}")
        self.status = status
        self.reason = reason


class AddressNotChangeable(StoreError):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(f"The delivery address can't be changed any more: {reason}")
        self.status = status
        self.reason = reason


class InvalidAddress(StoreError):
    """A new shipping address is missing something the carrier needs."""


class ReturnNotAllowed(StoreError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"A return isn't possible: {reason}")
        self.reason = reason


class DemoDataConflict(StoreError):
    """The database holds shop data that is not the demo shop; it is left untouched."""
