"""Handing rows to jobs: mark them in the database, then enqueue their ids (after commit).

Marking never touches a live lease: a row a job holds right now keeps its holder, so no
dispatcher, wake-up or admin action can free it for a second worker mid-call.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import redis
import sqlalchemy as sa

from app.background import chunk, enqueue, new_job_ids
from app.clock import utcnow
from app.db import Database
from app.workrows.leases import free


def dispatchable(table: Any, now: datetime, redispatch_after: float,
                 live: Collection[str]) -> sa.ColumnElement[bool]:
    """Rows to hand out: never handed out; handed out long enough ago that their job may be
    lost and it is not among ``live`` (``app.background.live_job_ids``: read once per pass,
    so no row's job is looked up on its own); or held under a lease that expired (its
    worker died or hung), whatever its job.

    Each branch is a range of an index (``ix_<table>_dispatched``, ``ix_<table>_leased``):
    when every row is held by a job handed it recently, the pass reads no row at all."""
    c = table.c
    stale = now - timedelta(seconds=redispatch_after)
    lost = sa.or_(c.job_id.is_(None), c.job_id.not_in(list(live))) if live else sa.true()
    return sa.or_(c.dispatched_at.is_(None),
                  sa.and_(c.dispatched_at < stale, lost),
                  sa.and_(c.lease_owner.is_not(None),
                          sa.or_(c.lease_until.is_(None), c.lease_until < now)))


def mark_dispatched(db: Database, table: Any, assignments: dict[str, Sequence[int]]
                    ) -> dict[str, list[int]]:
    """Record which job each row was handed to, for rows no live lease holds; returns the
    assignments as marked. An expired lease is cleared (its holder's token still fences
    it out once the new job claims the row)."""
    now = utcnow()
    marked: dict[str, list[int]] = {}
    with db.transaction() as session:
        for job_id, ids in assignments.items():
            rows = session.execute(
                sa.update(table).where(table.c.id.in_(list(ids)), free(table, now))
                .values(dispatched_at=now, job_id=job_id, lease_owner=None, lease_until=None)
                .returning(table.c.id)).all()
            if rows:
                marked[job_id] = sorted(r[0] for r in rows)
    return marked


def hand_out(db: Database, connection: redis.Redis, table: Any, ids: Sequence[int], *,
             queue: str, func: str, batch_size: int, timeout: int) -> int:
    """Hand ``ids`` to new jobs of ``batch_size`` rows each; returns how many were handed
    out. The one path from committed rows to RQ (intake marks rows in its own transaction
    and calls ``enqueue_marked``)."""
    if not ids:
        return 0
    chunks = chunk(list(ids), batch_size)
    marked = mark_dispatched(db, table, dict(zip(new_job_ids(len(ids), batch_size), chunks,
                                                 strict=True)))
    enqueue_marked(connection, marked, queue=queue, func=func, timeout=timeout)
    return sum(len(v) for v in marked.values())


def enqueue_marked(connection: redis.Redis, marked: dict[str, list[int]], *, queue: str,
                   func: str, timeout: int) -> bool:
    """Enqueue rows already marked as handed to these jobs (their transaction committed)."""
    return enqueue(connection, queue, func, marked, timeout=timeout)
