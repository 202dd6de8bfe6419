"""Processing claimed API Queue rows: build the gateway call, interpret the answer, write back.

No transaction is held across a network call: read what the call needs (commit), call, then
record the outcome in a new transaction fenced by the lease's token. No call starts unless
the lease is sure to outlive it (``Lease.ensure``). The rows of one job call the gateway
several at a time (``queues.lanes``), each step in its own transactions, never sharing a
session between threads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from app.clients.errors import (
    InvalidStateError,
    PartnerError,
    PausedError,
    PermanentError,
    TransientError,
)
from app.clients.gateway import GatewayClient
from app.clients.salesforce import CrmWrite, SalesforceClient, paused_for
from app.config import Settings
from app.crm_pause import CrmPause
from app.db import Database
from app.logs import log_context
from app.mapping import (
    GATEWAY_ID_FIELD,
    OBJECTS,
    STATUS_FIELD,
    MappingError,
    ObjectMap,
    status_label,
    to_gateway,
)
from app.records import service as records
from app.records.models import RecordLink
from app.workrows.leases import Lease, LeaseLost
from app.workrows.states import record_failure, record_wait
from queues import service
from queues.lanes import lanes_of, run_lanes
from queues.models import STAGE_GATEWAY_DONE, STAGE_NEW, QueueItem
from queues.recording import NO_CHANGE, Outcome, Outcomes, field_digests

log = logging.getLogger(__name__)
PARENT_WAIT_SECONDS = 5.0
DELETED = "ENTITY_IS_DELETED"  # Salesforce's answer to a write onto a deleted record


class WaitForParent(Exception):
    """A linked record has not reached the gateway yet; try again soon, spend no attempt."""


@dataclass
class QueueContext:
    settings: Settings
    db: Database
    gateway: GatewayClient
    crm: SalesforceClient
    pause: CrmPause
    # Hands row ids of the given records to new jobs (used to wake the next row of a record).
    wake: Callable[[set[tuple[str, str]]], None] = field(default=lambda records: None)
    telemetry: Any = None  # app.telemetry.Telemetry: processed counts and latencies


@dataclass(frozen=True)
class Plan:
    """Everything the gateway call needs, read inside a short transaction."""

    item_id: int
    obj: ObjectMap
    operation: str
    record_id: str
    fields: dict[str, Any]
    previous: dict[str, Any]
    idempotency_key: str
    gateway_id: str | None
    links: dict[tuple[str, str], str]
    # CRM field -> digest of what the gateway last accepted (None: not known)
    sent: dict[str, str] | None = None
    # A resource the record was re-pointed away from, to cancel (QueueItem.retires)
    retires: bool = False


def process_batch(ctx: QueueContext, ids: Sequence[int], lease: Lease) -> dict[str, int]:
    """Run every claimed row through its gateway step, then write back the finished ones.
    The caller keeps the lease renewed (``Heartbeat``) and owns the job boundary."""
    counts = {"gateway_ok": gateway_steps(ctx, ids, lease)}
    counts["written_back"] = write_back(ctx, ids, lease)
    return counts


def gateway_steps(ctx: QueueContext, ids: Sequence[int], lease: Lease) -> int:
    """Every claimed row's gateway call, up to GATEWAY_CONCURRENCY in flight, rows that
    must stay in order sharing a lane (``queues.lanes``); the answers are written in chunks
    (``queues.recording``). Returns how many rows' calls succeeded and were written."""
    plans, lanes = _read_batch(ctx, ids, lease)
    outcomes = Outcomes(ctx, lease)

    def step(item_id: int) -> bool:
        with log_context(item_id=item_id):
            plan = plans.get(item_id)
            if plan is None:  # planned now: its parents' answers must be written first
                outcomes.flush()
            outcome = call_step(ctx, item_id, lease, plan)
            if outcome is None:
                return False
            outcomes.add(outcome)
            return True

    try:
        run_lanes(lanes, step, ctx.settings.gateway_concurrency)
    finally:  # answers already had are written even when a lane failed
        outcomes.flush()
    return outcomes.written


def _read_batch(ctx: QueueContext, ids: Sequence[int],
                lease: Lease) -> tuple[dict[int, Plan], list[list[int]]]:
    """Plans for a whole batch in one transaction (the rows, their links and their parents'
    links, a query each), and the batch's lanes: a row shares one with the rows of the
    records it links to (its parent's insert comes first) and of its own record. A row
    whose parent has no gateway id yet gets no plan here: it is planned on its own when its
    turn comes, since an earlier row of the batch (or another worker) may create that
    parent meanwhile."""
    plans: dict[int, Plan] = {}
    with ctx.db.transaction() as session:
        items = [i for i in service.load_owned_many(session, ids, lease) if i.stage == STAGE_NEW]
        own = _links_of(session, [(i.object, i.record_id) for i in items])
        needs = {i.id: _parents(i) for i in items}
        wanted: dict[str, set[str]] = {}
        for parent_obj, crm_id in (pair for need in needs.values() for pair in need):
            wanted.setdefault(parent_obj, set()).add(crm_id)
        known = {obj: records.gateway_ids(session, obj, crm_ids)
                 for obj, crm_ids in wanted.items()}
        for item in items:
            links = {(o, c): known[o][c] for o, c in needs[item.id] if c in known[o]}
            if len(links) == len(needs[item.id]):
                plans[item.id] = _plan_of(item, own.get((item.object, item.record_id)), links)
    lanes = lanes_of(ids, [(i.id, (i.object, i.record_id), needs[i.id]) for i in items])
    return plans, lanes


def _parents(item: QueueItem) -> set[tuple[str, str]]:
    """(object, CRM id) of every record this row's fields link to."""
    return {(fm.link, str(item.fields[fm.crm])) for fm in OBJECTS[item.object].fields
            if fm.link and item.fields.get(fm.crm)}


def _plan_of(item: QueueItem, link: Any, links: dict[tuple[str, str], str]) -> Plan:
    gateway_id = item.gateway_id if item.retires else (
        (link.gateway_id if link else None) or item.fields.get(GATEWAY_ID_FIELD))
    return Plan(item.id, OBJECTS[item.object], item.operation, item.record_id,
                dict(item.fields), dict(item.previous_fields or {}), item.idempotency_key,
                gateway_id, links, dict(link.sent_digests) if link and link.sent_digests
                else None, retires=item.retires)


def _plan(ctx: QueueContext, item_id: int, lease: Lease) -> Plan | None:
    with ctx.db.transaction() as session:
        item = service.load_owned(session, item_id, lease)
        if item is None or item.stage != STAGE_NEW:
            return None
        link = records.find_link(session, item.object, crm_id=item.record_id)
        links: dict[tuple[str, str], str] = {}
        for parent_obj, crm_id in _parents(item):
            found = records.gateway_ids(session, parent_obj, [crm_id]).get(crm_id)
            if found:
                links[(parent_obj, crm_id)] = found
            elif service.pending_in_records(session, parent_obj, crm_id):
                raise WaitForParent(f"waiting for {parent_obj} {crm_id} to reach the gateway")
        return _plan_of(item, link, links)


def call_step(ctx: QueueContext, item_id: int, lease: Lease,
              plan: Plan | None = None) -> Outcome | None:
    """Make the row's gateway call; its answer when the call succeeded (for the caller to
    write down, ``queues.recording``), None when the row's outcome was recorded here.

    ``plan`` comes from ``_read_batch``; without one the row is planned here."""
    try:
        plan = plan or _plan(ctx, item_id, lease)
        if plan is None:
            return None
        lease.ensure(ctx.db, ctx.settings.partner_call_budget)
        resource, note = _call_gateway(ctx, plan)
    except LeaseLost as exc:  # no call made: the row goes to whoever holds it next
        log.warning("lease not certain; gateway call not made", extra={"error": str(exc)})
        return None
    except WaitForParent as exc:
        _record(ctx, item_id, lease, wait=str(exc))
        return None
    except PausedError as exc:  # our shared rate limiter: no attempt spent
        _record(ctx, item_id, lease, wait=str(exc), wait_seconds=exc.retry_after or 1.0)
        return None
    except (PartnerError, MappingError) as exc:
        _record(ctx, item_id, lease, error=exc)
        return None
    except Exception as exc:  # the row's boundary: record it on the row, never lose the row
        log.exception("unexpected error in gateway step")
        _record(ctx, item_id, lease, error=PermanentError(f"internal error: {exc!r}"))
        return None
    return Outcome(item_id, plan, resource, note)


def _call_gateway(ctx: QueueContext, plan: Plan) -> tuple[dict[str, Any], str]:
    obj, gw = plan.obj, ctx.gateway

    def resolve(parent_obj: str, crm_id: str) -> str:
        found = plan.links.get((parent_obj, crm_id))
        if found:
            return found
        raise PermanentError(
            f"{obj.sobject} links to {parent_obj} {crm_id}, which has no gateway id "
            "(it was never sent, or its queue item was discarded)")

    if plan.operation == "insert" and not plan.gateway_id:
        body = to_gateway(obj, plan.fields, resolve)
        body.setdefault("metadata", {})["crm_id"] = plan.record_id
        created = gw.create(obj.resource, body, plan.idempotency_key)
        note = "already existed (idempotent replay)" if created.already_existed else "created"
        return created.resource, note
    if not plan.gateway_id:
        raise PermanentError(f"{obj.name} {plan.record_id} has no gateway id yet; its insert "
                             "never reached the gateway")
    if plan.operation == "delete":
        return _cancel(gw, obj, plan.gateway_id), "cancelled"
    # An update (or a repeated insert of a record the gateway already has): send every field
    # whose value differs from what the gateway last accepted, so an update that was
    # discarded or failed is never silently left behind. Unknown (no digests): send all.
    changed = None
    if plan.sent is not None:
        digests = field_digests(obj, plan.fields)
        changed = [k for k, d in digests.items() if plan.sent.get(k) != d]
    body = to_gateway(obj, plan.fields, resolve, for_update=True, only=changed)
    if not body:
        return {"id": plan.gateway_id}, NO_CHANGE
    return gw.update(obj.resource, plan.gateway_id, body), "updated"


def _cancel(gw: GatewayClient, obj: ObjectMap, gateway_id: str) -> dict[str, Any]:
    if obj.cancel_action is None:
        if not obj.delete_supported:
            raise PermanentError(f"the gateway cannot cancel or delete a {obj.name}")
        try:
            return gw.delete(obj.resource, gateway_id)
        except PermanentError as exc:
            # GoCardless answers a removed customer with 410 Gone (customer_removed):
            # a retry after a lost answer finds the removal it asked for already done.
            if exc.status == 410:
                return {"id": gateway_id}
            raise
    try:
        return gw.action(obj.resource, gateway_id, obj.cancel_action)
    except InvalidStateError:
        # A retry after an answer was lost finds it already cancelled: that is success.
        current = gw.get(obj.resource, gateway_id)
        if current.get("status") in {"cancelled", "customer_approval_denied"} or (
                obj.cancel_action == "disable" and current.get("enabled") is False):
            return current
        raise


def _record(ctx: QueueContext, item_id: int, lease: Lease, *,
            error: Exception | None = None, wait: str | None = None, stage: str = "gateway",
            wait_seconds: float = PARENT_WAIT_SECONDS) -> None:
    s = ctx.settings
    with ctx.db.transaction() as session:
        item = service.load_owned(session, item_id, lease)
        if item is None:
            lease.drop(f"{stage} outcome", item_id=item_id)
            return
        if wait is not None:
            if (item.next_attempt_at - item.created_at).total_seconds() > s.parent_wait_max:
                error = PermanentError(f"{wait}: gave up after {s.parent_wait_max:.0f}s")
            else:
                record_wait(item, stage=stage, reason=wait, seconds=wait_seconds)
                return
        assert error is not None
        transient = isinstance(error, TransientError)
        outcome = record_failure(
            item, stage=stage, error=str(error), transient=transient,
            schedule=s.retry_schedule, jitter=s.retry_jitter,
            retry_after=getattr(error, "retry_after", None),
            status=getattr(error, "status", None))
    if outcome == "failed" and ctx.telemetry is not None:
        ctx.telemetry.failed("api", {item.object: 1})
    log.warning("attempt failed", extra={"outcome": outcome, "stage": stage,
                                          "error": str(error)})


def write_back(ctx: QueueContext, ids: Sequence[int], lease: Lease) -> int:
    """Write the finished rows' results to the CRM, one record per write, 200 per call.

    Rows of one record are merged in order (later values win). The status written is the
    link's *current* status, so a late write-back never moves the CRM record back in time.
    """
    with ctx.db.transaction() as session:
        items = [i for i in service.load_owned_many(session, ids, lease)
                 if i.stage == STAGE_GATEWAY_DONE]
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        members: dict[tuple[str, str], list[int]] = {}
        operations: dict[tuple[str, str], set[str]] = {}
        for item in items:
            key = (item.object, item.record_id)
            merged.setdefault(key, {}).update(item.result or {})
            members.setdefault(key, []).append(item.id)
            operations.setdefault(key, set()).add(item.operation)
        removals = {k for k, ops in operations.items() if ops == {"delete"}}
        links = _links_of(session, list(merged))
        for key, fields in merged.items():
            obj_name, link = key[0], links.get(key)
            if link and link.last_event_at is not None:
                # Webhook events own the status once one was applied (under the resource
                # lease, in event order); a write-back must not race them.
                fields.pop(STATUS_FIELD, None)
            elif OBJECTS[obj_name].has_status and link and link.status and STATUS_FIELD in fields:
                fields[STATUS_FIELD] = status_label(link.status, ctx.settings.status_labels)
    if not merged:
        return 0
    done = [i for k, fields in merged.items() if not fields for i in members[k]]
    keys = [k for k, fields in merged.items() if fields]
    if not keys:
        return _finish(ctx, done, lease, set(merged))
    try:
        lease.ensure(ctx.db, ctx.settings.partner_call_budget)
        results = ctx.crm.update_many([CrmWrite(OBJECTS[o].sobject, r, merged[(o, r)])
                                       for o, r in keys])
    except LeaseLost as exc:
        log.warning("lease not certain; CRM write-back not made", extra={"error": str(exc)})
        return 0
    except PausedError as exc:  # the org's allocation (shared pause) or our pacing
        _wait_all(ctx, [i for k in keys for i in members[k]], lease, str(exc),
                  paused_for(ctx.pause, exc, ctx.settings.salesforce_limit_pause))
        return 0
    except PartnerError as exc:
        for item_id in (i for k in keys for i in members[k]):
            _record(ctx, item_id, lease, error=exc, stage="crm")
        return 0
    for key, result in zip(keys, results, strict=True):
        if result.ok or (result.code == DELETED and key in removals):
            # A record deleted in the CRM (polling turns that into a delete) has nowhere to
            # show its removal's result: the gateway step was the whole effect.
            done.extend(members[key])
            continue
        error: PartnerError = (TransientError(f"Salesforce: {result.message}") if result.transient
                               else PermanentError(f"Salesforce: {result.message}"))
        for item_id in members[key]:
            _record(ctx, item_id, lease, error=error, stage="crm")
    finished = {k for k, r in zip(keys, results, strict=True)
                if r.ok or (r.code == DELETED and k in removals)}
    return _finish(ctx, done, lease, finished | {k for k in merged if not merged[k]})


def _finish(ctx: QueueContext, done: list[int], lease: Lease,
            records_done: set[tuple[str, str]]) -> int:
    with ctx.db.transaction() as session:
        finished = service.arrivals(session, done, lease)
        completed = service.complete(session, done, lease)
    if completed < len(done):
        lease.drop("completion", len(done) - completed)
    if ctx.telemetry is not None:
        ctx.telemetry.processed("api", finished)
    ctx.wake(records_done)
    return completed


def _wait_all(ctx: QueueContext, ids: Sequence[int], lease: Lease, reason: str,
              seconds: float) -> None:
    with ctx.db.transaction() as session:
        for item in service.load_owned_many(session, ids, lease):
            record_wait(item, stage="crm", reason=reason, seconds=seconds)


def _links_of(session: Any, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """(object, CRM id) -> its link, one query per object in the batch."""
    by_object: dict[str, list[str]] = {}
    for obj_name, crm_id in keys:
        by_object.setdefault(obj_name, []).append(crm_id)
    found: dict[tuple[str, str], Any] = {}
    for obj_name, crm_ids in by_object.items():
        for link in session.scalars(sa.select(RecordLink).where(
                RecordLink.object == obj_name, RecordLink.crm_id.in_(crm_ids))):
            found[(obj_name, str(link.crm_id))] = link
    return found

