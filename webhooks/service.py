"""Webhook Event use cases: resource leases, claiming a resource's events, admin actions."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.background import PROCESS_WEBHOOK_EVENTS, WEBHOOK_QUEUE
from app.clock import utcnow
from app.db import Database
from app.listing import ListFilter, conditions, page_query
from app.records.models import RecordLink
from app.runtime import Runtime
from app.workrows import admin as row_admin
from app.workrows import dispatch, leases
from app.workrows.leases import Lease, owned
from webhooks.models import FAILED, WORKABLE, WebhookEvent

links = RecordLink.__table__
events = WebhookEvent.__table__
AUDIT_TARGET = "webhook_event"


def resources_of(db: Database, ids: Sequence[int]) -> list[tuple[str, str | None]]:
    """The distinct (resource_type, resource_id) of the given events still to work on."""
    with db.transaction() as session:
        rows = session.execute(sa.select(events.c.resource_type, events.c.resource_id)
                               .where(events.c.id.in_(list(ids)),
                                      events.c.status.in_(WORKABLE)).distinct())
        return [(r[0], r[1]) for r in rows]


def acquire_resource(db: Database, obj: str, gateway_id: str, lease: Lease) -> bool:
    """Lease one resource (its link row, created if new). False when another job holds it."""
    now = utcnow()
    with db.transaction() as session:
        session.execute(db.insert(links).values(object=obj, gateway_id=gateway_id, updated_at=now)
                        .on_conflict_do_nothing(index_elements=["object", "gateway_id"]))
        cond = sa.and_(links.c.object == obj, links.c.gateway_id == gateway_id,
                       sa.or_(leases.free(links, now), owned(links, lease)))
        return bool(leases.grant(session, db, links, cond, lease))


def holds_resource(session: Session, obj: str, gateway_id: str, lease: Lease) -> bool:
    """Whether ``lease`` still holds the resource (checked before writing what a partner
    call returned)."""
    return session.scalar(sa.select(sa.func.count()).select_from(links).where(
        links.c.object == obj, links.c.gateway_id == gateway_id, owned(links, lease))) > 0


def release_resource(db: Database, obj: str, gateway_id: str, lease: Lease) -> None:
    release_resources(db, [(obj, gateway_id)], lease)


def release_resources(db: Database, keys: Collection[tuple[str, str]], lease: Lease) -> None:
    """Give back every (object, gateway id) of ``keys`` still held under ``lease``, in one
    statement."""
    if not keys:
        return
    with db.transaction() as session:
        session.execute(sa.update(links).where(
            keyed(links.c.object, links.c.gateway_id, keys), owned(links, lease))
            .values(lease_owner=None, lease_until=None))


def held_links(session: Session, keys: Collection[tuple[str, str]],
               lease: Lease) -> dict[tuple[str, str], RecordLink]:
    """(object, gateway id) -> link, of the resources of ``keys`` still held under ``lease``,
    locked (PostgreSQL) in id order, as ``records.upsert_links`` locks them: one query."""
    if not keys:
        return {}
    found = session.scalars(sa.select(RecordLink).where(
        keyed(links.c.object, links.c.gateway_id, keys), owned(links, lease))
        .order_by(RecordLink.id).with_for_update())
    return {(link.object, str(link.gateway_id)): link for link in found}


def keyed(kind: sa.ColumnElement[Any], key: sa.ColumnElement[Any],
          keys: Collection[tuple[str, str]]) -> sa.ColumnElement[bool]:
    """Rows whose (``kind``, ``key``) is one of ``keys``: ``kind = k AND key IN (...)`` per
    kind, which PostgreSQL matches in one index scan each (a row-value list it plans arm by
    arm)."""
    by_kind: dict[str, list[str]] = {}
    for k, v in sorted(set(keys)):
        by_kind.setdefault(k, []).append(v)
    return sa.or_(sa.false(), *(sa.and_(kind == k, key.in_(values))
                                for k, values in by_kind.items()))


def retry_soon(db: Database, ids: Sequence[int], resources: Sequence[tuple[str, str]],
               seconds: float = 1.0) -> None:
    """Those resources are busy in another job: the dispatcher hands these out again shortly
    (the other job may already have passed them)."""
    with db.transaction() as session:
        session.execute(sa.update(events).where(
            events.c.id.in_(list(ids)), events.c.status == "pending",
            sa.tuple_(events.c.resource_type, events.c.resource_id).in_(list(resources)),
            events.c.lease_owner.is_(None))
            .values(next_attempt_at=utcnow() + timedelta(seconds=seconds), dispatched_at=None,
                    job_id=None))


def workable_actions(session: Session, resource_type: str, resource_id: str) -> set[str]:
    """The actions of the resource's events still to work on (no lease taken)."""
    return set(session.scalars(sa.select(events.c.action).where(
        events.c.resource_type == resource_type, events.c.resource_id == resource_id,
        events.c.status.in_(WORKABLE)).distinct()))


def lease_resource_events(session: Session, db: Database, resource_type: str,
                          resource_id: str | None, lease: Lease) -> list[WebhookEvent]:
    """Every workable event of the resource, oldest first: parked ones too, whatever their
    next look, because an event applied now may be exactly what they wait for."""
    return _lease_events(session, db, sa.and_(events.c.resource_type == resource_type,
                                              events.c.resource_id == resource_id), lease)


def lease_events_of(session: Session, db: Database, keys: Collection[tuple[str, str]],
                    lease: Lease) -> dict[tuple[str, str], list[WebhookEvent]]:
    """``lease_resource_events`` for many resources ((resource type, id) each) in one
    statement and one query; every key is in the answer, with no events if none is left."""
    found: dict[tuple[str, str], list[WebhookEvent]] = {key: [] for key in keys}
    if found:
        where = keyed(events.c.resource_type, events.c.resource_id, found)
        for ev in _lease_events(session, db, where, lease):
            found[(ev.resource_type, str(ev.resource_id))].append(ev)
    return found


def _lease_events(session: Session, db: Database, where: sa.ColumnElement[bool],
                  lease: Lease) -> list[WebhookEvent]:
    """Lease the workable events matching ``where`` and read every one held, oldest first
    (per resource: the order they are classified in)."""
    now = utcnow()
    leases.grant(session, db, events, sa.and_(
        where, events.c.status.in_(WORKABLE),
        sa.or_(leases.free(events, now), owned(events, lease))), lease)
    return list(session.scalars(
        sa.select(WebhookEvent).where(where, owned(events, lease))
        .order_by(WebhookEvent.event_time, WebhookEvent.event_id)))


def find_dispatchable(db: Database, *, limit: int, redispatch_after: float,
                      live: Collection[str] = (),
                      window: dispatch.Window | None = None) -> list[int]:
    """Ids of events due that no live job holds, oldest first (see ``dispatch.due_ids``)."""
    now = utcnow()
    cond = sa.and_(events.c.status.in_(WORKABLE), events.c.next_attempt_at <= now,
                   sa.or_(events.c.lease_until.is_(None), events.c.lease_until < now))
    with db.transaction() as session:
        return dispatch.due_ids(session, events, cond, order_by=[events.c.event_time],
                                limit=limit, redispatch_after=redispatch_after, live=live,
                                window=window)


# --- admin ---------------------------------------------------------------------------------

def list_events(db: Database, *, status: str | None = None, resource_type: str | None = None,
                resource_id: str | None = None, error: str | None = None,
                since: datetime | None = None, until: datetime | None = None, limit: int = 50,
                before_id: int | None = None) -> list[WebhookEvent]:
    """Newest first, keyset-paged (``before_id``), filtered as the console's lists are."""
    flt = ListFilter(status=status, kind=resource_type, record=resource_id, error=error,
                     since=since, until=until)
    query = page_query(WebhookEvent, event_conditions(flt), limit=limit, before_id=before_id)
    with db.transaction() as session:
        return list(session.scalars(query))


def event_conditions(flt: ListFilter) -> list[Any]:
    return conditions(WebhookEvent, flt, kind=WebhookEvent.resource_type,
                      record=WebhookEvent.resource_id)


def get_event(db: Database, row_id: int) -> WebhookEvent | None:
    with db.transaction() as session:
        return session.get(WebhookEvent, row_id)


def reprocess(rt: Runtime, *, ids: Sequence[int] | None = None,
              resource_type: str | None = None, actor: str = "admin") -> list[int]:
    """Failed events become pending and due now; never blocked by the duplicate-id rule,
    because the stored row itself is what is reprocessed."""
    query = sa.select(WebhookEvent).where(WebhookEvent.status == FAILED)
    if ids is not None:
        query = query.where(WebhookEvent.id.in_(list(ids)))
    if resource_type:
        query = query.where(WebhookEvent.resource_type == resource_type)
    done = row_admin.reprocess(rt.db, query, actor=actor, target_type=AUDIT_TARGET)
    dispatch.hand_out(rt.db, rt.redis, events, done, queue=WEBHOOK_QUEUE,
                      func=PROCESS_WEBHOOK_EVENTS, batch_size=rt.settings.batch_size,
                      timeout=rt.settings.job_timeout)
    return done


def discard(db: Database, row_id: int, reason: str, actor: str = "admin") -> WebhookEvent | None:
    return row_admin.discard_one(db, WebhookEvent, row_id, reason, actor, AUDIT_TARGET)


def discard_many(db: Database, ids: Sequence[int], reason: str, actor: str) -> list[int]:
    return row_admin.discard_many(db, WebhookEvent, ids, reason, actor, AUDIT_TARGET)


def counts_by_status(db: Database) -> dict[str, int]:
    return row_admin.counts_by_status(db, WebhookEvent)
