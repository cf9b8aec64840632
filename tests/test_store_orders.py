"""Order lookup, ownership, cancellation, address change and returns."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.store.db import session_scope
from bot.store.errors import (
    AddressNotChangeable,
    InvalidAddress,
    OrderNotCancellable,
    OrderNotFound,
    ReturnNotAllowed,
    StoreError,
)
from bot.store.models import Order, OrderStatus, ProductVariant, ReturnRequest, ReturnStatus
from bot.store.orders import (
    OrderView,
    ShippingAddress,
    cancel_order,
    change_shipping_address,
    create_return,
    find_order,
    normalise_order_number,
    order_items,
    order_view,
    return_eligibility,
    verify_owner,
)
from tests.conftest_store import NOW, TODAY, views

pytest_plugins = ("tests.store_fixtures",)

WINDOW = 30


def pick(engine: Engine, status: OrderStatus, *, returnable: bool | None = None) -> OrderView:
    for view in views(engine):
        if view.status is not status:
            continue
        if returnable is None or return_eligibility(view, TODAY, WINDOW).eligible == returnable:
            return view
    raise LookupError(status)


def orders_with_returns(engine: Engine) -> set[str]:
    """Numbers of the demo orders that already have a return request."""
    with session_scope(engine) as session:
        statement = select(Order.number).join(
            ReturnRequest, col(ReturnRequest.order_id) == col(Order.id)
        )
        return set(session.exec(statement).all())


def returnable(engine: Engine, min_items: int = 1, max_items: int = 9) -> list[OrderView]:
    """Recently delivered demo orders without any return yet."""
    taken = orders_with_returns(engine)
    return [
        v for v in views(engine)
        if v.status is OrderStatus.delivered and v.number not in taken
        and min_items <= len(v.items) <= max_items
        and return_eligibility(v, TODAY, WINDOW).eligible
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("104522", "104522"),
        ("#104522", "104522"),
        (" 104 522 ", "104522"),
        ("order 104522", "104522"),
        ("Order no. 104-522, please", "104522"),
        ("my order 104522 arrived on 12 May", "104522"),
        ("104522 and 104522 again", "104522"),
        ("10452", None),
        ("1045223", None),
        ("0176 1234567", None),
        ("104522 or 104523", None),
        ("no digits here", None),
        ("", None),
    ],
)
def test_normalise_order_number(text: str, expected: str | None) -> None:
    assert normalise_order_number(text) == expected


def test_find_order_accepts_loose_numbers(demo_engine: Engine) -> None:
    with session_scope(demo_engine) as session:
        found = find_order(session, "order #104 501")
        assert found is not None and found.number == "104501"
        assert find_order(session, "999999") is None
        assert find_order(session, "hello") is None


def test_verify_owner_by_email_or_postcode(demo_engine: Engine) -> None:
    view = next(v for v in views(demo_engine) if " " in v.postcode)  # NL or GB postcode
    number = view.number
    with session_scope(demo_engine) as session:
        spellings = [
            view.email,
            f"  {view.email.upper()} ",
            view.postcode,
            view.postcode.replace(" ", "").lower(),
            f" {view.postcode.lower()} ",
        ]
        for contact in spellings:
            assert verify_owner(session, f"#{number}", contact) is not None, contact
        for contact in ("someone.else@example.com", "00000", "", "   ", view.email[:-1]):
            assert verify_owner(session, number, contact) is None, contact
        assert verify_owner(session, "999999", view.email) is None


def test_order_view_json_has_exactly_the_agreed_keys(demo_engine: Engine) -> None:
    shipped = pick(demo_engine, OrderStatus.shipped)
    with session_scope(demo_engine) as session:
        order = find_order(session, shipped.number)
        assert order is not None
        view = order_view(session, order)
    assert view == shipped
    assert set(view.to_json()) == {
        "number", "email", "postcode", "status", "carrier", "tracking_number",
        "expected_delivery",
    }  # fmt: skip
    assert view.to_json()["status"] == "shipped" and view.to_json()["carrier"]


def stock_by_variant(session: Session) -> dict[int, int]:
    return {v.id: v.stock for v in session.exec(select(ProductVariant)) if v.id is not None}


@pytest.mark.parametrize("status", [OrderStatus.placed, OrderStatus.paid])
def test_cancel_puts_every_item_back_in_stock(demo_engine: Engine, status: OrderStatus) -> None:
    view = pick(demo_engine, status)
    with session_scope(demo_engine) as session:
        before = stock_by_variant(session)
        order = find_order(session, view.number)
        assert order is not None
        ordered: Counter[int] = Counter()
        for item in order_items(session, order):
            ordered[item.variant_id] += item.quantity
    with session_scope(demo_engine) as session:
        cancelled = cancel_order(session, view.number, NOW)
        assert cancelled.status is OrderStatus.cancelled and cancelled.cancelled_at == NOW
    with session_scope(demo_engine) as session:
        after = stock_by_variant(session)
        order = find_order(session, view.number)
        assert order is not None and order.status is OrderStatus.cancelled
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == dict(ordered)


@pytest.mark.parametrize(
    "status",
    [OrderStatus.shipped, OrderStatus.delivered, OrderStatus.cancelled, OrderStatus.returned],
)
def test_cancel_is_refused_once_the_order_moved_on(
    demo_engine: Engine, status: OrderStatus
) -> None:
    view = pick(demo_engine, status)
    with session_scope(demo_engine) as session:
        before = stock_by_variant(session)
        with pytest.raises(OrderNotCancellable) as refused:
            cancel_order(session, view.number, NOW)
        assert stock_by_variant(session) == before
    assert refused.value.status == status.value
    assert isinstance(refused.value, StoreError) and refused.value.reason in refused.value.message


def test_cancel_unknown_order(demo_engine: Engine) -> None:
    with pytest.raises(OrderNotFound, match="999999"), session_scope(demo_engine) as session:
        cancel_order(session, "999999", NOW)


def test_concurrent_cancels_restock_once(demo_engine: Engine) -> None:
    """The second cancel waits (row lock on PostgreSQL, write lock on SQLite), then sees
    `cancelled` and is refused."""
    view = pick(demo_engine, OrderStatus.paid)
    with session_scope(demo_engine) as session:
        before = stock_by_variant(session)
    outcome: dict[str, object] = {}
    first_holds_lock = threading.Event()

    def second() -> None:
        first_holds_lock.wait()
        try:
            with session_scope(demo_engine) as session:
                cancel_order(session, view.number, NOW)
            outcome["second"] = "cancelled"
        except OrderNotCancellable as exc:
            outcome["second"] = exc

    thread = threading.Thread(target=second)
    thread.start()
    with session_scope(demo_engine) as session:
        cancel_order(session, view.number, NOW)
        first_holds_lock.set()
        time.sleep(0.3)  # the second cancel is now blocked
        assert thread.is_alive()
    thread.join(timeout=10)
    assert isinstance(outcome["second"], OrderNotCancellable)
    with session_scope(demo_engine) as session:
        after = stock_by_variant(session)
    restocked = sum(after.values()) - sum(before.values())
    assert restocked == sum(item.quantity for item in view.items)


NEW_ADDRESS = ShippingAddress(
    name="Anna Schmidt", line1="Torstraße 1", line2="Hinterhaus", city="Berlin",
    postcode="10119", country="de",
)  # fmt: skip


@pytest.mark.parametrize("status", [OrderStatus.placed, OrderStatus.paid])
def test_change_address_before_shipping(demo_engine: Engine, status: OrderStatus) -> None:
    view = pick(demo_engine, status)
    with session_scope(demo_engine) as session:
        order = change_shipping_address(session, view.number, NEW_ADDRESS, NOW)
        assert order.shipping_country == "DE" and order.updated_at == NOW
    with session_scope(demo_engine) as session:
        assert verify_owner(session, view.number, "10119") is not None
        assert verify_owner(session, view.number, view.postcode) is None
        changed = find_order(session, view.number)
        assert changed is not None and changed.shipping_line2 == "Hinterhaus"


@pytest.mark.parametrize(
    "status",
    [OrderStatus.shipped, OrderStatus.delivered, OrderStatus.cancelled, OrderStatus.returned],
)
def test_change_address_refused_after_shipping(demo_engine: Engine, status: OrderStatus) -> None:
    view = pick(demo_engine, status)
    with pytest.raises(AddressNotChangeable), session_scope(demo_engine) as session:
        change_shipping_address(session, view.number, NEW_ADDRESS, NOW)


def test_change_address_needs_a_complete_address(demo_engine: Engine) -> None:
    view = pick(demo_engine, OrderStatus.placed)
    incomplete = ShippingAddress(name="A", line1=" ", city="Berlin", postcode="", country="DE")
    with pytest.raises(InvalidAddress, match="street, postcode"), session_scope(demo_engine) as s:
        change_shipping_address(s, view.number, incomplete, NOW)
    bad_country = ShippingAddress(
        name="A", line1="x", city="Berlin", postcode="10115", country="Germany"
    )
    with pytest.raises(InvalidAddress, match="two-letter"), session_scope(demo_engine) as s:
        change_shipping_address(s, view.number, bad_country, NOW)


def test_return_window_boundaries(demo_engine: Engine) -> None:
    view = pick(demo_engine, OrderStatus.delivered, returnable=True)
    assert view.delivered_at is not None
    deadline = view.delivered_at.date() + timedelta(days=WINDOW)
    on_last_day = return_eligibility(view, deadline, WINDOW)
    assert on_last_day.eligible and on_last_day.deadline == deadline
    day_after = return_eligibility(view, deadline + timedelta(days=1), WINDOW)
    assert not day_after.eligible and deadline.isoformat() in day_after.reason
    old = pick(demo_engine, OrderStatus.delivered, returnable=False)
    assert not return_eligibility(old, TODAY, WINDOW).eligible
    for status in (OrderStatus.placed, OrderStatus.shipped, OrderStatus.returned):
        verdict = return_eligibility(pick(demo_engine, status), TODAY, WINDOW)
        assert not verdict.eligible and verdict.deadline is None and verdict.reason


def test_create_return_one_open_return_per_item(demo_engine: Engine) -> None:
    view = returnable(demo_engine, min_items=2)[0]
    first, second = view.items[0], view.items[1]
    with session_scope(demo_engine) as session:
        request = create_return(session, view.number, first.id, " Too small ", TODAY, WINDOW, NOW)
        assert re.fullmatch(r"RT-\d{6}", request.number)
        assert request.status is ReturnStatus.requested and request.reason == "Too small"
    with pytest.raises(ReturnNotAllowed, match="already an open return"):  # noqa: SIM117
        with session_scope(demo_engine) as session:
            create_return(session, view.number, first.id, "again", TODAY, WINDOW, NOW)
    with pytest.raises(ReturnNotAllowed, match="already an open return"):  # noqa: SIM117
        with session_scope(demo_engine) as session:
            create_return(session, view.number, None, "everything", TODAY, WINDOW, NOW)
    with session_scope(demo_engine) as session:
        other = create_return(session, view.number, second.id, "Too big", TODAY, WINDOW, NOW)
    assert int(other.number[3:]) == int(request.number[3:]) + 1


def test_create_return_refusals(demo_engine: Engine) -> None:
    old = pick(demo_engine, OrderStatus.delivered, returnable=False)
    recent = pick(demo_engine, OrderStatus.delivered, returnable=True)
    shipped = pick(demo_engine, OrderStatus.shipped)
    returned = pick(demo_engine, OrderStatus.returned)
    cases = [
        (old.number, None, "return window ended"),
        (shipped.number, None, "hasn't been delivered"),
        (returned.number, None, "already been returned"),
        (recent.number, 999_999, "not part of order"),
    ]
    for number, item_id, message in cases:
        with pytest.raises(ReturnNotAllowed, match=message), session_scope(demo_engine) as s:
            create_return(s, number, item_id, "reason", TODAY, WINDOW, NOW)
    with pytest.raises(OrderNotFound), session_scope(demo_engine) as session:
        create_return(session, "999999", None, "reason", TODAY, WINDOW, NOW)


def test_demo_open_return_blocks_a_second_one(demo_engine: Engine) -> None:
    with session_scope(demo_engine) as session:
        request = session.exec(
            select(ReturnRequest).where(ReturnRequest.status == ReturnStatus.requested)
        ).first()
        assert request is not None
        order = session.get(Order, request.order_id)
        assert order is not None
        number, item_id = order.number, request.order_item_id
    with pytest.raises(ReturnNotAllowed, match=request.number), session_scope(demo_engine) as s:
        create_return(s, number, item_id, "again", TODAY, WINDOW, NOW)


def test_whole_order_return_for_a_single_item_order_picks_the_item(demo_engine: Engine) -> None:
    view = returnable(demo_engine, max_items=1)[0]
    with session_scope(demo_engine) as session:
        request = create_return(session, view.number, None, "", TODAY, WINDOW, NOW)
    assert request.order_item_id == view.items[0].id


def test_whole_order_return_blocks_item_returns(demo_engine: Engine) -> None:
    view = returnable(demo_engine, min_items=2)[0]
    with session_scope(demo_engine) as session:
        request = create_return(session, view.number, None, "Wrong parcel", TODAY, WINDOW, NOW)
    assert request.order_item_id is None
    with pytest.raises(ReturnNotAllowed, match=request.number), session_scope(demo_engine) as s:
        create_return(s, view.number, view.items[1].id, "again", TODAY, WINDOW, NOW)
