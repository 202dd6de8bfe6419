"""The CRM write of a webhook job: one Salesforce Collections call per 200 records for
every resource with applied events (their records made first when the CRM has none; a
replaced mandate's record re-linked), then the events written are finished in one
transaction. A refused write is retried on the schedule, a paused org waited for.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from app.clients.errors import PartnerError, PausedError, PermanentError, TransientError
from app.clients.salesforce import CrmWrite, paused_for
from app.config import Settings
from app.db import Database
from app.mapping import (
    GATEWAY_ID_FIELD,
    LAST_EVENT_FIELD,
    OBJECTS,
    STATUS_FIELD,
    status_label,
)
from app.records import service as records
from app.records.models import RecordLink
from app.workrows.leases import Lease, LeaseLost, owned
from app.workrows.rows import DONE
from app.workrows.states import record_wait, transition
from webhooks.context import Touched, WebhookContext, count_failure, fail_events
from webhooks.crm_records import ensure_crm_record
from webhooks.models import APPLIED, WebhookEvent
from webhooks.replacement import relink
from webhooks.service import keyed

log = logging.getLogger(__name__)


def write_crm(ctx: WebhookContext, touched: list[Touched], lease: Lease) -> int:
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
                fail_events(ctx, lease, exc, item.event_ids)
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
    """(object, gateway id) -> link of every touched resource, in one query."""
    with db.transaction() as session:
        return {(link.object, str(link.gateway_id)): link
                for link in session.scalars(sa.select(RecordLink).where(keyed(
                    RecordLink.object, RecordLink.gateway_id,
                    [(item.obj, item.gateway_id) for item in touched])))}


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
            done(session, ev, ctx.settings)
    if len(finished) < len(ids):
        lease.drop("finish", len(ids) - len(finished))
    if ctx.telemetry is not None:
        ctx.telemetry.processed("webhook", finished)
    return len(finished)


def done(session: Any, ev: WebhookEvent, settings: Settings) -> None:
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
            count_failure(
                ctx, ev, stage=stage, error=str(exc), transient=isinstance(exc, TransientError),
                schedule=s.retry_schedule, jitter=s.retry_jitter,
                retry_after=getattr(exc, "retry_after", None), status=exc.status)


def _crm_wait(ctx: WebhookContext, ids: list[int], lease: Lease, reason: str,
              seconds: float) -> None:
    with ctx.db.transaction() as session:
        for ev in _owned_events(session, ids, lease):
            record_wait(ev, stage="crm", reason=reason, seconds=seconds)
