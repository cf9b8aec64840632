"""Orders: lookup, ownership check, cancellation, address change and returns.

Functions take the caller's session and never commit; `session_scope` does. State checks
raise `StoreError` subclasses whose message can be shown to the customer.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from .columns import utcnow
from .errors import (
    AddressNotChangeable,
    InvalidAddress,
    OrderNotCancellable,
    OrderNotFound,
    ReturnNotAllowed,
)
from .models import (
    OPEN_RETURN_STATUSES,
    Order,
    OrderItem,
    OrderStatus,
    ProductVariant,
    ReturnRequest,
    ReturnStatus,
    Shipment,
)

# A run of digits in which single spaces or hyphens may sit between digits ("104 522").
_DIGIT_RUN = re.compile(r"[0-9](?:[ \t\u00a0-]?[0-9])*")
_NOT_DIGIT = re.compile(r"[^0-9]")
_POSTCODE_NOISE = re.compile(r"[\s-]+")

CHANGEABLE_STATUSES = frozenset({OrderStatus.placed, OrderStatus.paid})
RETURN_NUMBER_PREFIX = "RT-"


@dataclass(frozen=True)
class ShippingAddress:
    name: str
    line1: str
    city: str
    postcode: str
    country: str  # ISO 3166-1 alpha-2
    line2: str | None = None


@dataclass(frozen=True)
class ItemView:
    id: int
    product_id: int
    title: str
    size: str
    colour: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class OrderView:
    """What the assistant may tell a verified owner about an order."""

    number: str
    email: str
    postcode: str
    status: OrderStatus
    carrier: str | None
    tracking_number: str | None
    expected_delivery: str | None  # ISO date
    delivered_at: datetime | None
    items: list[ItemView]
    total: Decimal
    currency: str
    placed_at: datetime

    def to_json(self) -> dict[str, str | None]:
        return {
            "number": self.number,
            "email": self.email,
            "postcode": self.postcode,
            "status": self.status.value,
            "carrier": self.carrier,
            "tracking_number": self.tracking_number,
            "expected_delivery": self.expected_delivery,
        }


@dataclass(frozen=True)
class ReturnEligibility:
    eligible: bool
    reason: str
    deadline: date | None


def normalise_order_number(text: str) -> str | None:
    """The six-digit order number in `text` ("#104522", "order 104 522"), else None.

    None too when the text holds two different six-digit numbers: better to ask than guess.
    """
    found = {_NOT_DIGIT.sub("", run) for run in _DIGIT_RUN.findall(text)}
    six_digits = [digits for digits in found if len(digits) == 6]
    return six_digits[0] if len(six_digits) == 1 else None


def find_order(session: Session, number: str) -> Order | None:
    digits = normalise_order_number(number)
    if digits is None:
        return None
    return session.exec(select(Order).where(Order.number == digits)).first()


def verify_owner(session: Session, number: str, contact: str) -> Order | None:
    """The order when `contact` is its e-mail or shipping postcode, else None."""
    order = find_order(session, number)
    if order is None or not contact.strip():
        return None
    given = contact.strip()
    if "@" in given:
        matches = given.casefold() == order.email.strip().casefold()
    else:
        matches = _postcode_key(given) == _postcode_key(order.shipping_postcode)
    return order if matches else None


def _postcode_key(postcode: str) -> str:
    return _POSTCODE_NOISE.sub("", postcode).upper()


def order_items(session: Session, order: Order) -> list[OrderItem]:
    stmt = select(OrderItem).where(OrderItem.order_id == order.id).order_by(col(OrderItem.id))
    return list(session.exec(stmt).all())


def order_view(session: Session, order: Order) -> OrderView:
    assert order.id is not None
    items = _item_views(session, [order.id])
    shipments = _latest_shipments(session, [order.id])
    return _view(order, items.get(order.id, []), shipments.get(order.id))


def list_order_views(session: Session) -> list[OrderView]:
    """Every order, by number (the CLI prints these for the demo)."""
    orders = list(session.exec(select(Order).order_by(col(Order.number))).all())
    ids = [order.id for order in orders if order.id is not None]
    items = _item_views(session, ids)
    shipments = _latest_shipments(session, ids)
    return [
        _view(order, items.get(order.id or 0, []), shipments.get(order.id or 0)) for order in orders
    ]


def _view(order: Order, items: list[ItemView], shipment: Shipment | None) -> OrderView:
    expected = shipment.expected_delivery if shipment else None
    return OrderView(
        number=order.number,
        email=order.email,
        postcode=order.shipping_postcode,
        status=OrderStatus(order.status),
        carrier=shipment.carrier if shipment else None,
        tracking_number=shipment.tracking_number if shipment else None,
        expected_delivery=expected.isoformat() if expected else None,
        delivered_at=order.delivered_at,
        items=items,
        total=order.total,
        currency=order.currency,
        placed_at=order.placed_at,
    )


def _item_views(session: Session, order_ids: Iterable[int]) -> dict[int, list[ItemView]]:
    stmt = (
        select(OrderItem, ProductVariant)
        .join(ProductVariant, col(ProductVariant.id) == col(OrderItem.variant_id))
        .where(col(OrderItem.order_id).in_(list(order_ids)))
        .order_by(col(OrderItem.id))
    )
    views: dict[int, list[ItemView]] = defaultdict(list)
    for item, variant in session.exec(stmt).all():
        assert item.id is not None
        views[item.order_id].append(
            ItemView(
                id=item.id,
                product_id=variant.product_id,
                title=item.title,
                size=item.size,
                colour=variant.colour,
                quantity=item.quantity,
                unit_price=item.unit_price,
            )
        )
    return views


def _latest_shipments(session: Session, order_ids: Iterable[int]) -> dict[int, Shipment]:
    stmt = (
        select(Shipment)
        .where(col(Shipment.order_id).in_(list(order_ids)))
        .order_by(col(Shipment.shipped_at), col(Shipment.id))
    )
    return {shipment.order_id: shipment for shipment in session.exec(stmt).all()}


def _lock_order(session: Session, number: str) -> Order:
    """The order row, locked until the transaction ends (FOR UPDATE; a no-op on SQLite)."""
    digits = normalise_order_number(number)
    if digits is None:
        raise OrderNotFound(number.strip())
    stmt = (
        select(Order)
        .where(Order.number == digits)
        .with_for_update()
        # Re-read after waiting for the lock: another transaction may have just changed it.
        .execution_options(populate_existing=True)
    )
    order = session.exec(stmt).first()
    if order is None:
        raise OrderNotFound(digits)
    return order


_NOT_CANCELLABLE = {
    OrderStatus.shipped: "it has already been shipped. Once it arrives you can return it.",
    OrderStatus.delivered: "it has already been delivered. You can return it instead.",
    OrderStatus.cancelled: "it is already cancelled.",
    OrderStatus.returned: "it has already been returned.",
}


def cancel_order(session: Session, number: str, now: datetime) -> Order:
    """Cancel a placed or paid order and put its items back in stock."""
    order = _lock_order(session, number)
    if order.status not in CHANGEABLE_STATUSES:
        raise OrderNotCancellable(order.status.value, _NOT_CANCELLABLE[order.status])
    items = order_items(session, order)
    quantities: dict[int, int] = defaultdict(int)
    for item in items:
        quantities[item.variant_id] += item.quantity
    # Lock the variants in id order so two orders restocking the same sizes cannot deadlock.
    variants = session.exec(
        select(ProductVariant)
        .where(col(ProductVariant.id).in_(list(quantities)))
        .order_by(col(ProductVariant.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for variant in variants:
        assert variant.id is not None
        variant.stock += quantities[variant.id]
        session.add(variant)
    order.status = OrderStatus.cancelled
    order.cancelled_at = now
    order.updated_at = now
    session.add(order)
    session.flush()
    return order


_ADDRESS_FIXED = {
    OrderStatus.shipped: "the parcel is already on its way.",
    OrderStatus.delivered: "the order has already been delivered.",
    OrderStatus.cancelled: "the order was cancelled.",
    OrderStatus.returned: "the order was returned.",
}


def change_shipping_address(
    session: Session, number: str, address: ShippingAddress, now: datetime | None = None
) -> Order:
    """Send a placed or paid order somewhere else."""
    order = _lock_order(session, number)
    if order.status not in CHANGEABLE_STATUSES:
        raise AddressNotChangeable(order.status.value, _ADDRESS_FIXED[order.status])
    clean = _checked_address(address)
    order.shipping_name = clean.name
    order.shipping_line1 = clean.line1
    order.shipping_line2 = clean.line2
    order.shipping_city = clean.city
    order.shipping_postcode = clean.postcode
    order.shipping_country = clean.country
    order.updated_at = now or utcnow()
    session.add(order)
    session.flush()
    return order


def _checked_address(address: ShippingAddress) -> ShippingAddress:
    fields = {
        "name": address.name.strip(),
        "street": address.line1.strip(),
        "city": address.city.strip(),
        "postcode": address.postcode.strip(),
    }
    missing = [label for label, value in fields.items() if not value]
    if missing:
        raise InvalidAddress(f"The new address is missing the {', '.join(missing)}.")
    country = address.country.strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise InvalidAddress("Please give the country as a two-letter code, e.g. DE or NL.")
    line2 = (address.line2 or "").strip() or None
    return ShippingAddress(
        name=fields["name"],
        line1=fields["street"],
        line2=line2,
        city=fields["city"],
        postcode=fields["postcode"],
        country=country,
    )


def return_eligibility(
    order: Order | OrderView, today: date, window_days: int
) -> ReturnEligibility:
    """Delivered orders can be returned until `window_days` after the delivery day."""
    status = OrderStatus(order.status)
    if status is OrderStatus.returned:
        return ReturnEligibility(False, "it has already been returned.", None)
    if status is OrderStatus.cancelled:
        return ReturnEligibility(False, "it was cancelled.", None)
    if status in CHANGEABLE_STATUSES:
        return ReturnEligibility(False, "it hasn't been shipped yet; you can cancel it.", None)
    if status is OrderStatus.shipped or order.delivered_at is None:
        return ReturnEligibility(
            False, "it hasn't been delivered yet; you can return it once it arrives.", None
        )
    deadline = order.delivered_at.date() + timedelta(days=window_days)
    if today > deadline:
        return ReturnEligibility(
            False, f"the {window_days}-day return window ended on {deadline.isoformat()}.", deadline
        )
    return ReturnEligibility(True, f"it can be returned until {deadline.isoformat()}.", deadline)


def returns_for_order(session: Session, order: Order) -> list[ReturnRequest]:
    stmt = (
        select(ReturnRequest)
        .where(ReturnRequest.order_id == order.id)
        .order_by(col(ReturnRequest.id))
    )
    return list(session.exec(stmt).all())


def create_return(
    session: Session,
    number: str,
    item_id: int | None,
    reason: str,
    today: date,
    window_days: int,
    now: datetime | None = None,
) -> ReturnRequest:
    """Open a return for one item, or for the whole order when `item_id` is None.

    A single-item order's item is chosen when `item_id` is None. One return per item unless
    an earlier one was rejected.
    """
    order = _lock_order(session, number)  # serialises returns on the same order
    eligibility = return_eligibility(order, today, window_days)
    if not eligibility.eligible:
        raise ReturnNotAllowed(eligibility.reason)
    items = order_items(session, order)
    item_ids = {item.id for item in items}
    if item_id is not None and item_id not in item_ids:
        raise ReturnNotAllowed(f"that item is not part of order {order.number}.")
    if item_id is None and len(items) == 1:
        item_id = items[0].id
    _refuse_duplicate_return(session, order, item_id)
    assert order.id is not None
    return _insert_return(session, order.id, item_id, reason.strip()[:500], now or utcnow())


def _refuse_duplicate_return(session: Session, order: Order, item_id: int | None) -> None:
    existing = [r for r in returns_for_order(session, order) if r.status != ReturnStatus.rejected]
    for request in existing:
        same_item = request.order_item_id == item_id
        if request.order_item_id is None or item_id is None or same_item:
            if request.status in OPEN_RETURN_STATUSES:
                raise ReturnNotAllowed(
                    f"there is already an open return ({request.number}) for this order."
                    if request.order_item_id is None or item_id is None
                    else f"there is already an open return ({request.number}) for this item."
                )
            raise ReturnNotAllowed(f"it has already been returned ({request.number}).")


def _insert_return(
    session: Session, order_id: int, item_id: int | None, reason: str, now: datetime
) -> ReturnRequest:
    # Numbers are max + 1; a concurrent return may take the same one, so retry on the
    # unique constraint inside a savepoint that keeps the rest of the transaction.
    for _ in range(5):
        request = ReturnRequest(
            number=next_return_number(session),
            order_id=order_id,
            order_item_id=item_id,
            reason=reason,
            status=ReturnStatus.requested,
            created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(request)
        except IntegrityError:
            continue
        return request
    raise RuntimeError("could not allocate a return number")


def next_return_number(session: Session) -> str:
    stmt = select(ReturnRequest.number).order_by(col(ReturnRequest.number).desc()).limit(1)
    last = session.exec(stmt).first()
    sequence = int(last.removeprefix(RETURN_NUMBER_PREFIX)) if last else 0
    return f"{RETURN_NUMBER_PREFIX}{sequence + 1:06d}"
