"""API operations on collections: payments, subscriptions and refunds.

Rules the emulator enforces, as GoCardless does for Bacs:
- amounts are integer pence > 0 and the currency is GBP;
- a payment's ``charge_date`` (weekends rolled forward) and a subscription's ``start_date``
  must not be before the mandate's ``next_possible_charge_date``;
- payments and subscriptions need a mandate that can still be charged (422
  ``mandate_is_inactive`` otherwise);
- a payment is cancellable only before submission (422 ``cancellation_failed``) and
  retryable only once failed, at most 3 times (422 ``retry_failed``);
- a refund needs a confirmed or paid-out payment, must fit in what is left to refund, and
  ``total_amount_confirmation`` must equal everything refunded including this refund.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from . import schedule
from .clock import roll_to_business_day
from .engine import Engine
from .errors import invalid_state
from .lifecycles import PAYMENT_CANCELLABLE
from .payers import chargeable_mandate, require_chargeable
from .store import Record
from .validation import Validator

MAX_PAYMENT_RETRIES = 3
PAYMENT_REFERENCE_MAX = 10
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
SUBSCRIPTION_OPEN = ("pending_customer_approval", "active", "paused")


def _not_before_earliest(engine: Engine, check: Validator, field: str, value: date | None,
                         mandate: Record | None) -> None:
    if value is None or mandate is None:
        return
    earliest = engine.next_possible_charge_date(mandate)
    if earliest is not None and value.isoformat() < earliest:
        check.add(field, "must be on or after the mandate's next_possible_charge_date")


def create_payment(engine: Engine, data: dict[str, Any], key: str | None) -> Record:
    store = engine.store
    with store.lock:
        store.check_idempotency("payments", key)
        check = Validator("payments", data)
        amount = check.integer("amount", required=True, minimum=1)
        currency = check.currency()
        charge_date = check.date("charge_date")
        description = check.string("description", max_len=255)
        reference = check.string("reference", max_len=PAYMENT_REFERENCE_MAX)
        retry = check.boolean("retry_if_possible")
        metadata = check.metadata()
        mandate = chargeable_mandate(engine, check)
        if charge_date is not None:
            charge_date = roll_to_business_day(charge_date)
        _not_before_earliest(engine, check, "charge_date", charge_date, mandate)
        check.check()
        assert mandate is not None
        require_chargeable(mandate)
        when = charge_date.isoformat() if charge_date else engine.next_possible_charge_date(
            mandate)
        public = {
            "amount": amount,
            "amount_refunded": 0,
            "charge_date": when,
            "currency": currency,
            "description": description,
            "reference": reference,
            "scheme": "bacs",
            "retry_if_possible": bool(retry),
            "metadata": metadata,
            "links": {"mandate": mandate.id, "creditor": store.creditor_id},
        }
        return engine.create("payments", public, idempotency_key=key,
                             extra={"customer": mandate.data["links"]["customer"]})


def update_payment(engine: Engine, record: Record, data: dict[str, Any]) -> Record:
    with engine.store.lock:
        check = Validator("payments", data)
        metadata = check.metadata()
        retry = check.boolean("retry_if_possible")
        check.check()
        if "metadata" in data:
            record.data["metadata"] = metadata
        if retry is not None:
            record.data["retry_if_possible"] = retry
        return record


def cancel_payment(engine: Engine, record: Record, metadata: dict[str, str]) -> Record:
    with engine.store.lock:
        if record.status not in PAYMENT_CANCELLABLE:
            raise invalid_state(
                "cancellation_failed",
                f"This payment cannot be cancelled because its status is {record.status}",
            )
        engine.apply(record, "cancelled", origin="api", metadata=metadata,
                     description="The payment was cancelled at your request.")
        return record


def retry_payment(engine: Engine, record: Record, data: dict[str, Any]) -> Record:
    with engine.store.lock:
        if record.status != "failed":
            raise invalid_state("retry_failed",
                                f"Only failed payments can be retried; status is {record.status}")
        if record.extra.get("retries", 0) >= MAX_PAYMENT_RETRIES:
            raise invalid_state("retry_failed", "This payment has been retried 3 times already")
        check = Validator("data", data)
        charge_date = check.date("charge_date")
        metadata = check.metadata()
        mandate = engine.store.get("mandates", record.data["links"]["mandate"])
        if charge_date is not None:
            charge_date = roll_to_business_day(charge_date)
        _not_before_earliest(engine, check, "charge_date", charge_date, mandate)
        check.check()
        require_chargeable(mandate)
        record.extra["retries"] = record.extra.get("retries", 0) + 1
        record.extra.pop("late_failure", None)
        record.data["charge_date"] = (
            charge_date.isoformat() if charge_date else engine.next_possible_charge_date(mandate)
        )
        engine.apply(record, "resubmission_requested", metadata=metadata)
        return record


def _subscription_fields(check: Validator, creating: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if creating or "amount" in check.data:
        values["amount"] = check.integer("amount", required=True, minimum=1)
    for name, limit in (("name", 255), ("payment_reference", PAYMENT_REFERENCE_MAX)):
        if name in check.data:
            values[name] = check.string(name, max_len=limit)
    if "retry_if_possible" in check.data:
        values["retry_if_possible"] = check.boolean("retry_if_possible")
    if creating or "metadata" in check.data:
        values["metadata"] = check.metadata()
    return values


def create_subscription(engine: Engine, data: dict[str, Any], key: str | None) -> Record:
    store = engine.store
    with store.lock:
        store.check_idempotency("subscriptions", key)
        check = Validator("subscriptions", data)
        fields = _subscription_fields(check, creating=True)
        currency = check.currency()
        unit = check.choice("interval_unit", ("weekly", "monthly", "yearly"), required=True)
        interval = check.integer("interval", minimum=1) or 1
        day_of_month = check.integer("day_of_month", minimum=-1, maximum=28)
        if day_of_month == 0:
            check.add("day_of_month", "must be between 1 and 28, or -1")
        if day_of_month is not None and unit == "weekly":
            check.add("day_of_month", "must not be set for weekly subscriptions")
        month = check.choice("month", MONTHS)
        start_date = check.date("start_date")
        end_date = check.date("end_date")
        count = check.integer("count", minimum=1)
        if count is not None and end_date is not None:
            check.add("count", "cannot be combined with end_date")
        mandate = chargeable_mandate(engine, check)
        _not_before_earliest(engine, check, "start_date", start_date, mandate)
        check.check()
        assert mandate is not None and unit is not None
        require_chargeable(mandate)
        if start_date is None:
            earliest = date.fromisoformat(engine.next_possible_charge_date(mandate) or "")
            start_date = schedule.first_charge_date(earliest, day_of_month)
        public: dict[str, Any] = {
            "amount": fields["amount"],
            "currency": currency,
            "name": fields.get("name"),
            "interval_unit": unit,
            "interval": interval,
            "day_of_month": day_of_month,
            "month": month,
            "start_date": start_date.isoformat(),
            "end_date": end_date.isoformat() if end_date else None,
            "count": count,
            "payment_reference": fields.get("payment_reference"),
            "retry_if_possible": bool(fields.get("retry_if_possible")),
            "app_fee": None,
            "earliest_charge_date_after_resume": None,
            "metadata": fields["metadata"],
            "links": {"mandate": mandate.id},
        }
        public["upcoming_payments"] = schedule.upcoming(public, 0)
        return engine.create("subscriptions", public, idempotency_key=key,
                             extra={"customer": mandate.data["links"]["customer"]})


def update_subscription(engine: Engine, record: Record, data: dict[str, Any]) -> Record:
    with engine.store.lock:
        check = Validator("subscriptions", data)
        fields = _subscription_fields(check, creating=False)
        check.check()
        if record.status not in SUBSCRIPTION_OPEN:
            raise invalid_state("subscription_not_active",
                                f"Subscription {record.id} is {record.status}")
        record.data.update(fields)
        record.data["upcoming_payments"] = schedule.upcoming(
            record.data, record.extra.get("collected", 0))
        return record


def pause_subscription(engine: Engine, record: Record, data: dict[str, Any]) -> Record:
    with engine.store.lock:
        check = Validator("data", data)
        check.integer("pause_cycles", minimum=1)
        metadata = check.metadata()
        check.check()
        engine.apply(record, "paused", metadata=metadata, reason="subscription_not_active")
        record.data["upcoming_payments"] = []
        return record


def resume_subscription(engine: Engine, record: Record, metadata: dict[str, str]) -> Record:
    with engine.store.lock:
        engine.apply(record, "resumed", metadata=metadata, reason="subscription_not_paused")
        record.data["upcoming_payments"] = schedule.upcoming(
            record.data, record.extra.get("collected", 0))
        return record


def cancel_subscription(engine: Engine, record: Record, metadata: dict[str, str]) -> Record:
    with engine.store.lock:
        engine.apply(record, "cancelled", metadata=metadata, reason="cancellation_failed")
        record.data["upcoming_payments"] = []
        return record


def create_refund(engine: Engine, data: dict[str, Any], key: str | None) -> Record:
    store = engine.store
    with store.lock:
        store.check_idempotency("refunds", key)
        check = Validator("refunds", data)
        amount = check.integer("amount", required=True, minimum=1)
        confirmation = check.integer("total_amount_confirmation", required=True, minimum=1)
        reference = check.string("reference", max_len=18)
        metadata = check.metadata()
        payment_id = check.link("payment")
        payment = store.find("payments", payment_id) if payment_id else None
        if payment_id and payment is None:
            check.link_error("payment", "does not exist")
        check.check()
        assert payment is not None and amount is not None
        if payment.status not in ("confirmed", "paid_out"):
            raise invalid_state(
                "refund_payment_invalid_state",
                f"Payments can be refunded once confirmed or paid out; status is "
                f"{payment.status}",
            )
        refunded = payment.data.get("amount_refunded", 0)
        if refunded + amount > payment.data["amount"]:
            check.add("amount", "exceeds the amount left to refund on this payment")
        elif confirmation != refunded + amount:
            check.add("total_amount_confirmation",
                      "must equal the total refunded on this payment including this refund")
        check.check()
        payment.data["amount_refunded"] = refunded + amount
        public = {
            "amount": amount,
            "currency": payment.data["currency"],
            "reference": reference,
            "metadata": metadata,
            "links": {"payment": payment.id, "mandate": payment.data["links"]["mandate"]},
        }
        return engine.create("refunds", public, idempotency_key=key, extra={})
