"""Lifecycle engine: applies the tables in ``lifecycles`` to stored resources.

Contract:
- ``create`` stores a resource in its initial status and emits its ``created`` event (for the
  types GoCardless announces that way; customers and payouts appear silently).
- ``apply`` performs one legal transition, emits exactly one event for it (none for a silent
  step; plus the events of its side effects, each with a later ``created_at``) and raises 422
  ``invalid_state`` for an illegal one. Event details only ever carry an (origin, cause) pair
  the tables document (``ValueError`` otherwise); ``scheme`` and ``reason_code`` only when the
  bank is the origin ("Set when a bank is the origin of the event", EventDetails in the
  official clients' types).
- Side effects, as at GoCardless: a payment reaching ``paid_out`` joins the open payout
  (created on demand); a mandate becoming cancelled/failed/expired/blocked cancels its
  cancellable payments and subscriptions; a reinstated mandate reports ``reinstated`` instead
  of ``active`` when it becomes active again; a replaced mandate is cancelled and a new active
  mandate on the same bank account takes its place, named by ``links.new_mandate`` on the
  event and on the old mandate (event types: mandate ``replaced``).
- ``advance`` walks resources along ``HAPPY_PATH`` one step at a time, round-robin across the
  selected resources, so one call produces e.g. every ``submitted`` event before any
  ``confirmed`` one.
All methods take ``store.lock`` themselves; callers may already hold it.
"""

from __future__ import annotations

from typing import Any

from . import schedule
from .clock import Clock, add_business_days
from .errors import invalid_state
from .lifecycles import (
    APPROVABLE,
    BANK,
    CASCADE_CAUSE,
    CASCADE_DEFAULT_CAUSE,
    CREATED,
    CREATED_OTHERS,
    GOCARDLESS,
    HAPPY_PATH,
    INITIAL,
    MANDATE_CASCADE,
    MANDATE_CHARGEABLE,
    PAYMENT_CANCELLABLE,
    SUBSCRIPTION_CANCELLABLE,
    TRANSITIONS,
    Transition,
)
from .store import SINGULAR, Record, Store, random_code

PARENT_LINKS = ("mandate", "customer", "customer_bank_account", "subscription", "payment",
                "payout")
MAX_ADVANCE_ROUNDS = 20


class Engine:
    """Owns every status change of the emulator's resources."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.customer_approval: set[str] = set()
        self.restricted: set[str] = set()  # gated features refused (restrictions.py)

    def initial_status(self, resource_type: str) -> str:
        if resource_type in self.customer_approval and resource_type in APPROVABLE:
            return "pending_customer_approval"
        return INITIAL[resource_type]

    def create(self, resource_type: str, data: dict[str, Any], *, extra: dict[str, Any],
               idempotency_key: str | None = None, by_api: bool = True,
               origin: str | None = None, cause: str | None = None,
               description: str | None = None) -> Record:
        """Store a new resource and emit its ``created`` event (if its type has one)."""
        with self.store.lock:
            if resource_type in INITIAL:
                data = {**data, "status": self.initial_status(resource_type)}
            announced = CREATED.get(resource_type)
            if announced is not None:
                allowed = CREATED_OTHERS.get(resource_type, frozenset()) | {announced[:2]}
                _check_pair(resource_type, "created", origin or announced[0],
                            cause or announced[1], allowed)
            record = self.store.insert(resource_type, data, idempotency_key=idempotency_key,
                                       by_api=by_api, extra=extra)
            if announced is not None:
                self.emit(record, "created", origin or announced[0], cause or announced[1],
                          description or announced[2])
            return record

    def apply(self, record: Record, action: str, *, origin: str | None = None,
              cause: str | None = None, description: str | None = None,
              details: dict[str, Any] | None = None, metadata: dict[str, str] | None = None,
              reason: str = "invalid_state_transition") -> Record:
        """Perform ``action`` on ``record``; returns the event (``None`` for a silent step).
        422 if illegal; ``ValueError`` for an (origin, cause) pair the tables do not list."""
        with self.store.lock:
            table = TRANSITIONS.get(record.type, {})
            transition = table.get(action)
            if transition is None:
                raise invalid_state(reason, f"{record.type} have no action '{action}'")
            if not transition.silent:
                origin, cause = origin or transition.origin, cause or transition.cause
                _check_pair(record.type, action, origin, cause, transition.details)
            if record.status not in transition.sources or not self._allowed(record, action):
                raise invalid_state(
                    reason,
                    f"Cannot apply '{action}' to {SINGULAR[record.type]} {record.id} "
                    f"with status {record.status}",
                )
            previous = record.status
            if transition.target is not None:
                record.data["status"] = transition.target
            links = self._on_change(record, action, previous)
            if transition.silent:
                self._after_change(record, action)
                return None
            assert origin is not None and cause is not None
            event = self.emit(record, action, origin, cause,
                              description or transition.description,
                              _details(transition, origin, details), metadata, links)
            self._after_change(record, action)
            return event

    def happy_action(self, record: Record) -> str | None:
        """The next happy-path action for ``record`` (``None`` if final for advancing)."""
        if record.extra.get("removed"):
            return None
        action = HAPPY_PATH.get(record.type, {}).get(record.status or "")
        if action == "active" and record.extra.get("reinstating"):
            return "reinstated"
        return action

    def happy_statuses(self, record: Record) -> list[str]:
        """Statuses ``record`` would pass through following the happy path."""
        seen: list[str] = []
        status = record.status or ""
        path = HAPPY_PATH.get(record.type, {})
        while status in path and status not in seen:
            seen.append(status)
            status = TRANSITIONS[record.type][path[status]].target or status
        seen.append(status)
        return seen

    def step(self, record: Record) -> tuple[bool, Record | None]:
        """One happy-path step: whether one was taken, and its event (``None`` when silent)."""
        action = self.happy_action(record)
        if not action:
            return False, None
        return True, self.apply(record, action)

    def advance(self, resource_type: str, ids: list[str] | None, to: str | None,
                steps: int | None) -> dict[str, Any]:
        """Move resources along the happy path (to status ``to`` or ``steps`` steps)."""
        with self.store.lock:
            if resource_type not in HAPPY_PATH:
                raise invalid_state("invalid_resource_type",
                                    f"{resource_type} have no lifecycle to advance")
            if ids:
                candidates = [self.store.get(resource_type, i, allow_removed=True) for i in ids]
            else:
                candidates = [r for r in self.store.all(resource_type) if self.happy_action(r)]
            unreachable = []
            if to is not None:
                unreachable = [r.id for r in candidates if to not in self.happy_statuses(r)]
                candidates = [r for r in candidates if r.id not in unreachable]
            rounds = steps if steps is not None else MAX_ADVANCE_ROUNDS
            if to is None and steps is None:
                rounds = 1
            events: list[str] = []
            for _ in range(rounds):
                progressed = False
                for record in candidates:
                    if to is not None and record.status == to:
                        continue
                    stepped, event = self.step(record)
                    progressed = progressed or stepped
                    if event is not None:
                        events.append(event.id)
                if not progressed:
                    break
            return {
                "resources": [{"id": r.id, "status": r.status} for r in candidates],
                "events": events,
                "unreachable": unreachable,
            }

    def collect(self, subscription: Record, amount: int | None = None,
                charge_date: str | None = None) -> Record:
        """Create the subscription's next payment gateway-side (``origin: gocardless``)."""
        with self.store.lock:
            if subscription.status != "active":
                raise invalid_state("subscription_not_active",
                                    f"Subscription {subscription.id} is {subscription.status}")
            mandate = self.store.get("mandates", subscription.data["links"]["mandate"])
            if mandate.status not in MANDATE_CHARGEABLE:
                raise invalid_state("mandate_is_inactive",
                                    f"Mandate {mandate.id} is {mandate.status}")
            sub = subscription.data
            collected = subscription.extra.get("collected", 0)
            if charge_date is None:
                charge_date = schedule.occurrence(sub, collected).isoformat()
                earliest = self.next_possible_charge_date(mandate)
                if earliest is not None and charge_date < earliest:
                    charge_date = earliest
            payment = self.create(
                "payments",
                {
                    "amount": amount if amount is not None else sub["amount"],
                    "amount_refunded": 0,
                    "currency": sub["currency"],
                    "charge_date": charge_date,
                    "description": sub.get("name"),
                    "reference": sub.get("payment_reference"),
                    "scheme": "bacs",
                    "retry_if_possible": sub.get("retry_if_possible", False),
                    "metadata": {},
                    "links": {"mandate": mandate.id, "subscription": subscription.id,
                              "creditor": self.store.creditor_id},
                },
                extra={"customer": mandate.data["links"]["customer"]},
                by_api=False, origin=GOCARDLESS, cause="payment_created",
                description="Payment created by a subscription.",
            )
            subscription.extra["collected"] = collected + 1
            self._payment_created(subscription, payment)
            sub["upcoming_payments"] = schedule.upcoming(sub, collected + 1)
            count = sub.get("count")
            if count is not None and collected + 1 >= count:
                self.apply(subscription, "finished")
            return payment

    def next_possible_charge_date(self, mandate: Record) -> str | None:
        """Earliest charge date: 3 working days once active, 5 while being set up."""
        if mandate.status not in MANDATE_CHARGEABLE:
            return None
        days = 3 if mandate.status == "active" else 5
        return add_business_days(self.clock.today(), days).isoformat()

    def refresh(self, record: Record) -> None:
        """Recompute derived fields that depend on today's date before a record is shown."""
        if record.type == "mandates":
            record.data["next_possible_charge_date"] = self.next_possible_charge_date(record)

    def _payment_created(self, subscription: Record, payment: Record) -> None:
        transition = TRANSITIONS["subscriptions"]["payment_created"]
        links = {"payment": payment.id}
        self.emit(subscription, "payment_created", transition.origin, transition.cause,
                   transition.description, {}, None, links)

    def _allowed(self, record: Record, action: str) -> bool:
        if action == "late_failure_settled":
            return bool(record.extra.get("late_failure")) and not record.extra.get("settled")
        if action == "chargeback_settled":
            return not record.extra.get("chargeback_settled")
        if action == "reinstated" and record.status == "submitted":
            return bool(record.extra.get("reinstating"))
        return True

    def _on_change(self, record: Record, action: str, previous: str | None) -> dict[str, str]:
        """State bookkeeping done before the event is emitted (so the event links see it);
        returns links the event carries beyond its resource's own."""
        extra = record.extra
        if record.type == "payments":
            if action == "failed" and previous in ("confirmed", "paid_out"):
                extra["late_failure"] = True
            elif action == "late_failure_settled":
                extra["settled"] = True
            elif action == "chargeback_settled":
                extra["chargeback_settled"] = True
            elif action in ("paid_out", "chargeback_cancelled"):
                record.data["links"]["payout"] = self._join_payout(record)
        elif record.type == "mandates":
            if action == "resubmission_requested":
                extra["reinstating"] = True
            elif action in ("active", "reinstated"):
                extra.pop("reinstating", None)
            elif action == "replaced":
                replacement = self._replacement(record)
                record.data["links"]["new_mandate"] = replacement.id
                self.refresh(record)
                return {"new_mandate": replacement.id}
            self.refresh(record)
        return {}

    def _replacement(self, mandate: Record) -> Record:
        """The mandate that replaces ``mandate``: active at once on the same bank account.
        GoCardless documents no event for it; the old mandate's ``replaced`` names it."""
        data = {key: value for key, value in mandate.data.items()
                if key not in ("id", "created_at", "links", "reference")}
        data.update({"status": "active", "metadata": {},
                     "reference": "PAYBRIDGE-" + random_code(8),
                     "links": {k: v for k, v in mandate.data["links"].items()
                               if k != "new_mandate"}})
        replacement = self.store.insert("mandates", data, by_api=False)
        self.store.mandate_references[data["reference"]] = replacement.id
        self.refresh(replacement)
        return replacement

    def _after_change(self, record: Record, action: str) -> None:
        """Side effects whose events must follow the triggering event."""
        # A replaced mandate's payments are not cancelled: the new mandate carries on.
        if record.type == "mandates" and record.status in MANDATE_CASCADE and action in (
            "cancelled", "failed", "expired", "blocked"
        ):
            self._cascade_mandate(record)
        elif record.type == "payouts" and action == "paid" and self.store.open_payout == record.id:
            self.store.open_payout = None

    def _cascade_mandate(self, mandate: Record) -> None:
        cause = CASCADE_CAUSE.get(mandate.status or "", CASCADE_DEFAULT_CAUSE)
        description = f"The mandate for this resource was {mandate.status}."
        for payment in self.store.all("payments"):
            if payment.data["links"].get("mandate") == mandate.id and (
                payment.status in PAYMENT_CANCELLABLE
            ):
                self.apply(payment, "cancelled", origin=GOCARDLESS, cause=cause,
                           description=description)
        for subscription in self.store.all("subscriptions"):
            if subscription.data["links"].get("mandate") == mandate.id and (
                subscription.status in SUBSCRIPTION_CANCELLABLE
            ):
                self.apply(subscription, "cancelled", origin=GOCARDLESS, cause=cause,
                           description=description)

    def _join_payout(self, payment: Record) -> str:
        """Add a paid-out payment to the open payout, creating one if needed."""
        payout = self.store.find("payouts", self.store.open_payout or "")
        if payout is None or payout.status != "pending":
            payout = self.create(
                "payouts",
                {
                    "amount": 0,
                    "arrival_date": add_business_days(self.clock.today(), 1).isoformat(),
                    "currency": "GBP",
                    "deducted_fees": 0,
                    "payout_type": "merchant",
                    "reference": "PAYBRIDGE-" + random_code(8),
                    "metadata": {},
                    "links": {"creditor": self.store.creditor_id,
                              "creditor_bank_account": "BA" + self.store.creditor_id[2:]},
                },
                extra={}, by_api=False,
            )
            self.store.open_payout = payout.id
        payout.data["amount"] += payment.data["amount"] - payment.data.get("amount_refunded", 0)
        return payout.id

    def emit(self, record: Record, action: str, origin: str, cause: str, description: str,
              details: dict[str, Any] | None = None, metadata: dict[str, str] | None = None,
              links: dict[str, str] | None = None) -> Record:
        """Emit an event about ``record`` with its parent links and standard details."""
        event_links = {SINGULAR[record.type]: record.id}
        own = record.data.get("links") or {}
        for name in PARENT_LINKS:
            value = own.get(name) or record.extra.get(name)
            if value and name != SINGULAR[record.type]:
                event_links[name] = value
        event_links.update(links or {})
        event_details: dict[str, Any] = {"origin": origin, "cause": cause,
                                         "description": description}
        if origin == BANK:
            event_details["scheme"] = "bacs"
        event_details.update(details or {})
        return self.store.emit(record.type, action, event_links, event_details, metadata)


def _check_pair(resource_type: str, action: str, origin: str, cause: str,
                allowed: frozenset[tuple[str, str]]) -> None:
    if (origin, cause) not in allowed:
        choices = ", ".join(f"{o}/{c}" for o, c in sorted(allowed))
        raise ValueError(f"{resource_type} {action}: GoCardless documents no origin/cause "
                         f"{origin}/{cause}; one of {choices}")


def _details(transition: Transition, origin: str,
             details: dict[str, Any] | None) -> dict[str, Any]:
    """The step's extra details with the caller's on top; bank-only fields only from a bank."""
    merged = {**transition.extra, **(details or {})}
    if origin != BANK:
        merged.pop("reason_code", None)
    return {k: v for k, v in merged.items() if v is not None}
