"""Applying webhook events to the CRM, per resource, in the order they occurred.

For each resource named by the job's events: lease the resource (no other job applies its
events meanwhile), lease all its workable events, classify them oldest first and apply what
may be applied (status history + watermark, in one transaction); parked events are looked at
again after every apply, so the missing event wakes them at once; long-parked ones are
healed from the gateway's current state. Then one batched CRM write for every resource the
job touched, and the applied events are finished. No transaction spans a network call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from app import rowqueue
from app.clients.errors import PartnerError, PausedError, PermanentError, TransientError
from app.clients.gateway import GatewayClient
from app.clients.salesforce import CrmWrite, SalesforceClient, paused_for
from app.clock import utcnow
from app.config import Settings
from app.crm_pause import CrmPause
from app.db import Database
from app.logs import log_context
from app.mapping import LAST_EVENT_FIELD, OBJECTS, RESOURCE_TO_OBJECT, STATUS_FIELD, status_label
from app.records import service as records
from app.records.models import RecordLink
from webhooks import service
from webhooks.crm_records import ensure_crm_record
from webhooks.lifecycles import UnknownAction, lifecycle_for
from webhooks.models import APPLIED, PARKED, STAGE_APPLIED, STALE, WebhookEvent
from webhooks.ordering import classify

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


def process_events(ctx: WebhookContext, ids: Sequence[int], owner: str) -> dict[str, int]:
    touched: list[Touched] = []
    busy: list[tuple[str, str]] = []
    try:
        for resource_type, resource_id in service.resources_of(ctx.db, ids):
            obj = RESOURCE_TO_OBJECT.get(resource_type)
            if obj is None or resource_id is None:
                _finish_unlinked(ctx, resource_type, resource_id, owner)
                continue
            if not service.acquire_resource(ctx.db, obj, resource_id, owner,
                                            ctx.settings.lease_seconds):
                busy.append((resource_type, resource_id))
                continue
            with log_context(resource=resource_id):
                item = Touched(obj, resource_id)
                touched.append(item)
                _classify_resource(ctx, item, owner)
                while item.heal is not None:
                    heal_id, item.heal = item.heal, None
                    _heal(ctx, item, heal_id, owner)
                    _classify_resource(ctx, item, owner)
        written = _write_crm(ctx, [t for t in touched if t.event_ids], owner)
    finally:
        for item in touched:
            service.release_resource(ctx.db, item.obj, item.gateway_id, owner)
    if busy:
        service.retry_soon(ctx.db, ids, busy)
    return {"resources": len(touched), "written": written}


def _finish_unlinked(ctx: WebhookContext, resource_type: str, resource_id: str | None,
                     owner: str) -> None:
    """Events about resources with no CRM object (creditors...) are recorded and finished;
    events that name no resource cannot be applied and go to an admin."""
    with ctx.db.transaction() as session:
        for ev in service.lease_resource_events(session, resource_type, resource_id, owner,
                                                ctx.settings.lease_seconds):
            if resource_id is None:
                _record_failure(ctx, ev, stage="apply", transient=False,
                                        error=f"event links no {resource_type} resource",
                                        schedule=(), jitter=0)
            else:
                ev.reason = f"no CRM object for {resource_type}; nothing to apply"
                _done(session, ev, ctx.settings)


def _classify_resource(ctx: WebhookContext, item: Touched, owner: str) -> None:
    s = ctx.settings
    lifecycle = lifecycle_for(OBJECTS[item.obj].resource)
    now = utcnow()
    with ctx.db.transaction() as session:
        link = records.upsert_link(session, item.obj, crm_id=None, gateway_id=item.gateway_id)
        events = service.lease_resource_events(session, OBJECTS[item.obj].resource,
                                               item.gateway_id, owner, s.lease_seconds)
        waiting = [ev for ev in events if ev.stage != STAGE_APPLIED]
        item.event_ids.extend(ev.id for ev in events if ev.stage == STAGE_APPLIED
                              and ev.id not in item.event_ids)
        progress = True
        while progress:
            progress = False
            for ev in list(waiting):
                kind, reason, to_status = _decide(lifecycle, link, ev)
                ev.reason = reason
                if kind in ("apply", "informational"):
                    records.record_transition(
                        session, link, to_status if kind == "apply" else None,
                        source="webhook", cause=_cause(ev), event_id=ev.event_id,
                        event_time=ev.event_time, watermark=kind == "apply")
                    ev.stage, ev.status = STAGE_APPLIED, "pending"
                    item.event_ids.append(ev.id)
                    waiting.remove(ev)
                    progress = progress or kind == "apply"
                elif kind == "stale":
                    ev.status = STALE
                    rowqueue.requeue(ev, now)
                    waiting.remove(ev)
                elif kind == "illegal":
                    _record_failure(ctx, ev, stage="apply", error=reason, transient=False,
                                            schedule=(), jitter=0)
                    waiting.remove(ev)
        for ev in waiting:  # gaps left after every apply: park them
            due = ev.next_attempt_at <= now or ev.status != PARKED
            if due:
                ev.attempts += 1
                rowqueue.log_attempt(ev, {"stage": "apply", "outcome": "parked",
                                          "error": ev.reason})
            if due and ev.attempts >= s.heal_after and item.heal is None:
                item.heal = ev.id
            ev.status = PARKED
            rowqueue.requeue(ev, ev.next_attempt_at if not due
                             else now + timedelta(seconds=s.park_wait))


def _record_failure(ctx: WebhookContext, ev: WebhookEvent, **kwargs: Any) -> str:
    """rowqueue.record_failure, counting the events that become Failed (dashboard, metrics)."""
    outcome = rowqueue.record_failure(ev, **kwargs)
    if outcome == "failed" and ctx.telemetry is not None:
        ctx.telemetry.failed("webhook", {ev.resource_type: 1})
    return outcome


def _decide(lifecycle: Any, link: Any, ev: WebhookEvent) -> tuple[str, str, str | None]:
    if lifecycle is None:
        return "informational", f"{ev.resource_type}: recorded", None
    watermark = (link.last_event_at, link.last_event_id) if link.last_event_at else None
    try:
        decision = classify(lifecycle, link.status, watermark, ev.action, ev.event_time,
                            ev.event_id, resource_id=ev.resource_id)
    except UnknownAction as exc:
        return "illegal", str(exc), None
    return decision.kind, decision.reason, decision.to_status


def _cause(ev: WebhookEvent) -> str:
    details = (ev.payload or {}).get("details") or {}
    cause = details.get("cause") or ev.action
    return f"{ev.action}: {cause}"[:200]


def _heal(ctx: WebhookContext, item: Touched, event_row: int, owner: str) -> None:
    """Waiting did not close the gap: ask the gateway where the resource is now."""
    resource = OBJECTS[item.obj].resource
    lifecycle = lifecycle_for(resource)
    try:
        gateway_status = str(ctx.gateway.get(resource, item.gateway_id).get("status"))
    except PartnerError as exc:
        log.warning("could not heal from the gateway", extra={"error": str(exc)})
        return
    with ctx.db.transaction() as session:
        link = records.upsert_link(session, item.obj, crm_id=None, gateway_id=item.gateway_id)
        ev = session.get(WebhookEvent, event_row)  # guarded by the resource lease we hold
        if ev is None or lifecycle is None:
            return
        target = lifecycle.status_for(ev.action)
        route = lifecycle.path(link.status, target) if target else None
        confirmed = target is not None and (gateway_status == target or
                                            lifecycle.path(target, gateway_status) is not None)
        if route is not None and confirmed:
            for missing in route:  # the gateway's state proves these stages happened
                records.record_transition(session, link, missing, source="heal",
                                          cause=f"missing event; gateway is {gateway_status}")
            ev.status = "pending"
            rowqueue.log_attempt(ev, {"stage": "heal", "outcome": "healed",
                                      "error": f"filled {', '.join(route) or 'nothing'}"})
        else:
            _record_failure(
                ctx, ev, stage="heal", transient=False, schedule=(), jitter=0,
                error=f"{ev.reason}; the gateway reports {gateway_status}, which does not "
                      "confirm the missing stages")


def _write_crm(ctx: WebhookContext, touched: list[Touched], owner: str) -> int:
    """One batched CRM write for every resource with applied events; then finish them."""
    if not touched:
        return 0
    labels = dict(ctx.settings.status_labels)
    links = _links_of(ctx.db, touched)
    writes: list[tuple[Touched, CrmWrite]] = []
    for item in touched:
        link = links.get((item.obj, item.gateway_id))
        crm_id = link.crm_id if link is not None else None
        if not crm_id:
            try:
                crm_id = ensure_crm_record(ctx.db, ctx.gateway, ctx.crm, item.obj,
                                           item.gateway_id, labels, owner,
                                           ctx.settings.lease_seconds)
            except PausedError as exc:  # the org's allocation: wait, spend no attempt
                _crm_wait(ctx, item.event_ids, owner, str(exc), _paused_for(ctx, exc))
                continue
            except PartnerError as exc:
                _crm_failed(ctx, item.event_ids, owner, exc)
                continue
            with ctx.db.transaction() as session:
                link = records.find_link(session, item.obj, gateway_id=item.gateway_id)
        fields: dict[str, Any] = {}
        if link and link.status and OBJECTS[item.obj].has_status:
            fields[STATUS_FIELD] = status_label(link.status, labels)
        if link and link.last_event_id:
            fields[LAST_EVENT_FIELD] = link.last_event_id
        writes.append((item, CrmWrite(OBJECTS[item.obj].sobject, crm_id, fields)))
    to_send = [(i, w) for i, w in writes if w.fields]
    done: list[int] = [e for i, w in writes if not w.fields for e in i.event_ids]
    try:
        results = ctx.crm.update_many([w for _, w in to_send]) if to_send else []
    except PausedError as exc:  # the org's allocation (shared pause) or our pacing
        _crm_wait(ctx, [e for i, _ in to_send for e in i.event_ids], owner, str(exc),
                  _paused_for(ctx, exc))
        return _finish(ctx, done, owner)
    except PartnerError as exc:
        _crm_failed(ctx, [e for i, _ in to_send for e in i.event_ids], owner, exc)
        return _finish(ctx, done, owner)
    for (item, _), result in zip(to_send, results, strict=True):
        if result.ok:
            done.extend(item.event_ids)
        else:
            error = (TransientError if result.transient else PermanentError)(
                f"Salesforce: {result.message}")
            _crm_failed(ctx, item.event_ids, owner, error)
    return _finish(ctx, done, owner)


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


def _owned_events(session: Any, ids: Sequence[int], owner: str) -> list[WebhookEvent]:
    """The given events this owner still holds, in one query."""
    if not ids:
        return []
    return list(session.scalars(sa.select(WebhookEvent).where(
        WebhookEvent.id.in_(list(ids)), WebhookEvent.lease_owner == owner)
        .order_by(WebhookEvent.id)))


def _finish(ctx: WebhookContext, ids: list[int], owner: str) -> int:
    finished = []
    with ctx.db.transaction() as session:
        for ev in _owned_events(session, ids, owner):
            finished.append((ev.resource_type, ev.created_at))
            _done(session, ev, ctx.settings)
    if ctx.telemetry is not None:
        ctx.telemetry.processed("webhook", finished)
    return len(ids)


def _done(session: Any, ev: WebhookEvent, settings: Settings) -> None:
    if settings.webhook_keep_applied > 0:
        ev.status = APPLIED
        rowqueue.requeue(ev, utcnow())
    else:
        session.delete(ev)


def _crm_failed(ctx: WebhookContext, ids: list[int], owner: str, exc: PartnerError) -> None:
    s = ctx.settings
    with ctx.db.transaction() as session:
        for ev in _owned_events(session, ids, owner):
            _record_failure(
                ctx, ev, stage="crm", error=str(exc), transient=isinstance(exc, TransientError),
                schedule=s.retry_schedule, jitter=s.retry_jitter,
                retry_after=getattr(exc, "retry_after", None), status=exc.status)


def _crm_wait(ctx: WebhookContext, ids: list[int], owner: str, reason: str,
              seconds: float) -> None:
    with ctx.db.transaction() as session:
        for ev in _owned_events(session, ids, owner):
            rowqueue.record_wait(ev, stage="crm", reason=reason, seconds=seconds)
