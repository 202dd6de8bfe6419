"""Applying webhook events to the CRM, per resource, in the order they occurred.

For each resource named by the job's events, and by the events delivered with them (so one
CRM write covers a delivery in every WEBHOOK_MODE; ``webhooks.coalescing``): lease the
resource (no other job applies its events meanwhile), lease all its workable events,
classify them oldest first and apply what may be applied (status history + watermark;
``webhooks.classification``). The plain resources of the job are classified together in one
transaction (``webhooks.together``); a resource new to Paybridge, or all of them when that
transaction fails, alone. Parked events are looked at again after every apply, so the
missing event wakes them at once; long-parked ones are healed from the gateway's current
state (``webhooks.healing``). Then one batched CRM write for every resource the job touched,
and the applied events are finished (``webhooks.crm_write``). No transaction spans a
network call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import sqlalchemy as sa

from app.logs import log_context
from app.workrows.leases import Lease, LeaseLost
from webhooks import service
from webhooks.classification import classify_resource
from webhooks.coalescing import claim_resources
from webhooks.context import Touched, WebhookContext, count_failure, fail_events
from webhooks.crm_write import done, write_crm
from webhooks.healing import heal
from webhooks.models import WebhookEvent
from webhooks.starting import starting_status
from webhooks.together import apply_together

__all__ = ["WebhookContext", "process_events"]

log = logging.getLogger(__name__)
Step = Callable[[WebhookContext, Touched, Lease], None]


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
    failed: set[tuple[str, str]] = set()
    try:
        for resource_type, resource_id in claimed.unlinked:
            with log_context(resource=resource_id):
                try:
                    _finish_unlinked(ctx, resource_type, resource_id, lease)
                except Exception as exc:  # the job boundary for this resource's events
                    _fail_resource(ctx, lease, exc, resource_type, resource_id)
        alone = {id(item) for item in apply_together(ctx, touched, lease)}
        for item in touched:
            _guarded(ctx, item, lease, _resource if id(item) in alone else _heal_gaps, failed)
        written = write_crm(ctx, [t for t in touched if t.event_ids
                                  and (t.obj, t.gateway_id) not in failed], lease)
    finally:
        service.release_resources(ctx.db, [(t.obj, t.gateway_id) for t in touched], lease)
    if claimed.busy:
        service.retry_soon(ctx.db, ids, claimed.busy)
    return {"resources": len(touched), "siblings": claimed.siblings, "written": written}


def _guarded(ctx: WebhookContext, item: Touched, lease: Lease, step: Step,
             failed: set[tuple[str, str]]) -> None:
    """Run one resource's ``step``; what it raises is recorded on that resource alone."""
    with log_context(resource=item.gateway_id):
        try:
            step(ctx, item, lease)
        except LeaseLost as exc:
            log.warning("lease not certain; resource left", extra={"error": str(exc)})
        except Exception as exc:  # the job boundary for this resource's events
            _fail_resource(ctx, lease, exc, item.resource_type, item.gateway_id)
            failed.add((item.obj, item.gateway_id))


def _resource(ctx: WebhookContext, item: Touched, lease: Lease) -> None:
    """Classify and apply one leased resource's events, healing gaps the gateway can close."""
    item.resource, item.created_status = starting_status(ctx, item.obj, item.gateway_id, lease)
    classify_resource(ctx, item, lease)
    _heal_gaps(ctx, item, lease)


def _heal_gaps(ctx: WebhookContext, item: Touched, lease: Lease) -> None:
    """Heal the gap classification marked, then classify again: until none is marked."""
    while item.heal is not None:
        heal_id, item.heal = item.heal, None
        item.healed.add(heal_id)
        heal(ctx, item, heal_id, lease)
        classify_resource(ctx, item, lease)


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
    fail_events(ctx, lease, exc, where=sa.and_(WebhookEvent.resource_type == resource_type,
                                               WebhookEvent.resource_id == resource_id))


def _finish_unlinked(ctx: WebhookContext, resource_type: str, resource_id: str | None,
                     lease: Lease) -> None:
    """Events about resources with no CRM object (creditors...) are recorded and finished;
    events that name no resource cannot be applied and go to an admin."""
    with ctx.db.transaction() as session:
        for ev in service.lease_resource_events(session, ctx.db, resource_type, resource_id,
                                                lease):
            if resource_id is None:
                count_failure(ctx, ev, stage="apply", transient=False,
                              error=f"event links no {resource_type} resource",
                              schedule=(), jitter=0)
            else:
                ev.reason = f"no CRM object for {resource_type}; nothing to apply"
                done(session, ev, ctx.settings)
