"""Processing claimed API Queue rows: build the gateway call, interpret the answer, write back.

No transaction is held across a network call: read what the call needs (commit), call, then
record the outcome in a new transaction guarded by the lease.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.clients.errors import (
    InvalidStateError,
    PartnerError,
    PausedError,
    PermanentError,
    TransientError,
)
from app.clients.gateway import GatewayClient
from app.clients.salesforce import CrmWrite, SalesforceClient
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
    writeback_fields,
)
from app.records import service as records
from queues import service
from queues.models import STAGE_GATEWAY_DONE, STAGE_NEW, QueueItem

log = logging.getLogger(__name__)
PARENT_WAIT_SECONDS = 5.0
NO_CHANGE = "no gateway field changed"


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


def process_batch(ctx: QueueContext, ids: Sequence[int], owner: str) -> dict[str, int]:
    """Run every claimed row through its gateway step, then write back the finished ones."""
    counts = {"gateway_ok": 0, "written_back": 0}
    lease_started = time.monotonic()
    remaining = list(ids)
    for item_id in ids:
        if time.monotonic() - lease_started > ctx.settings.lease_seconds / 2:
            service.renew(ctx.db, remaining, owner, ctx.settings.lease_seconds)
            lease_started = time.monotonic()
        with log_context(item_id=item_id):
            if gateway_step(ctx, item_id, owner):
                counts["gateway_ok"] += 1
        remaining.remove(item_id)
    counts["written_back"] = write_back(ctx, ids, owner)
    return counts


def _plan(ctx: QueueContext, item_id: int, owner: str) -> Plan | None:
    with ctx.db.transaction() as session:
        item = service.load_owned(session, item_id, owner)
        if item is None or item.stage != STAGE_NEW:
            return None
        obj = OBJECTS[item.object]
        link = records.find_link(session, item.object, crm_id=item.record_id)
        gateway_id = (link.gateway_id if link else None) or item.fields.get(GATEWAY_ID_FIELD)
        wanted = {(fm.link, str(item.fields[fm.crm])) for fm in obj.fields
                  if fm.link and item.fields.get(fm.crm)}
        links: dict[tuple[str, str], str] = {}
        for parent_obj, crm_id in wanted:
            found = records.gateway_ids(session, parent_obj, [crm_id]).get(crm_id)
            if found:
                links[(parent_obj, crm_id)] = found
            elif service.pending_in_records(session, parent_obj, crm_id):
                raise WaitForParent(f"waiting for {parent_obj} {crm_id} to reach the gateway")
        return Plan(item.id, obj, item.operation, item.record_id, dict(item.fields),
                    dict(item.previous_fields or {}), item.idempotency_key, gateway_id, links)


def gateway_step(ctx: QueueContext, item_id: int, owner: str) -> bool:
    """Make the row's gateway call and record the outcome. True when the call succeeded."""
    try:
        plan = _plan(ctx, item_id, owner)
        if plan is None:
            return False
        resource, note = _call_gateway(ctx, plan)
    except WaitForParent as exc:
        _record(ctx, item_id, owner, wait=str(exc))
        return False
    except (PartnerError, MappingError) as exc:
        _record(ctx, item_id, owner, error=exc)
        return False
    except Exception as exc:  # the job boundary: record it on the row, never lose the row
        log.exception("unexpected error in gateway step")
        _record(ctx, item_id, owner, error=PermanentError(f"internal error: {exc!r}"))
        return False
    with ctx.db.transaction() as session:
        item = service.load_owned(session, item_id, owner)
        if item is None:
            return False  # the lease was lost; the new owner's call reuses the idempotency key
        _link_and_history(ctx, session, item, plan.obj, resource)
        result = ({} if note == NO_CHANGE
                  else writeback_fields(plan.obj, resource, ctx.settings.status_labels))
        service.record_gateway_done(session, item, str(resource.get("id") or plan.gateway_id),
                                    result, note)
    log.info("gateway call done", extra={"object": plan.obj.name, "note": note})
    return True


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
    # An update (or a repeated insert of a record the gateway already has): send what changed.
    changed = None
    if plan.operation == "update" and plan.previous:
        changed = [k for k, v in plan.fields.items() if plan.previous.get(k) != v]
    body = to_gateway(obj, plan.fields, resolve, for_update=True, only=changed)
    if not body:
        return {"id": plan.gateway_id}, NO_CHANGE
    return gw.update(obj.resource, plan.gateway_id, body), "updated"


def _cancel(gw: GatewayClient, obj: ObjectMap, gateway_id: str) -> dict[str, Any]:
    if obj.cancel_action is None:
        if not obj.delete_supported:
            raise PermanentError(f"the gateway cannot cancel or delete a {obj.name}")
        return gw.delete(obj.resource, gateway_id)
    try:
        return gw.action(obj.resource, gateway_id, obj.cancel_action)
    except InvalidStateError:
        # A retry after an answer was lost finds it already cancelled: that is success.
        current = gw.get(obj.resource, gateway_id)
        if current.get("status") in {"cancelled", "customer_approval_denied"} or (
                obj.cancel_action == "disable" and current.get("enabled") is False):
            return current
        raise


def _link_and_history(ctx: QueueContext, session: Any, item: QueueItem, obj: ObjectMap,
                      resource: dict[str, Any]) -> None:
    gateway_id = resource.get("id")
    link = records.upsert_link(session, obj.name, crm_id=item.record_id,
                               gateway_id=str(gateway_id) if gateway_id else None)
    status = resource.get("status")
    if obj.has_status and status and status != link.status and link.last_event_at is None:
        # Only before any webhook event was applied: afterwards events own the status.
        records.record_transition(session, link, str(status), source="api",
                                  cause=f"{item.operation} via API queue",
                                  queue_item_id=item.id)


def _record(ctx: QueueContext, item_id: int, owner: str, *, error: Exception | None = None,
            wait: str | None = None, stage: str = "gateway") -> None:
    s = ctx.settings
    with ctx.db.transaction() as session:
        item = service.load_owned(session, item_id, owner)
        if item is None:
            return
        if wait is not None:
            if (item.next_attempt_at - item.created_at).total_seconds() > s.parent_wait_max:
                error = PermanentError(f"{wait}: gave up after {s.parent_wait_max:.0f}s")
            else:
                service.record_wait(session, item, stage=stage, reason=wait,
                                    seconds=PARENT_WAIT_SECONDS)
                return
        assert error is not None
        transient = isinstance(error, TransientError)
        outcome = service.record_failure(
            session, item, stage=stage, error=str(error), transient=transient,
            schedule=s.retry_schedule, jitter=s.retry_jitter,
            retry_after=getattr(error, "retry_after", None),
            status=getattr(error, "status", None))
    log.warning("attempt failed", extra={"outcome": outcome, "stage": stage,
                                          "error": str(error)})


def write_back(ctx: QueueContext, ids: Sequence[int], owner: str) -> int:
    """Write the finished rows' results to the CRM, one record per write, 200 per call.

    Rows of one record are merged in order (later values win). The status written is the
    link's *current* status, so a late write-back never moves the CRM record back in time.
    """
    with ctx.db.transaction() as session:
        items = [i for i in (service.load_owned(session, i, owner) for i in ids)
                 if i is not None and i.stage == STAGE_GATEWAY_DONE]
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        members: dict[tuple[str, str], list[int]] = {}
        for item in sorted(items, key=lambda i: i.id):
            key = (item.object, item.record_id)
            merged.setdefault(key, {}).update(item.result or {})
            members.setdefault(key, []).append(item.id)
        for (obj_name, crm_id), fields in merged.items():
            link = records.find_link(session, obj_name, crm_id=crm_id)
            if OBJECTS[obj_name].has_status and link and link.status and STATUS_FIELD in fields:
                fields[STATUS_FIELD] = status_label(link.status, ctx.settings.status_labels)
    if not merged:
        return 0
    done = [i for k, fields in merged.items() if not fields for i in members[k]]
    keys = [k for k, fields in merged.items() if fields]
    if not keys:
        return _finish(ctx, done, owner, set(merged))
    paused_until = ctx.pause.until()
    try:
        if paused_until:
            raise PausedError("CRM write-backs are paused (Salesforce API limit)")
        results = ctx.crm.update_many([CrmWrite(OBJECTS[o].sobject, r, merged[(o, r)])
                                       for o, r in keys])
    except PausedError as exc:
        until = paused_until or ctx.pause.pause(ctx.settings.salesforce_limit_pause)
        _wait_all(ctx, [i for k in keys for i in members[k]], owner, str(exc),
                  max(1.0, until - time.time()))
        return 0
    except PartnerError as exc:
        for item_id in (i for k in keys for i in members[k]):
            _record(ctx, item_id, owner, error=exc, stage="crm")
        return 0
    _slow_down_near_limit(ctx)
    for key, result in zip(keys, results, strict=True):
        if result.ok:
            done.extend(members[key])
            continue
        error: PartnerError = (TransientError(f"Salesforce: {result.message}") if result.transient
                               else PermanentError(f"Salesforce: {result.message}"))
        for item_id in members[key]:
            _record(ctx, item_id, owner, error=error, stage="crm")
    finished = {k for k, r in zip(keys, results, strict=True) if r.ok}
    return _finish(ctx, done, owner, finished | {k for k in merged if not merged[k]})


def _finish(ctx: QueueContext, done: list[int], owner: str,
            records_done: set[tuple[str, str]]) -> int:
    with ctx.db.transaction() as session:
        service.complete(session, done, owner)
    ctx.wake(records_done)
    return len(done)


def _wait_all(ctx: QueueContext, ids: Sequence[int], owner: str, reason: str,
              seconds: float) -> None:
    with ctx.db.transaction() as session:
        for item_id in ids:
            item = service.load_owned(session, item_id, owner)
            if item is not None:
                service.record_wait(session, item, stage="crm", reason=reason, seconds=seconds)


def _slow_down_near_limit(ctx: QueueContext) -> None:
    """Stop before the org's allocation runs out, leaving the reserve for other integrations."""
    usage = ctx.crm.api_usage()
    if usage and usage[1] and usage[0] >= usage[1] * (1 - ctx.settings.salesforce_api_reserve):
        log.warning("salesforce api usage near the allocation; pausing write-backs",
                    extra={"used": usage[0], "allocation": usage[1]})
        ctx.pause.pause(ctx.settings.salesforce_limit_pause)
