"""Subscription charge-date schedules (the emulator's simplified Bacs calendar).

Occurrence ``i`` of a subscription falls ``i * interval`` weeks, months or years after its
``start_date`` (monthly/yearly ones on ``day_of_month``, -1 meaning the last day), rolled
forward off weekends. Bank holidays are not modelled.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from .clock import add_months, roll_to_business_day

UPCOMING_SHOWN = 10


def first_charge_date(earliest: date, day_of_month: int | None) -> date:
    """The first date on or after ``earliest`` matching ``day_of_month`` (if any)."""
    if day_of_month is None:
        return roll_to_business_day(earliest)
    month_start = earliest.replace(day=1)
    candidate = add_months(month_start, 0, day_of_month)
    if candidate < earliest:
        candidate = add_months(month_start, 1, day_of_month)
    return candidate


def occurrence(subscription: dict[str, Any], index: int) -> date:
    """The nominal charge date of occurrence ``index`` (0-based), rolled off weekends."""
    start = date.fromisoformat(subscription["start_date"])
    interval = int(subscription.get("interval") or 1)
    unit = subscription["interval_unit"]
    day_of_month = subscription.get("day_of_month")
    if unit == "weekly":
        nominal = start + timedelta(weeks=interval * index)
    elif unit == "monthly":
        nominal = add_months(start, interval * index, day_of_month)
    else:
        nominal = add_months(start, 12 * interval * index, day_of_month)
    return roll_to_business_day(nominal)


def upcoming(subscription: dict[str, Any], collected: int) -> list[dict[str, Any]]:
    """Up to ten future ``{"charge_date", "amount"}`` entries after ``collected`` payments."""
    count = subscription.get("count")
    end_date = subscription.get("end_date")
    entries: list[dict[str, Any]] = []
    index = collected
    while len(entries) < UPCOMING_SHOWN:
        if count is not None and index >= count:
            break
        charge_date = occurrence(subscription, index)
        if end_date is not None and charge_date.isoformat() > end_date:
            break
        entries.append({"charge_date": charge_date.isoformat(), "amount": subscription["amount"]})
        index += 1
    return entries
