"""What the assistant says about orders: every customer-facing sentence of the order flows."""

from __future__ import annotations

from datetime import date, datetime

from bot.settings import Settings
from bot.store.models import Order, OrderStatus, ReturnRequest
from bot.store.orders import OrderView, ReturnEligibility

NOT_AN_ORDER_NUMBER = (
    "That doesn't look like an order number. Order numbers have 6 digits (for example 104522) "
    "and are in your order confirmation e-mail."
)
NOT_A_CONTACT = (
    "I need the e-mail address or the delivery postcode that's on the order "
    "(for example anna@example.com or 10115)."
)
NOT_VERIFIED = "I couldn't verify that order, so I can't share its details. Let's try again."
WHICH_ITEM = "Sorry, which item do you mean? Please pick one of the buttons."
WHY_RETURN = "Could you tell me briefly why you're returning it (for example: too small)?"
ADDRESS_FORMAT = (
    "I couldn't read that as an address. Please write it on one line as: street and number, "
    "postcode city, country — for example: Keizersgracht 12, 1015 CX Amsterdam, NL."
)
KEPT_ORDER = "OK, I haven't cancelled anything — your order stays as it is."
STOPPED = "OK, I've stopped there. Is there anything else I can help you with?"


def human_date(day: date) -> str:
    return day.strftime("%a %d %b %Y")


def no_match(number: str, attempts_left: int) -> str:
    left = f" You have {attempts_left} more tries." if 0 < attempts_left <= 3 else ""
    return (
        f"Sorry, I couldn't find an order {number} with that e-mail address or postcode. "
        f"Please check both and try again.{left}"
    )


def locked(until: datetime, now: datetime, settings: Settings) -> str:
    minutes = max(1, round((until - now).total_seconds() / 60))
    return (
        f"For your security I've paused order look-ups after {settings.verify_max_failures} "
        f"unsuccessful attempts to verify this order. Please try again in about "
        f"{minutes} minutes (after {until.strftime('%H:%M')} UTC), or contact "
        f"support@northwind-threads.example with your order number."
    )


def _items(view: OrderView) -> str:
    return ", ".join(f"{item.quantity}× {item.title} ({item.size})" for item in view.items)


def order_status(view: OrderView) -> str:
    status = view.status
    head = f"Order {view.number} ({_items(view)})"
    if status in (OrderStatus.placed, OrderStatus.paid):
        state = (
            "has been placed and is waiting for payment"
            if status == OrderStatus.placed
            else ("is paid and being packed")
        )
        return f"{head} {state}. It hasn't shipped yet, so there's no tracking number."
    if status == OrderStatus.shipped:
        expected = (
            f" Expected delivery: {human_date(date.fromisoformat(view.expected_delivery))}."
            if view.expected_delivery
            else ""
        )
        return (
            f"{head} is on its way with {view.carrier}. Tracking number: "
            f"{view.tracking_number}.{expected}"
        )
    if status == OrderStatus.delivered:
        when = f" on {human_date(view.delivered_at.date())}" if view.delivered_at else ""
        return (
            f"{head} was delivered{when} by {view.carrier} (tracking number "
            f"{view.tracking_number})."
        )
    if status == OrderStatus.cancelled:
        return f"{head} was cancelled, and nothing will be shipped."
    return f"{head} was returned to us."


def confirm_cancel(view: OrderView) -> str:
    return f"Order {view.number}: {_items(view)}. Do you want me to cancel this order?"


def cancelled(order: Order) -> str:
    return (
        f"Done — order {order.number} is cancelled. Your refund of {order.total} "
        f"{order.currency} goes back to your original payment method within 5–7 business days."
    )


def cannot_cancel(order: Order, window_days: int) -> str:
    if order.status == OrderStatus.shipped:
        return (
            f"Order {order.number} has already shipped, so I can't cancel it any more. Once it "
            f"arrives you can return it within {window_days} days for a full refund — just tell "
            f'me "I want to return it".'
        )
    if order.status == OrderStatus.delivered:
        return (
            f"Order {order.number} has already been delivered, so it can't be cancelled. You can "
            f'return it instead — just tell me "I want to return it".'
        )
    if order.status == OrderStatus.cancelled:
        return f"Order {order.number} is already cancelled."
    return f"Order {order.number} was returned, so there is nothing left to cancel."


def cannot_change_address(order: Order) -> str:
    if order.status in (OrderStatus.shipped, OrderStatus.delivered):
        return (
            f"Order {order.number} has already left our warehouse, so I can't change its address. "
            f"You can redirect the parcel with the carrier's tracking page, or contact "
            f"support@northwind-threads.example."
        )
    return f"Order {order.number} is {order.status.value}, so its address can't be changed."


def address_changed(order: Order) -> str:
    return (
        f"Done — order {order.number} will now be delivered to {order.shipping_line1}, "
        f"{order.shipping_postcode} {order.shipping_city}, {order.shipping_country}."
    )


def return_refused(order: Order, eligibility: ReturnEligibility, window_days: int) -> str:
    policy = (
        f"Our policy: items can be returned within {window_days} days of delivery, unworn and "
        f"with their labels."
    )
    return f"Sorry, I can't start a return for order {order.number}: {eligibility.reason} {policy}"


def return_created(return_number: str, item_title: str, settings: Settings) -> str:
    return (
        f"Your return {return_number} for the {item_title} is registered. We'll e-mail you a "
        f"prepaid label; please send the item within 14 days. The refund follows within 5 "
        f"business days of it reaching us."
    )


RETURN_STATES = {
    "requested": "registered — we're waiting for the parcel to reach us",
    "received": "received at our warehouse — the refund follows within 5 business days",
    "refunded": "refunded to your original payment method",
    "rejected": "not accepted (the item didn't meet the return conditions)",
}


def refund_status(order: Order, returns: list[ReturnRequest]) -> str:
    if returns:
        lines = [
            f"• Return {r.number}: {RETURN_STATES.get(r.status.value, r.status.value)}."
            for r in returns
        ]
        return f"Refunds for order {order.number}:\n" + "\n".join(lines)
    if order.status == OrderStatus.cancelled:
        return (
            f"Order {order.number} was cancelled; the refund of {order.total} {order.currency} "
            f"goes back to your original payment method within 5–7 business days of the "
            f"cancellation."
        )
    return (
        f"There's no return or refund on order {order.number} yet. If you'd like to send "
        f'something back, just say "I want to return it".'
    )
