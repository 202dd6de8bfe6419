"""Catch-up: ask the gateway for events that never arrived, and store them like any other.

The gateway gives up on a delivery after its own retries (GoCardless: 8 attempts), so an
event can be missing however long ago it was made, even when newer events did arrive. The
catch-up therefore keeps a durable watermark, ``covered_until``: every event the gateway
created at or before it has been listed. A scan lists the events created after the
watermark less an overlap (events the gateway made visible late), newest first, following
the list's cursors to the end; only a finished scan moves the watermark, to the newest event
its first page showed. The scan's place is saved after every page, so a page budget per
tick, a crash or a restart resumes where it stopped instead of starting again or giving up.
Everything it lists goes through the normal intake, where duplicates are ignored.

Several clocks may run it: each save is conditional on the version it read, so a clock that
finds another one ahead stops for this tick.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.clock import iso, utcnow
from app.records.models import StatusHistory
from app.runtime import Runtime
from webhooks import intake
from webhooks.models import CatchupState, WebhookEvent
from webhooks.schemas import EventSchema

log = logging.getLogger(__name__)
STATE = "events"


@dataclass
class Scan:
    version: int
    covered_until: datetime
    since: datetime | None
    top: datetime | None
    cursor: str | None


def newest_seen(rt: Runtime) -> datetime | None:
    with rt.db.transaction() as session:
        times = [session.scalar(sa.select(sa.func.max(WebhookEvent.event_time))),
                 session.scalar(sa.select(sa.func.max(StatusHistory.event_time)))]
    return max((t for t in times if t is not None), default=None)


def _load(rt: Runtime) -> Scan:
    with rt.db.transaction() as session:
        row = session.get(CatchupState, STATE)
        if row is not None:
            return Scan(row.version, row.covered_until, row.scan_since, row.scan_top,
                        row.scan_cursor)
    # The first run of a new install (or of an upgraded one) starts from what has been
    # seen; gaps from before are reconciliation's to find.
    start = newest_seen(rt) or utcnow()
    with rt.db.transaction() as session:  # a clock starting alongside may have made it
        session.execute(rt.db.insert(CatchupState)
                        .values(name=STATE, version=0, covered_until=start)
                        .on_conflict_do_nothing(index_elements=[CatchupState.name]))
    return _load(rt)


def _save(rt: Runtime, scan: Scan) -> bool:
    """Store the scan's place; False when another clock saved first (stop this tick)."""
    table = CatchupState.__table__
    with rt.db.transaction() as session:
        moved = session.execute(
            sa.update(table).where(table.c.name == STATE, table.c.version == scan.version)
            .values(version=scan.version + 1, covered_until=scan.covered_until,
                    scan_since=scan.since, scan_top=scan.top, scan_cursor=scan.cursor,
                    updated_at=utcnow())).rowcount
    scan.version += 1
    return moved == 1


def _newest(events: list[dict[str, Any]]) -> datetime | None:
    return max((e["created_at"] for e in events), default=None)


def catch_up(rt: Runtime) -> int:
    """Read at most ``CATCHUP_PAGES`` pages of missing events; returns how many were new."""
    s = rt.settings
    scan = _load(rt)
    schema = EventSchema()
    stored = 0
    for _ in range(s.catchup_pages):
        if scan.since is None:
            scan.since = scan.covered_until - timedelta(seconds=s.catchup_overlap)
        events, cursor = rt.gateway.list_events(created_after=iso(scan.since),
                                                after=scan.cursor, limit=s.catchup_page_size)
        parsed = [schema.load(e) for e in events]
        if events:
            stored += len(intake.ingest(rt, "catchup", events, parsed).stored)
        if scan.cursor is None:  # the first page: the newest event this scan covers
            scan.top = _newest(parsed)
        finished = not cursor or not events
        if finished:
            if scan.top is not None:
                scan.covered_until = max(scan.covered_until, scan.top)
            scan.since, scan.top, scan.cursor = None, None, None
        else:
            scan.cursor = cursor
        if not _save(rt, scan) or finished:
            break
    if stored:
        log.info("catch-up stored missing events", extra={"stored": stored})
    return stored
