"""Catch-up: ask the gateway for events that never arrived, and store them like any other.

The gateway gives up on a delivery after its own retries; this lists its events created
since shortly before the newest one Paybridge has seen, through the same intake path (so
duplicates are ignored as usual).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa

from app.clock import iso, utcnow
from app.records.models import StatusHistory
from app.runtime import Runtime
from webhooks import intake
from webhooks.models import WebhookEvent
from webhooks.schemas import EventSchema

log = logging.getLogger(__name__)
MAX_PAGES = 50


def newest_seen(rt: Runtime):  # type: ignore[no-untyped-def]
    with rt.db.transaction() as session:
        times = [session.scalar(sa.select(sa.func.max(WebhookEvent.event_time))),
                 session.scalar(sa.select(sa.func.max(StatusHistory.event_time)))]
    return max((t for t in times if t is not None), default=None)


def catch_up(rt: Runtime) -> int:
    """Store missing events; returns how many new ones were stored."""
    newest = newest_seen(rt)
    since = (newest or utcnow() - timedelta(days=1)) - timedelta(
        seconds=rt.settings.catchup_overlap)
    schema = EventSchema()
    stored, cursor = 0, None
    for _ in range(MAX_PAGES):
        events, cursor = rt.gateway.list_events(created_after=iso(since), after=cursor)
        if events:
            parsed = [schema.load(e) for e in events]
            stored += len(intake.ingest(rt, "catchup", events, parsed).stored)
        if not cursor or not events:
            break
    if stored:
        log.info("catch-up stored missing events", extra={"stored": stored})
    return stored
