"""Switchable faults, the daily API allocation, and the org's counters.

Nothing here locks; the org holds its lock around every use.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Kinds of API call the counters tell apart.
CALL_KINDS = (
    "oauth",
    "versions",
    "limits",
    "describe",
    "sobject_create",
    "sobject_get",
    "sobject_update",
    "sobject_delete",
    "collections_create",
    "collections_update",
    "collections_get",
    "collections_delete",
    "query",
    "bulk2_create",
    "bulk2_job",
    "bulk2_results",
    "get_updated",
    "get_deleted",
    "other",
)


@dataclass
class Faults:
    """Faults switched on at run time through ``/sim/faults``.

    ``unable_to_lock_row`` counts the record writes still to fail; ``daily_limit`` is the
    org's allocation (changing it does not reset the usage).
    """

    default_daily_limit: int
    request_limit_exceeded: bool = False
    unable_to_lock_row: int = 0
    latency_ms: int = 0
    daily_limit: int = 0
    # How long a Bulk API 2.0 query job takes to complete once created (sim.salesforce.bulk_jobs).
    bulk_query_ms: int = 0

    def __post_init__(self) -> None:
        if not self.daily_limit:
            self.daily_limit = self.default_daily_limit

    def take_lock_failure(self) -> bool:
        """True (and one fewer pending) when the next write must fail to lock its row."""
        if self.unable_to_lock_row > 0:
            self.unable_to_lock_row -= 1
            return True
        return False

    def update(self, body: dict[str, Any]) -> None:
        """Apply the known keys of a ``POST /sim/faults`` body; ``ValueError`` if malformed."""
        if "request_limit_exceeded" in body:
            self.request_limit_exceeded = _as_bool(body["request_limit_exceeded"])
        if "unable_to_lock_row" in body:
            self.unable_to_lock_row = _as_count(body["unable_to_lock_row"], "unable_to_lock_row")
        if "latency_ms" in body:
            self.latency_ms = _as_count(body["latency_ms"], "latency_ms")
        if "daily_limit" in body:
            self.daily_limit = _as_count(body["daily_limit"], "daily_limit")
        if "bulk_query_ms" in body:
            self.bulk_query_ms = _as_count(body["bulk_query_ms"], "bulk_query_ms")

    def clear(self) -> None:
        self.request_limit_exceeded = False
        self.unable_to_lock_row = 0
        self.latency_ms = 0
        self.daily_limit = self.default_daily_limit
        self.bulk_query_ms = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "request_limit_exceeded": self.request_limit_exceeded,
            "unable_to_lock_row": self.unable_to_lock_row,
            "latency_ms": self.latency_ms,
            "daily_limit": self.daily_limit,
            "bulk_query_ms": self.bulk_query_ms,
        }


def _as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("request_limit_exceeded must be true or false")
    return value


def _as_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0")
    return value


@dataclass
class Stats:
    """What the org has been asked to do since start (or the last reset).

    ``api_used`` is the part of the daily allocation consumed: every authenticated data API
    call that was not refused for the limit itself. OAuth calls are counted by kind but do
    not consume the allocation, as on a real org.
    """

    calls: Counter[str] = field(default_factory=Counter)
    api_used: int = 0
    collections_records: int = 0
    query_records: int = 0

    def reset(self) -> None:
        self.calls.clear()
        self.api_used = 0
        self.collections_records = 0
        self.query_records = 0

    def as_json(self, daily_limit: int) -> dict[str, Any]:
        return {
            "api_calls_total": sum(self.calls.values()),
            "api_calls": {kind: self.calls.get(kind, 0) for kind in CALL_KINDS},
            "collections_records_written": self.collections_records,
            "query_records_returned": self.query_records,
            "api_usage": {"used": self.api_used, "limit": daily_limit},
        }
