"""In-memory resource store: ids, records, events, idempotency keys and creation counters.

Contract:
- All state lives in one ``Store`` guarded by ``store.lock`` (re-entrant). Callers that
  read-modify-write hold the lock for the whole operation.
- Each resource type keeps its records in creation order; since ``created_at`` comes from a
  strictly increasing clock, creation order is ``created_at`` order, which list endpoints,
  cursors and ``created_at`` filters rely on.
- Bank details live only in ``Store.bank_details`` (a private map that nothing serialises).
- ``emit`` appends an event and hands it to the ``on_event`` sink (webhook delivery).
"""

from __future__ import annotations

import copy
import secrets
import string
import threading
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock, format_us
from .errors import ApiError, gone, idempotent_conflict, not_found

PREFIXES: dict[str, str] = {
    "customers": "CU",
    "customer_bank_accounts": "BA",
    "mandates": "MD",
    "payments": "PM",
    "subscriptions": "SB",
    "refunds": "RF",
    "payouts": "PO",
    "events": "EV",
}
RESOURCE_TYPES = tuple(PREFIXES)
SINGULAR: dict[str, str] = {
    "customers": "customer",
    "customer_bank_accounts": "customer_bank_account",
    "mandates": "mandate",
    "payments": "payment",
    "subscriptions": "subscription",
    "refunds": "refund",
    "payouts": "payout",
    "events": "event",
}
_ALPHABET = string.ascii_uppercase + string.digits


def random_code(length: int) -> str:
    """Random uppercase alphanumerics (ids, references)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass
class Record:
    """A stored resource: ``data`` is exactly its public JSON, ``extra`` is private state."""

    type: str
    id: str
    created_us: int
    data: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str | None:
        return self.data.get("status")

    def public(self) -> dict[str, Any]:
        """A deep copy of the public representation, safe to serialise outside the lock."""
        return copy.deepcopy(self.data)


@dataclass(frozen=True, repr=False)
class BankDetails:
    """Bank details as submitted. Never serialised, logged or returned."""

    account_number: str | None
    branch_code: str | None
    iban: str | None

    def __repr__(self) -> str:
        # Keeps the values out of any traceback, debugger or log line that shows the object.
        return "BankDetails(<redacted>)"


@dataclass
class Page:
    records: list[Record]
    before: str | None
    after: str | None


class Store:
    """All emulator resources and events, in memory."""

    def __init__(self, clock: Clock, on_event: Callable[[dict[str, Any]], None]) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self._on_event = on_event
        self.reset()

    def reset(self) -> None:
        """Forget every resource, event, idempotency key and counter."""
        with self.lock:
            self._order: dict[str, list[Record]] = {t: [] for t in RESOURCE_TYPES}
            self._keys: dict[str, list[int]] = {t: [] for t in RESOURCE_TYPES}
            self._by_id: dict[str, dict[str, tuple[int, Record]]] = {t: {} for t in RESOURCE_TYPES}
            self._idempotency: dict[tuple[str, str], str] = {}
            self.bank_details: dict[str, BankDetails] = {}
            self.bank_fingerprints: dict[tuple[str, str], str] = {}
            self.mandate_references: dict[str, str] = {}
            self.creates: Counter[str] = Counter()
            self.gateway_creates: Counter[str] = Counter()
            self.duplicates_prevented: Counter[str] = Counter()
            self.crm_ids: dict[str, Counter[str]] = defaultdict(Counter)
            self.creditor_id = "CR" + random_code(12)
            self.open_payout: str | None = None

    def new_id(self, resource_type: str) -> str:
        """A fresh GoCardless-style id (prefix + 12 uppercase alphanumerics)."""
        while True:
            candidate = PREFIXES[resource_type] + random_code(12)
            if candidate not in self._by_id[resource_type]:
                return candidate

    def check_idempotency(self, resource_type: str, key: str | None) -> None:
        """Raise the 409 conflict if ``key`` already created a resource of this type."""
        if not key:
            return
        existing = self._idempotency.get((resource_type, key))
        if existing is not None:
            self.duplicates_prevented[resource_type] += 1
            raise idempotent_conflict(existing)

    def insert(self, resource_type: str, data: dict[str, Any], *,
               idempotency_key: str | None = None, by_api: bool = True,
               extra: dict[str, Any] | None = None) -> Record:
        """Store a new resource; assigns ``id`` and ``created_at`` and counts the creation.

        ``by_api`` distinguishes creates requested over the API from gateway-side ones
        (subscription payments, payouts, events) in the statistics.
        """
        with self.lock:
            resource_id = self.new_id(resource_type)
            created_us = self.clock.stamp_us()
            body = {"id": resource_id, "created_at": format_us(created_us), **data}
            record = Record(resource_type, resource_id, created_us, body, extra or {})
            index = len(self._order[resource_type])
            self._order[resource_type].append(record)
            self._keys[resource_type].append(created_us)
            self._by_id[resource_type][resource_id] = (index, record)
            if resource_type == "events":
                return record
            if idempotency_key:
                self._idempotency[(resource_type, idempotency_key)] = resource_id
            if by_api:
                self.creates[resource_type] += 1
                crm_id = (data.get("metadata") or {}).get("crm_id")
                if crm_id:
                    self.crm_ids[crm_id][resource_type] += 1
            else:
                self.gateway_creates[resource_type] += 1
            return record

    def find(self, resource_type: str, resource_id: str) -> Record | None:
        entry = self._by_id.get(resource_type, {}).get(resource_id)
        return entry[1] if entry else None

    def get(self, resource_type: str, resource_id: str, allow_removed: bool = False) -> Record:
        """The record, or 404 (410 for a removed customer unless ``allow_removed``)."""
        record = self.find(resource_type, resource_id)
        if record is None:
            raise not_found(resource_type, resource_id)
        if record.extra.get("removed") and not allow_removed:
            raise gone(resource_type, resource_id)
        return record

    def all(self, resource_type: str) -> list[Record]:
        return list(self._order[resource_type])

    def emit(self, resource_type: str, action: str, links: dict[str, str],
             details: dict[str, Any], metadata: dict[str, str] | None = None) -> Record:
        """Record an event and pass it on for webhook delivery."""
        with self.lock:
            event = self.insert(
                "events",
                {
                    "resource_type": resource_type,
                    "action": action,
                    "links": {k: v for k, v in links.items() if v},
                    "details": details,
                    "metadata": dict(metadata or {}),
                },
            )
            self._on_event(event.data)
            return event

    def page(self, resource_type: str, match: Callable[[Record], bool], *, limit: int,
             after: str | None = None, before: str | None = None, descending: bool = True,
             created_from_us: int | None = None, created_to_us: int | None = None) -> Page:
        """One page of a list endpoint.

        Records are shown newest first (``descending``, the GoCardless default) or oldest
        first. ``after`` continues past the given id in display order, ``before`` returns the
        page just ahead of it. ``created_from_us``/``created_to_us`` are an inclusive and an
        exclusive bound on ``created_at``; they are applied by binary search so catch-up
        polling of a large event log stays cheap.
        """
        with self.lock:
            records = self._order[resource_type]
            keys = self._keys[resource_type]
            lo = 0 if created_from_us is None else bisect_left(keys, created_from_us)
            hi = len(keys) if created_to_us is None else bisect_right(keys, created_to_us - 1)
            if descending:
                if after is not None:
                    hi = min(hi, self._cursor_index(resource_type, after, "after"))
                if before is not None:
                    lo = max(lo, self._cursor_index(resource_type, before, "before") + 1)
                scan_down = before is None
            else:
                if after is not None:
                    lo = max(lo, self._cursor_index(resource_type, after, "after") + 1)
                if before is not None:
                    hi = min(hi, self._cursor_index(resource_type, before, "before"))
                scan_down = before is not None
            indices = range(hi - 1, lo - 1, -1) if scan_down else range(lo, hi)
            found: list[Record] = []
            more = False
            for position in indices:
                record = records[position]
                if not match(record):
                    continue
                if len(found) == limit:
                    more = True
                    break
                found.append(record)
            if before is None:
                next_after = found[-1].id if more and found else None
                next_before = found[0].id if after is not None and found else None
                return Page(found, next_before, next_after)
            found.reverse()
            return Page(found, found[0].id if more and found else None,
                        found[-1].id if found else None)

    def _cursor_index(self, resource_type: str, cursor: str, name: str) -> int:
        entry = self._by_id[resource_type].get(cursor)
        if entry is None:
            raise ApiError(
                422, "validation_failed", "Validation failed",
                [{"field": name, "message": "is not a valid cursor",
                  "request_pointer": "/" + name}],
            )
        return entry[0]
