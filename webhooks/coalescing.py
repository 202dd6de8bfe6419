"""Which resources one webhook job applies: its own events', and those of the events that
arrived with them, so that one CRM write (sObject Collections, 200 records a call) covers a
whole delivery whatever WEBHOOK_MODE hands out.

A job takes, besides the resources of its own workable events, the resources of the other
due events of the same deliveries that no live lease holds, up to JOB_BATCH_SIZE resources in
all, and leases every one of them in one statement: jobs that start together (one per event
in event mode) never split a delivery between them, and the per-event jobs that run later
find their events applied, or their resource held, and return without a partner call.
Nothing depends on a sibling being taken here: each event still has its own job (or the
dispatcher), and a resource is only ever worked on under its lease, its events leased after
it, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.db import Database
from app.mapping import RESOURCE_TO_OBJECT
from app.records.models import RecordLink
from app.workrows import leases
from app.workrows.leases import Lease, owned
from webhooks.models import WORKABLE, WebhookEvent

links = RecordLink.__table__
events = WebhookEvent.__table__
# A delivery is stored by one INSERT, so its rows have neighbouring ids: siblings are looked
# for within this many batches of ids either side of the job's own (a primary-key range,
# cheap whatever the backlog; a sibling outside it is applied by its own job).
NEIGHBOURHOOD = 4


@dataclass
class Claimed:
    """What a job may work on: resources leased to it, own ones first."""

    # (resource type, resource id, CRM object) of every resource now held under the lease
    leased: list[tuple[str, str, str]] = field(default_factory=list)
    # own events' resources another job holds (their events are handed out again soon)
    busy: list[tuple[str, str]] = field(default_factory=list)
    # own events' resources with no CRM object, or events naming no resource
    unlinked: list[tuple[str, str | None]] = field(default_factory=list)
    siblings: int = 0  # leased resources none of the job's own events named


def claim_resources(db: Database, ids: Sequence[int], lease: Lease, limit: int,
                    job_id: str | None = None) -> Claimed:
    """Lease the resources of the events ``ids`` and of their due, unheld siblings (same
    deliveries), ``limit`` resources at most beyond the job's own.

    ``job_id``: the RQ job running; of ``ids`` only the events still handed to it count as
    its own. An event another job took as a sibling and could not finish (a CRM write to
    retry later) no longer names this job: it is due again when its retry is, and the
    dispatcher hands it out then, instead of every later per-event job trying it at once."""
    claimed = Claimed()
    with db.transaction() as session:
        if job_id is not None:
            ids = list(session.scalars(sa.select(events.c.id).where(
                events.c.id.in_(list(ids)), events.c.job_id == job_id)))
        if not ids:  # event mode: most per-event jobs find their event taken with its delivery
            return claimed
        own = _own_resources(session, ids)
        mapped = [(t, r) for t, r in own if r is not None and t in RESOURCE_TO_OBJECT]
        claimed.unlinked = [(t, r) for t, r in own if (t, r) not in mapped]
        siblings = _siblings(session, ids, set(mapped), limit - len(mapped))
    wanted: list[tuple[str, str]] = [(t, r) for t, r in mapped if r is not None] + siblings
    held = _lease_all(db, [(RESOURCE_TO_OBJECT[t], r) for t, r in wanted], lease)
    for resource_type, resource_id in wanted:
        obj = RESOURCE_TO_OBJECT[resource_type]
        if (obj, resource_id) in held:
            claimed.leased.append((resource_type, resource_id, obj))
        elif (resource_type, resource_id) in mapped:
            claimed.busy.append((resource_type, resource_id))
    claimed.siblings = sum(1 for t, r, _ in claimed.leased if (t, r) not in mapped)
    return claimed


def _own_resources(session: Session, ids: Sequence[int]) -> list[tuple[str, str | None]]:
    """The distinct resources of the given events still to work on, oldest event first."""
    rows = session.execute(
        sa.select(events.c.resource_type, events.c.resource_id)
        .where(events.c.id.in_(list(ids)), events.c.status.in_(WORKABLE))
        .group_by(events.c.resource_type, events.c.resource_id)
        .order_by(sa.func.min(events.c.id)))
    return [(r[0], r[1]) for r in rows]


def _siblings(session: Session, ids: Sequence[int], own: set[tuple[str, str | None]],
              limit: int) -> list[tuple[str, str]]:
    """Resources of due events stored in the same deliveries as the job's own workable
    events, that no live lease holds, oldest first, ``limit`` at most."""
    if limit <= 0 or not ids:
        return []
    deliveries = list(session.scalars(sa.select(events.c.delivery_id).where(
        events.c.id.in_(list(ids)), events.c.status.in_(WORKABLE)).distinct()))
    if not deliveries:
        return []
    now = utcnow()
    span = max(limit, 1) * NEIGHBOURHOOD
    rows = session.execute(
        sa.select(events.c.resource_type, events.c.resource_id)
        .where(events.c.id.between(min(ids) - span, max(ids) + span),
               events.c.delivery_id.in_(deliveries), events.c.status.in_(WORKABLE),
               events.c.next_attempt_at <= now, leases.free(events, now),
               events.c.resource_id.is_not(None),
               events.c.resource_type.in_(list(RESOURCE_TO_OBJECT)))
        .group_by(events.c.resource_type, events.c.resource_id)
        .order_by(sa.func.min(events.c.id)).limit(limit + len(own)))
    found = [(r[0], r[1]) for r in rows if (r[0], r[1]) not in own]
    return found[:limit]


def _lease_all(db: Database, keys: list[tuple[str, str]], lease: Lease) -> set[tuple[str, str]]:
    """Lease every free resource of ``keys`` (their link rows, made if new) in one statement;
    returns those now held. Rows another claimer has locked are skipped, never waited on."""
    if not keys:
        return set()
    wanted = sorted(set(keys))  # one insertion order for every job: no deadlock between them
    now = utcnow()
    pairs = sa.tuple_(links.c.object, links.c.gateway_id)
    with db.transaction() as session:
        known = {(r[0], r[1]) for r in session.execute(
            sa.select(links.c.object, links.c.gateway_id).where(pairs.in_(wanted)))}
        missing = [{"object": o, "gateway_id": g, "updated_at": now}
                   for o, g in wanted if (o, g) not in known]
        if missing:
            session.execute(db.insert(links).on_conflict_do_nothing(
                index_elements=["object", "gateway_id"]), missing)
        granted = leases.grant(session, db, links, sa.and_(
            pairs.in_(wanted), sa.or_(leases.free(links, now), owned(links, lease))), lease)
        if not granted:
            return set()
        return {(r[0], r[1]) for r in session.execute(
            sa.select(links.c.object, links.c.gateway_id).where(links.c.id.in_(granted)))}
