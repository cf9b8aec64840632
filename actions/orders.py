"""Order self-service: one form verifies the customer, the task decides what else it asks.

`order_form` always needs the order number and the e-mail or postcode on that order. The slot
`order_task` (set from the intent: status, cancel, return, address) adds the task's own slots once
the customer is verified and the order allows the task; `action_order_task` then does the work.
Order details are only ever shown after `verified_order` equals the order number in question.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlmodel import Session

from actions import replies
from actions.parsing import contact_candidates, parse_address
from actions.recommend import one_suggestion
from bot import handoff
from bot.services import Services
from bot.shop import Shop
from bot.store import conversations, orders, verification
from bot.store.errors import StoreError
from bot.store.models import Order, OrderStatus

VERIFY_SLOTS = ["order_number", "order_contact"]
TASK_SLOTS = ["order_task", "cancel_confirmed", "return_item", "return_reason", "new_address"]
OPEN_STATUSES = {OrderStatus.placed, OrderStatus.paid}


def lockout(
    session: Session, shop: Shop, conversation_id: str, number: str | None, now: datetime
) -> datetime | None:
    """Until when look-ups are paused: per conversation, and per order across conversations
    (a web visitor can open new sessions at will)."""
    settings = shop.settings
    window = timedelta(minutes=settings.verify_lockout_minutes)
    limit = settings.verify_max_failures
    candidates = [verification.lockout_until(session, conversation_id, now, limit, window)]
    if number:
        candidates.append(verification.order_lockout_until(session, number, now, limit, window))
    return max((c for c in candidates if c is not None), default=None)


LOCKED_UNTIL = "locked until "
HANDED_OVER = "handed to a person"
VERIFICATION_FAILURES = 3  # failed verifications in one chat before a person takes over
LINKED = "linked account"


def is_locked(tracker: Tracker) -> bool:
    return str(tracker.get_slot("order_gate") or "").startswith(LOCKED_UNTIL)


def task_of(tracker: Tracker) -> str:
    return str(tracker.get_slot("order_task") or "status")


def reset_task(tracker: Tracker) -> list[EventType]:
    """Clear the task's slots — only those that are set: every event lengthens the tracker."""
    return [
        SlotSet(slot, None)
        for slot in [*TASK_SLOTS, "order_gate"]
        if tracker.get_slot(slot) is not None
    ]


class ValidateOrderForm(FormValidationAction):
    """Checks the order number/contact pair against the store and picks the task's slots."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    def name(self) -> str:
        return "validate_order_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        if is_locked(tracker) or tracker.get_slot("order_gate") == HANDED_OVER:
            return []  # ends the form; action_order_task explains the lock (or stays quiet)
        number = tracker.get_slot("order_number")
        verified = (
            tracker.get_slot("order_gate") is None
            and number is not None
            and tracker.get_slot("verified_order") == number
            and tracker.get_slot("order_contact") is not None
        )
        task = task_of(tracker)
        if not verified or task in ("status", "refund"):
            return list(VERIFY_SLOTS)
        today = self.shop.now().date()
        window = self.shop.settings.return_window_days

        def extra_slots(session: Session) -> list[str]:
            order = orders.find_order(session, str(number))
            if order is None:
                return []
            if task in ("cancel", "address"):
                if order.status not in OPEN_STATUSES:
                    return []
                return ["cancel_confirmed"] if task == "cancel" else ["new_address"]
            if task == "return":
                if not orders.return_eligibility(order, today, window).eligible:
                    return []
                items = orders.order_view(session, order).items
                return (["return_item"] if len(items) > 1 else []) + ["return_reason"]
            return []

        return [*VERIFY_SLOTS, *await self.shop.transaction(extra_slots)]

    async def _lockout(self, tracker: Tracker, number: str | None) -> datetime | None:
        now = self.shop.now()
        return await self.shop.transaction(
            lambda session: lockout(session, self.shop, tracker.sender_id, number, now)
        )

    @staticmethod
    def _locked(until: datetime) -> dict[str, Any]:
        return {
            "order_number": None,
            "order_contact": None,
            "order_gate": f"{LOCKED_UNTIL}{until.isoformat()}",
            "requested_slot": None,
        }

    async def validate_order_number(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        number = orders.normalise_order_number(str(slot_value))
        if number is not None and number == tracker.get_slot("verified_order"):
            return {"order_number": number}  # this chat already proved it owns the order
        if until := await self._lockout(tracker, number):
            return self._locked(until)
        if number is None:
            dispatcher.utter_message(text=replies.NOT_AN_ORDER_NUMBER)
            return {"order_number": None}
        if await self._owned_by_linked_customer(tracker, number):
            return {"order_number": number, "order_contact": LINKED, "verified_order": number}
        # a different order needs its own proof of ownership
        return {"order_number": number, "order_contact": None, "verified_order": None}

    async def _owned_by_linked_customer(self, tracker: Tracker, number: str) -> bool:
        """A chat already verified as this customer needs no second proof for their orders."""

        def owned(session: Session) -> bool:
            customer_id = conversations.linked_customer_id(session, tracker.sender_id)
            order = orders.find_order(session, number)
            return (
                customer_id is not None and order is not None and order.customer_id == customer_id
            )

        return await self.shop.transaction(owned)

    async def validate_order_contact(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        number = orders.normalise_order_number(str(tracker.get_slot("order_number") or ""))
        if number is None:
            return {"order_contact": None}
        if number == tracker.get_slot("verified_order"):
            # verified earlier in this chat; the slot is only re-validated as prefilled
            return {"order_contact": slot_value}
        if until := await self._lockout(tracker, number):
            return self._locked(until)
        if slot_value == LINKED and await self._owned_by_linked_customer(tracker, number):
            return {"order_number": number, "order_contact": LINKED, "verified_order": number}
        candidates = contact_candidates(str(slot_value))
        if not candidates:
            dispatcher.utter_message(text=replies.NOT_A_CONTACT)
            return {"order_contact": None}
        settings = self.shop.settings
        now = self.shop.now()

        def verify(session: Session) -> tuple[bool, datetime | None, int, str | None]:
            owner = next(
                (o for c in candidates if (o := orders.verify_owner(session, number, c))), None
            )
            matched = owner is not None
            verification.record_attempt(session, tracker.sender_id, number, matched, now)
            if owner is not None and owner.customer_id is not None:
                conversations.link_customer(session, tracker.sender_id, owner.customer_id)
            window = timedelta(minutes=settings.verify_lockout_minutes)
            until = lockout(session, self.shop, tracker.sender_id, number, now)
            failures = verification.recent_failures(session, tracker.sender_id, now, window)
            escalation = None
            if not matched and until is None and failures == VERIFICATION_FAILURES:
                escalation = handoff.escalate_in(
                    session, tracker.sender_id, handoff.VERIFICATION_FAILED, settings, now
                ).reply.text
            return matched, until, settings.verify_max_failures - failures, escalation

        matched, until, attempts_left, escalation = await self.shop.transaction(verify)
        if matched:
            return {
                "order_number": number,
                "order_contact": candidates[0],
                "verified_order": number,
            }
        if until is not None:
            return self._locked(until)
        if escalation is not None:  # a person takes over; the form ends without asking again
            dispatcher.utter_message(text=escalation)
            return {
                "order_number": None,
                "order_contact": None,
                "order_gate": HANDED_OVER,
                "requested_slot": None,
            }
        dispatcher.utter_message(text=replies.no_match(number, attempts_left))
        return {"order_number": None, "order_contact": None, "verified_order": None}

    async def validate_return_item(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        number = str(tracker.get_slot("verified_order"))
        text = str(slot_value).strip().lower()

        def resolve(session: Session) -> int | None:
            order = orders.find_order(session, number)
            if order is None:
                return None
            items = orders.order_view(session, order).items
            for item in items:
                if text == str(item.id) or text in item.title.lower() or item.title.lower() in text:
                    return item.id
            return None

        item_id = await self.shop.transaction(resolve)
        if item_id is None:
            dispatcher.utter_message(text=replies.WHICH_ITEM)
            return {"return_item": None}
        return {"return_item": str(item_id)}

    async def validate_return_reason(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        reason = " ".join(str(slot_value).split())
        if len(reason) < 2 or reason.startswith("/"):
            dispatcher.utter_message(text=replies.WHY_RETURN)
            return {"return_reason": None}
        return {"return_reason": reason[:500]}

    async def validate_new_address(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        if parse_address(str(slot_value)) is None:
            dispatcher.utter_message(text=replies.ADDRESS_FORMAT)
            return {"new_address": None}
        return {"new_address": " ".join(str(slot_value).split())}


class ActionAskCancelConfirmed(Action):
    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    def name(self) -> str:
        return "action_ask_cancel_confirmed"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        number = str(tracker.get_slot("verified_order"))
        view = await self.shop.transaction(lambda s: _view(s, number))
        if view is None:
            return []
        dispatcher.utter_message(
            text=replies.confirm_cancel(view),
            buttons=[
                {"title": "Yes, cancel it", "payload": "/affirm"},
                {"title": "No, keep it", "payload": "/deny"},
            ],
        )
        return []


class ActionAskReturnItem(Action):
    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    def name(self) -> str:
        return "action_ask_return_item"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        number = str(tracker.get_slot("verified_order"))
        view = await self.shop.transaction(lambda s: _view(s, number))
        if view is None:
            return []
        dispatcher.utter_message(
            text="Which item would you like to return?",
            buttons=[
                {
                    "title": f"{item.title} ({item.size})",
                    "payload": f'/inform{{"return_item": "{item.id}"}}',
                }
                for item in view.items
            ],
        )
        return []


def _view(session: Session, number: str) -> orders.OrderView | None:
    order = orders.find_order(session, number)
    return orders.order_view(session, order) if order else None


class ActionOrderTask(Action):
    """Runs the verified task: status, cancel, return or address change."""

    def __init__(self, shop: Shop, services: Services | None = None) -> None:
        self.shop = shop
        self.services = services  # for one suggestion after a status answer

    def name(self) -> str:
        return "action_order_task"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if is_locked(tracker):
            until = datetime.fromisoformat(str(tracker.get_slot("order_gate"))[len(LOCKED_UNTIL) :])
            dispatcher.utter_message(
                text=replies.locked(until, self.shop.now(), self.shop.settings)
            )
            return reset_task(tracker)
        if tracker.get_slot("order_gate") == HANDED_OVER:  # the handoff message was sent
            return reset_task(tracker)
        number = tracker.get_slot("verified_order")
        if not number or number != tracker.get_slot("order_number"):
            dispatcher.utter_message(text=replies.NOT_VERIFIED)
            return reset_task(tracker)
        task = task_of(tracker)
        today = self.shop.now().date()
        settings = self.shop.settings

        def work(session: Session) -> str:
            order = orders.find_order(session, str(number))
            if order is None:
                return replies.NOT_VERIFIED
            if task == "cancel":
                return self._cancel(session, order, tracker)
            if task == "return":
                eligibility = orders.return_eligibility(order, today, settings.return_window_days)
                if not eligibility.eligible:
                    return replies.return_refused(order, eligibility, settings.return_window_days)
                return self._return(session, order, tracker)
            if task == "address":
                return self._change_address(session, order, tracker)
            if task == "refund":
                return replies.refund_status(order, orders.returns_for_order(session, order))
            return replies.order_status(orders.order_view(session, order))

        try:
            text = await self.shop.transaction(work)
        except StoreError as error:
            text = error.message
        dispatcher.utter_message(text=text)
        if task == "status" and self.services is not None:
            card = await one_suggestion(self.shop, self.services, tracker.sender_id, str(number))
            if card is not None:
                dispatcher.utter_message(
                    text="You might also like this:", json_message={"cards": [card.to_json()]}
                )
        return reset_task(tracker)

    def _cancel(self, session: Session, order: Order, tracker: Tracker) -> str:
        if order.status not in OPEN_STATUSES:
            return replies.cannot_cancel(order, self.shop.settings.return_window_days)
        if tracker.get_slot("cancel_confirmed") is not True:
            return replies.KEPT_ORDER
        cancelled = orders.cancel_order(session, order.number, self.shop.now())
        return replies.cancelled(cancelled)

    def _return(self, session: Session, order: Order, tracker: Tracker) -> str:
        view = orders.order_view(session, order)
        item_slot = tracker.get_slot("return_item")
        item_id = int(item_slot) if item_slot else view.items[0].id
        request = orders.create_return(
            session,
            order.number,
            item_id,
            str(tracker.get_slot("return_reason") or "not given"),
            self.shop.now().date(),
            self.shop.settings.return_window_days,
        )
        item = next(i for i in view.items if i.id == item_id)
        return replies.return_created(request.number, item.title, self.shop.settings)

    def _change_address(self, session: Session, order: Order, tracker: Tracker) -> str:
        if order.status not in OPEN_STATUSES:
            return replies.cannot_change_address(order)
        parts = parse_address(str(tracker.get_slot("new_address") or ""))
        if parts is None:
            return replies.ADDRESS_FORMAT
        address = orders.ShippingAddress(
            name=order.shipping_name,
            line1=parts.line1,
            line2=None,
            postcode=parts.postcode,
            city=parts.city,
            country=_country_code(parts.country, order.shipping_country),
        )
        updated = orders.change_shipping_address(session, order.number, address)
        return replies.address_changed(updated)


def _country_code(given: str | None, current: str) -> str:
    names = {
        "GERMANY": "DE",
        "NETHERLANDS": "NL",
        "FRANCE": "FR",
        "SPAIN": "ES",
        "UK": "GB",
        "UNITED KINGDOM": "GB",
        "ENGLAND": "GB",
        "USA": "US",
        "UNITED STATES": "US",
    }
    if not given:
        return current
    upper = given.strip().upper()
    if len(upper) == 2:
        return "GB" if upper == "UK" else upper
    return names.get(upper, current)


class ActionStopOrderForm(Action):
    def name(self) -> str:
        return "action_stop_order_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(text=replies.STOPPED)
        return reset_task(tracker)
