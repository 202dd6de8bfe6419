"""The rules that decide, oldest first, what becomes of each leased event of a resource.

Per event (``webhooks.ordering`` judges it against the resource's watermark): ``apply`` and
``informational`` write the status history (only ``apply`` moves the watermark) and keep
the event for the CRM write; an apply looks at the waiting events again, so a parked event
is woken by the one it waited for; ``stale`` is kept visible; ``illegal`` is Failed for an
admin; what is left waits, parked, and is marked for healing once waiting does not help.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.clock import utcnow
from app.records import service as records
from app.records.models import RecordLink
from app.workrows.leases import Lease
from app.workrows.rows import PENDING
from app.workrows.states import transition
from webhooks import service
from webhooks.context import Touched, WebhookContext, count_failure
from webhooks.lifecycles import CREATED, UnknownAction, lifecycle_for
from webhooks.models import PARKED, STAGE_APPLIED, STALE, WebhookEvent
from webhooks.ordering import classify
from webhooks.replacement import replacement_of


def classify_resource(ctx: WebhookContext, item: Touched, lease: Lease) -> None:
    """Lease one resource's events and classify them, in a transaction of its own; nothing
    when the resource is no longer held under ``lease``."""
    key = (item.obj, item.gateway_id)
    with ctx.db.transaction() as session:
        link = service.held_links(session, [key], lease).get(key)
        if link is None:
            lease.drop("apply", gateway_id=item.gateway_id)
            return
        events = service.lease_resource_events(session, ctx.db, item.resource_type,
                                               item.gateway_id, lease)
        classify_events(ctx, session, item, link, events)


def classify_events(ctx: WebhookContext, session: Session, item: Touched, link: RecordLink,
                    events: Sequence[WebhookEvent]) -> None:
    """Classify the resource's leased ``events`` (oldest first) against its ``link``, in the
    caller's transaction, noting on ``item`` what the CRM write and the heal need."""
    s = ctx.settings
    lifecycle = lifecycle_for(item.resource_type)
    now = utcnow()
    waiting = [ev for ev in events if ev.stage != STAGE_APPLIED]
    earlier = [ev.id for ev in events if ev.stage == STAGE_APPLIED
               and ev.id not in item.event_ids]
    for ev in events:
        if ev.stage == STAGE_APPLIED:
            note_replacement(item, ev)
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
                note_replacement(item, ev)
                waiting.remove(ev)
                progress = progress or kind == "apply"
                item.needs_write = item.needs_write or kind == "apply"
            elif kind == "stale":
                transition(ev, STALE, at=now)
                waiting.remove(ev)
            elif kind == "illegal":
                count_failure(ctx, ev, stage="apply", error=reason, transient=False,
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


def note_replacement(item: Touched, ev: WebhookEvent) -> None:
    new_id = replacement_of(ev)
    if new_id is not None:
        item.replaced_by, item.replaced_at = new_id, ev.event_time
        item.needs_write = True


def _unannounced(lifecycle: Any, link: Any) -> bool:
    """A resource Paybridge has never seen whose type no ``created`` event announces (a
    payout's first event is ``paid``): waiting for its starting event cannot help."""
    return link.status is None and lifecycle is not None and CREATED not in lifecycle.actions


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
