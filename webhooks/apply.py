"""Applying webhook events to the CRM, per resource, in the order they occurred.

For each resource named by the job's events, and by the events delivered with them (so one
CRM write covers a delivery in every WEBHOOK_MODE; ``webhooks.coalescing``): lease the
resource (no other job applies its events meanwhile), lease all its workable events,
classify them oldest first and apply what may be applied (status history + watermark, in
one transaction); parked events are looked at again after every apply, so the missing event
wakes them at once; long-parked ones are healed from the gateway's current state. Then one
batched CRM write for every resource the job touched, and the applied events are finished.
No transaction spans a network call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.clients.errors import PartnerError, PausedError, PermanentError, TransientError
from app.clients.gateway import GatewayClient
from app.clients.salesforce import CrmWrite, SalesforceClient, paused_for
from app.clock import utcnow
from app.config import Settings
from app.crm_pause import CrmPause
from app.db import Database
from app.logs import log_context
from app.mapping import (
    GATEWAY_ID_FIELD,
    LAST_EVENT_FIELD,
    OBJECTS,
    STATUS_FIELD,
    status_label,
)
from app.records import service as records
from app.records.models import RecordLink
from app.workrows.boundary import fail_held
from app.workrows.leases import Lease, LeaseLost, owned
from app.workrows.rows import DONE, PENDING
from app.workrows.states import log_attempt, record_failure, record_wait, transition
from webhooks import service
from webhooks.coalescing import claim_resources
from webhooks.crm_records import ensure_crm_record
from webhooks.lifecycles import CREATED, UnknownAction, lifecycle_for
from webhooks.models import APPLIED, PARKED, STAGE_APPLIED, STALE, WebhookEvent
from webhooks.ordering import classify
from webhooks.replacement import relink, replacement_of
from webhooks.starting import starting_status

log = logging.getLogger(__name__)


@dataclass
class WebhookContext:
    settings: Settings
    db: Database
    gateway: GatewayClient
    crm: SalesforceClient
    pause: CrmPause
    telemetry: Any = None  # app.telemetry.Telemetry: processed counts and latencies


@dataclass
class Touched:
    """A resource this job leased, and its events waiting for the CRM write."""

    obj: str
    gateway_id: str
    event_ids: list[int] = field(default_factory=list)
    heal: int | None = None  # an event whose gap should be healed from the gateway
    healed: set[int] = field(default_factory=set)  # at most one heal per event per job
    # Whether the CRM record needs the link's status and watermark: not when the job only
    # recorded informational events (nothing the CRM shows has changed).
    needs_write: bool = False
    # The resource as the gateway reported it when its created event came first (reused
    # when its CRM record is made), and the real starting status taken from it.
    resource: dict[str, Any] | None = None
    created_status: str | None = None
    replaced_by: str | None = None  # a mandate replaced event's links.new_mandate
    replaced_at: datetime | None = None


def process_events(ctx: WebhookContext, ids: Sequence[int], lease: Lease,
                   job_id: str | None = None) -> dict[str, int]:
    """Apply the events ``ids`` name (and every other workable event of their resources, and
    the resources of the events delivered with them: ``webhooks.coalescing``); ``job_id``,
    the RQ job running, if any. The caller keeps ``lease`` renewed. An exception while one
    resource is handled is recorded on that resource's events (retried, then Failed) and
    the others go on."""
    claimed = claim_resources(ctx.db, ids, lease, ctx.settings.batch_size, job_id)
    # Every leased resource is released at the end, whatever happens.
    touched = [Touched(obj, resource_id) for _, resource_id, obj in claimed.leased]
    failed: set[str | None] = set()
    try:
        for resource_type, resource_id in claimed.unlinked:
            with log_context(resource=resource_id):
                try:
                    _finish_unlinked(ctx, resource_type, resource_id, lease)
                except Exception as exc:  # the job boundary for this resource's events
                    _fail_resource(ctx, lease, exc, resource_type, resource_id)
        for (resource_type, resource_id, _), item in zip(claimed.leased, touched, strict=True):
            with log_context(resource=resource_id):
                try:
                    _resource(ctx, item, lease)
                except LeaseLost as exc:
                    log.warning("lease not certain; resource left", extra={"error": str(exc)})
                except Exception as exc:  # the job boundary for this resource's events
                    _fail_resource(ctx, lease, exc, resource_type, resource_id)
                    failed.add(resource_id)
        written = _write_crm(ctx, [t for t in touched
                                   if t.event_ids and t.gateway_id not in failed], lease)
    finally:
        for item in touched:
            service.release_resource(ctx.db, item.obj, item.gateway_id, lease)
    if claimed.busy:
        service.retry_soon(ctx.db, ids, claimed.busy)
    return {"resources": len(touched), "siblings": claimed.siblings, "written": written}


def _resource(ctx: WebhookContext, item: Touched, lease: Lease) -> None:
    """Classify and apply a leased resource's events, healing gaps the gateway can close."""
    item.resource, item.created_status = starting_status(ctx, item.obj, item.gateway_id, lease)
    _classify_resource(ctx, item, lease)
    while item.heal is not None:
        heal_id, item.heal = item.heal, None
        item.healed.add(heal_id)
        _heal(ctx, item, heal_id, lease)
        _classify_resource(ctx, item, lease)


def _fail_resource(ctx: WebhookContext, lease: Lease, exc: Exception, resource_type: str,
                   resource_id: str | None) -> None:
    """The failed step's transaction (and the events' lease in it) was rolled back: take the
    resource's events again, then record the exception on them."""
    try:
        with ctx.db.transaction() as session:
            service.lease_resource_events(session, ctx.db, resource_type, resource_id, lease)
    except Exception as again:  # noqa: BLE001 - the boundary itself must not throw
        log.error("could not take the events back to record the error",
                  extra={"error": str(again)})
    _fail_events(ctx, lease, exc, where=sa.and_(WebhookEvent.resource_type == resource_type,
                                                WebhookEvent.resource_id == resource_id))


def _fail_events(ctx: WebhookContext, lease: Lease, exc: Exception,
                 ids: list[int] | None = None, where: Any = None) -> None:
    s = ctx.settings
    failed = fail_held(ctx.db, WebhookEvent, lease, exc, stage="apply",
                       schedule=s.retry_schedule, jitter=s.retry_jitter, ids=ids, where=where)
    if failed and ctx.telemetry is not None:
        ctx.telemetry.failed("webhook", {failed[0].resource_type: len(failed)})


def _finish_unlinked(ctx: WebhookContext, resource_type: str, resource_id: str | None,
                     lease: Lease) -> None:
    """Events about resources with no CRM object (creditors...) are recorded and finished;
    events that name no resource cannot be applied and go to an admin."""
    with ctx.db.transaction() as session:
        for ev in service.lease_resource_events(session, ctx.db, resource_type, resource_id,
                                                lease):
            if resource_id is None:
                _record_failure(ctx, ev, stage="apply", transient=False,
                                        error=f"event links no {resource_type} resource",
                                        schedule=(), jitter=0)
            else:
                ev.reason = f"no CRM object for {resource_type}; nothing to apply"
                _done(session, ev, ctx.settings)


def _classify_resource(ctx: WebhookContext, item: Touched, lease: Lease) -> None:
    s = ctx.settings
    lifecycle = lifecycle_for(OBJECTS[item.obj].resource)
    now = utcnow()
    with ctx.db.transaction() as session:
        link = records.upsert_link(session, item.obj, crm_id=None, gateway_id=item.gateway_id)
        events = service.lease_resource_events(session, ctx.db, OBJECTS[item.obj].resource,
                                               item.gateway_id, lease)
        waiting = [ev for ev in events if ev.stage != STAGE_APPLIED]
        earlier = [ev.id for ev in events if ev.stage == STAGE_APPLIED
                   and ev.id not in item.event_ids]
        for ev in events:
            if ev.stage == STAGE_APPLIED:
                _note_replacement(item, ev)
        # Applied by an earlier job whose CRM write is not known to have happened.
        item.needs_write = item.needs_write or bool(earlier)
        item.event_ids.extend(earlier)
        progress = True
        while progress:
            progress = False
            for ev in list(waiting):
                kind, reason, to_status = _decide(lifecycle, link, ev, item.created_status)
                ev.reason = reason
                if kind in ("apply", "informational"):
                    records.record_transition(
                        session, link, to_status if kind == "apply" else None,
                        source="webhook", cause=_cause(ev), event_id=ev.event_id,
                        event_time=ev.event_time, watermark=kind == "apply")
                    transition(ev, PENDING, hold=True)
                    ev.stage = STAGE_APPLIED
                    item.event_ids.append(ev.id)
                    _note_replacement(item, ev)
                    waiting.remove(ev)
                    progress = progress or kind == "apply"
                    item.needs_write = item.needs_write or kind == "apply"
                elif kind == "stale":
                    transition(ev, STALE, at=now)
                    waiting.remove(ev)
                elif kind == "illegal":
                    _record_failure(ctx, ev, stage="apply", error=reason, transient=False,
                                            schedule=(), jitter=0)
                    waiting.remove(ev)
        for ev in waiting:  # gaps left after every apply: park them
            due = ev.next_attempt_at <= now or ev.status != PARKED
            if due:
                ev.attempts += 1
            if (due and (ev.attempts >= s.heal_after or _unannounced(lifecycle, link))
                    and item.heal is None and ev.id not in item.healed):
                item.heal = ev.id
            transition(ev, PARKED, at=ev.next_attempt_at if not due
                       else now + timedelta(seconds=s.park_wait),
                       entry={"stage": "apply", "outcome": "parked", "error": ev.reason}
                       if due else None)


def _note_replacement(item: Touched, ev: WebhookEvent) -> None:
    new_id = replacement_of(ev)
    if new_id is not None:
        item.replaced_by, item.replaced_at = new_id, ev.event_time
        item.needs_write = True


def _unannounced(lifecycle: Any, link: Any) -> bool:
    """A resource Paybridge has never seen whose type no ``created`` event announces (a
    payout's first event is ``paid``): waiting for its starting event cannot help."""
    return link.status is None and lifecycle is not None and CREATED not in lifecycle.actions


def _record_failure(ctx: WebhookContext, ev: WebhookEvent, **kwargs: Any) -> str:
    """record_failure, counting the events that become Failed (dashboard, metrics)."""
    outcome = record_failure(ev, **kwargs)
    if outcome == "failed" and ctx.telemetry is not None:
        ctx.telemetry.failed("webhook", {ev.resource_type: 1})
    return outcome


def _decide(lifecycle: Any, link: Any, ev: WebhookEvent,
            created_status: str | None = None) -> tuple[str, str, str | None]:
    if lifecycle is None:
        return "informational", f"{ev.resource_type}: recorded", None
    watermark = (link.last_event_at, link.last_event_id) if link.last_event_at else None
    try:
        decision = classify(lifecycle, link.status, watermark, ev.action, ev.event_time,
                            ev.event_id, resource_id=ev.resource_id,
                            created_status=created_status)
    except UnknownAction as exc:
        # GoCardless adds event types without a new API version and asks receivers to
        # ignore what they do not know: recorded (history, events list), nothing changed.
        return "informational", f"{exc}; recorded, nothing changed", None
    return decision.kind, decision.reason, decision.to_status


def _cause(ev: WebhookEvent) -> str:
    details = (ev.payload or {}).get("details") or {}
    cause = details.get("cause") or ev.action
    return f"{ev.action}: {cause}"[:200]


def _heal(ctx: WebhookContext, item: Touched, event_row: int, lease: Lease) -> None:
    """Waiting did not close the gap: ask the gateway where the resource is now."""
    resource = OBJECTS[item.obj].resource
    lifecycle = lifecycle_for(resource)
    lease.ensure(ctx.db, ctx.settings.partner_call_budget)
    try:
        gateway_status = str(ctx.gateway.get(resource, item.gateway_id).get("status"))
    except TransientError as exc:  # the gateway will answer later; the event stays parked
        log.warning("could not heal from the gateway", extra={"error": str(exc)})
        return
    except PartnerError as exc:
        # A refusal (404: the gateway has no such resource) will not change by waiting: the
        # event goes to an admin with the gateway's own words instead of parking forever.
        with ctx.db.transaction() as session:
            ev = session.get(WebhookEvent, event_row)
            if not service.holds_resource(session, item.obj, item.gateway_id, lease):
                lease.drop("heal", event=event_row)
            elif ev is not None:
                _record_failure(ctx, ev, stage="heal", transient=False, schedule=(), jitter=0,
                                error=f"{ev.reason}; cannot heal, the gateway answered "
                                f"{exc.status}: {exc}")
        return
    with ctx.db.transaction() as session:
        if not service.holds_resource(session, item.obj, item.gateway_id, lease):
            lease.drop("heal", event=event_row)
            return
        link = records.upsert_link(session, item.obj, crm_id=None, gateway_id=item.gateway_id)
        # A parked event is not leased itself; the resource lease just checked covers it.
        ev = session.get(WebhookEvent, event_row)
        if ev is None or lifecycle is None:
            return
        target = lifecycle.status_for(ev.action)
        route = lifecycle.path(link.status, target) if target else None
        confirmed = target is not None and (gateway_status == target or (
            lifecycle.path(target, gateway_status) is not None
            and not lifecycle.reachable_avoiding(link.status, gateway_status, target)))
        if route is not None and confirmed:
            for missing in route:  # the gateway's state proves these stages happened
                records.record_transition(session, link, missing, source="heal",
                                          cause=f"missing event; gateway is {gateway_status}")
            item.needs_write = item.needs_write or bool(route)
            transition(ev, PENDING, hold=True)  # classified again in this job, leased then
            log_attempt(ev, {"stage": "heal", "outcome": "healed",
                             "error": f"filled {', '.join(route) or 'nothing'}"})
        else:
            _record_failure(
                ctx, ev, stage="heal", transient=False, schedule=(), jitter=0,
                error=f"{ev.reason}; the gateway reports {gateway_status}, which does not "
                      "confirm the missing stages")


def _write_crm(ctx: WebhookContext, touched: list[Touched], lease: Lease) -> int:
    """One batched CRM write for every resource with applied events; then finish them."""
    if not touched:
        return 0
    labels = dict(ctx.settings.status_labels)
    links = _links_of(ctx.db, touched)
    writes: list[tuple[Touched, CrmWrite]] = []
    for item in touched:
        link = links.get((item.obj, item.gateway_id))
        crm_id = link.crm_id if link is not None else None
        fields: dict[str, Any] = {}
        if not crm_id:
            # Linked now: the record may have been found through the resource's
            # metadata.crm_id (an insert whose answer was lost) and lack the gateway id.
            fields[GATEWAY_ID_FIELD] = item.gateway_id
            try:
                crm_id = ensure_crm_record(ctx, item.obj, item.gateway_id, labels, lease,
                                           resource=item.resource)
            except LeaseLost as exc:
                log.warning("lease not certain; CRM record not made", extra={"error": str(exc)})
                continue
            except PausedError as exc:  # the org's allocation: wait, spend no attempt
                _crm_wait(ctx, item.event_ids, lease, str(exc), _paused_for(ctx, exc))
                continue
            except PartnerError as exc:
                _crm_failed(ctx, item.event_ids, lease, exc)
                continue
            except Exception as exc:  # the job boundary for this resource's events
                _fail_events(ctx, lease, exc, item.event_ids)
                continue
            with ctx.db.transaction() as session:
                link = records.find_link(session, item.obj, gateway_id=item.gateway_id)
        if item.replaced_by is not None:
            link = _follow_replacement(ctx, item, lease)
            if link is None:
                continue
            fields[GATEWAY_ID_FIELD] = item.gateway_id
        if link and (item.needs_write or fields):
            if link.status and OBJECTS[item.obj].has_status:
                fields[STATUS_FIELD] = status_label(link.status, labels)
            if link.last_event_id:
                fields[LAST_EVENT_FIELD] = link.last_event_id
        writes.append((item, CrmWrite(OBJECTS[item.obj].sobject, crm_id, fields)))
    to_send = [(i, w) for i, w in writes if w.fields]
    done: list[int] = [e for i, w in writes if not w.fields for e in i.event_ids]
    try:
        if to_send:
            lease.ensure(ctx.db, ctx.settings.partner_call_budget)
        results = ctx.crm.update_many([w for _, w in to_send]) if to_send else []
    except LeaseLost as exc:
        log.warning("lease not certain; CRM write not made", extra={"error": str(exc)})
        return _finish(ctx, done, lease)
    except PausedError as exc:  # the org's allocation (shared pause) or our pacing
        _crm_wait(ctx, [e for i, _ in to_send for e in i.event_ids], lease, str(exc),
                  _paused_for(ctx, exc))
        return _finish(ctx, done, lease)
    except PartnerError as exc:
        _crm_failed(ctx, [e for i, _ in to_send for e in i.event_ids], lease, exc)
        return _finish(ctx, done, lease)
    for (item, _), result in zip(to_send, results, strict=True):
        if result.ok:
            done.extend(item.event_ids)
        else:
            error = (TransientError if result.transient else PermanentError)(
                f"Salesforce: {result.message}")
            _crm_failed(ctx, item.event_ids, lease, error)
    return _finish(ctx, done, lease)


def _follow_replacement(ctx: WebhookContext, item: Touched, lease: Lease) -> Any:
    """Re-link a replaced mandate's record to the new mandate (once its CRM record exists,
    so its history can be kept with it); the link, or None when the events were failed."""
    assert item.replaced_by is not None
    try:
        with ctx.db.transaction() as session:
            if item.replaced_by != item.gateway_id:
                relink(session, item.obj, item.gateway_id, item.replaced_by, lease,
                       event_time=item.replaced_at)
                item.gateway_id = item.replaced_by  # the lease moved with the link row
            return records.find_link(session, item.obj, gateway_id=item.gateway_id)
    except LeaseLost as exc:
        log.warning("lease not certain; mandate not re-linked", extra={"error": str(exc)})
    except PartnerError as exc:
        _crm_failed(ctx, item.event_ids, lease, exc, stage="relink")
    return None


def _paused_for(ctx: WebhookContext, exc: PausedError) -> float:
    return paused_for(ctx.pause, exc, ctx.settings.salesforce_limit_pause)


def _links_of(db: Database, touched: list[Touched]) -> dict[tuple[str, str], Any]:
    """(object, gateway id) -> link of every touched resource: one query per object."""
    by_object: dict[str, list[str]] = {}
    for item in touched:
        by_object.setdefault(item.obj, []).append(item.gateway_id)
    found: dict[tuple[str, str], Any] = {}
    with db.transaction() as session:
        for obj_name, gateway_ids in by_object.items():
            for link in session.scalars(sa.select(RecordLink).where(
                    RecordLink.object == obj_name, RecordLink.gateway_id.in_(gateway_ids))):
                found[(obj_name, str(link.gateway_id))] = link
    return found


def _owned_events(session: Any, ids: Sequence[int], lease: Lease) -> list[WebhookEvent]:
    """The given events still held under ``lease``, in one query."""
    if not ids:
        return []
    return list(session.scalars(sa.select(WebhookEvent).where(
        WebhookEvent.id.in_(list(ids)), owned(WebhookEvent.__table__, lease))
        .order_by(WebhookEvent.id)))


def _finish(ctx: WebhookContext, ids: list[int], lease: Lease) -> int:
    finished = []
    with ctx.db.transaction() as session:
        for ev in _owned_events(session, ids, lease):
            finished.append((ev.resource_type, ev.created_at))
            _done(session, ev, ctx.settings)
    if len(finished) < len(ids):
        lease.drop("finish", events=len(ids) - len(finished))
    if ctx.telemetry is not None:
        ctx.telemetry.processed("webhook", finished)
    return len(finished)


def _done(session: Any, ev: WebhookEvent, settings: Settings) -> None:
    if settings.webhook_keep_applied > 0:
        transition(ev, APPLIED)
    else:
        transition(ev, DONE)
        session.delete(ev)


def _crm_failed(ctx: WebhookContext, ids: list[int], lease: Lease, exc: PartnerError,
                stage: str = "crm") -> None:
    s = ctx.settings
    with ctx.db.transaction() as session:
        for ev in _owned_events(session, ids, lease):
            _record_failure(
                ctx, ev, stage=stage, error=str(exc), transient=isinstance(exc, TransientError),
                schedule=s.retry_schedule, jitter=s.retry_jitter,
                retry_after=getattr(exc, "retry_after", None), status=exc.status)


def _crm_wait(ctx: WebhookContext, ids: list[int], lease: Lease, reason: str,
              seconds: float) -> None:
    with ctx.db.transaction() as session:
        for ev in _owned_events(session, ids, lease):
            record_wait(ev, stage="crm", reason=reason, seconds=seconds)
