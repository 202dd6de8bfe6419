"""One emulated org: schema, records, users, faults, counters and the trigger, behind one lock.

``Org.write`` is the single path every record change takes (REST, Collections and the
control API), so the lock-row fault, allOrNone and the trigger behave the same everywhere.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sim.salesforce import metadata_source, validation
from sim.salesforce.auth import Auth, User
from sim.salesforce.bulk_jobs import QueryJob
from sim.salesforce.config import SimConfig
from sim.salesforce.errors import SfError
from sim.salesforce.faults import Faults, Stats
from sim.salesforce.modstamp import late_stamp
from sim.salesforce.outbound import OutboundSender
from sim.salesforce.schema import IdFactory, Schema
from sim.salesforce.store import Change, Plan, RecordStore
from sim.salesforce.trigger import TriggerDispatcher, TriggerSettings

MAX_CURSORS = 200


@dataclass
class WriteRequest:
    """One record write: ``operation`` is insert, update or delete."""

    operation: str
    sobject: str
    record_id: str | None = None
    body: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class WriteResult:
    id: str | None
    error: SfError | None = None

    def as_json(self) -> dict[str, Any]:
        if self.error is None:
            return {"id": self.id, "success": True, "errors": []}
        return {"id": self.id, "success": False, "errors": [self.error.result_error()]}


def _rolled_back() -> SfError:
    return SfError(
        400,
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "Record rolled back because not all records were valid and the request was using "
        "AllOrNone header",
    )


class Org:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.started_at = datetime.now(UTC)
        self.schema = (Schema.declared(metadata_source.load(config.metadata_dir))
                       if config.metadata_dir else Schema.declared())
        self.ids = IdFactory()
        self.store = RecordStore(self.schema, self.ids)
        self.auth = Auth(config, self.ids)
        self.faults = Faults(default_daily_limit=config.daily_limit)
        self.stats = Stats()
        self.outbound = OutboundSender(self.auth.org_id, self.ids.new("04k")[:15] + "AAA")
        self.trigger = TriggerDispatcher(
            TriggerSettings(
                url=config.trigger_url,
                api_key=config.trigger_api_key,
                attempts=config.trigger_attempts,
                backoff=config.trigger_backoff,
                backoff_max=config.trigger_backoff_max,
                timeout=config.trigger_timeout,
            )
        )
        # Query locators for results longer than one batch: locator -> (total, rows left).
        self.cursors: OrderedDict[str, tuple[int, list[dict[str, Any]]]] = OrderedDict()
        # Bulk API 2.0 query jobs by id (sim.salesforce.bulk2).
        self.query_jobs: dict[str, QueryJob] = {}

    def close(self) -> None:
        self.trigger.close()

    # -- writes ---------------------------------------------------------------------------------

    def _plan(self, request: WriteRequest, with_faults: bool) -> Plan:
        sobject = self.schema.get(request.sobject)
        if sobject is None:
            raise SfError(
                400, "INVALID_TYPE", f"sObject type '{request.sobject}' is not supported."
            )

        def lock_fault() -> bool:
            return with_faults and self.faults.take_lock_failure()

        if request.operation == "insert":
            return self.store.plan_insert(sobject, request.body, lock_fault)
        if not request.record_id:
            raise SfError(
                400, "MISSING_ARGUMENT", f"Id not specified in an {request.operation} call"
            )
        if request.operation == "update":
            return self.store.plan_update(sobject, request.record_id, request.body, lock_fault)
        return self.store.plan_delete(sobject, request.record_id, lock_fault)

    def _parse(self, requests: list[WriteRequest]) -> None:
        """The request's JSON deserialised into typed fields: a value of the wrong type
        fails the whole call (JSON_PARSER_ERROR), before any record is planned."""
        for request in requests:
            sobject = self.schema.get(request.sobject)
            problem = validation.parse_error(sobject, request.body) if sobject else None
            if problem is not None:
                raise problem

    def write(
        self,
        requests: list[WriteRequest],
        user: User,
        *,
        all_or_none: bool = False,
        with_faults: bool = True,
    ) -> list[WriteResult]:
        """Perform the writes of one API call, in order; one result per request.

        A value of the wrong JSON type raises JSON_PARSER_ERROR for the whole call. With
        ``all_or_none`` a single failure leaves everything untouched and fails every
        other record with ALL_OR_NONE_OPERATION_ROLLED_BACK. Changes by a regular user go to
        the trigger together, as one call's batch; the integration user's never do.
        """
        with self.lock:
            self._parse(requests)
            results: list[WriteResult] = []
            plans: list[Plan | None] = []
            for request in requests:
                try:
                    plan = self._plan(request, with_faults)
                except SfError as exc:
                    plans.append(None)
                    results.append(WriteResult(request.record_id, exc))
                else:
                    plans.append(plan)
                    keep_id = plan.record_id if plan.operation != "insert" else None
                    results.append(WriteResult(keep_id))
            if all_or_none and any(r.error for r in results):
                for result in results:
                    if result.error is None:
                        result.error = _rolled_back()
                return results
            changes: list[Change] = []
            stamp = late_stamp(self.store)
            for plan, result in zip(plans, results, strict=True):
                if plan is None:
                    continue
                try:
                    changes.append(self.store.apply(plan, user.id, stamp))
                except SfError as exc:
                    result.error = exc
                else:
                    result.id = plan.record_id
            if not user.integration:
                self.trigger.submit([c.as_json() for c in changes if c.logical])
                mine = [c for c in changes if c.logical]
                self.outbound.submit(
                    [{"sobject": self.store.find(c.record_id).sobject.name,  # type: ignore[union-attr]
                      "operation": c.operation, "fields": {"Id": c.record_id, **c.fields}}
                     for c in mine], [self.ids.new("04l")[:15] + "AAA" for _ in mine])
            return results

    def write_one(self, request: WriteRequest, user: User, *, with_faults: bool = True) -> str:
        """A single-record write; returns the record id or raises its ``SfError``."""
        result = self.write([request], user, with_faults=with_faults)[0]
        if result.error is not None:
            raise result.error
        return result.id or ""

    # -- query locators ----------------------------------------------------------------------

    def save_cursor(self, total: int, rows: list[dict[str, Any]]) -> str:
        """Park the rest of a query result; caller holds the lock."""
        locator = self.ids.new("01g")[:15]
        self.cursors[locator] = (total, rows)
        while len(self.cursors) > MAX_CURSORS:
            self.cursors.popitem(last=False)
        return locator

    # -- control -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget records, faults, counters, cursors and the trigger log; keep sessions."""
        with self.lock:
            self.store.clear()
            self.faults.clear()
            self.stats.reset()
            self.cursors.clear()
            self.query_jobs.clear()
            self.trigger.clear_log()
            self.trigger.reset_counters()

