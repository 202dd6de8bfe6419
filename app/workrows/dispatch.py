"""Handing rows to jobs: mark them in the database, then enqueue their ids (after commit).

Marking never touches a live lease: a row a job holds right now keeps its holder, so no
dispatcher, wake-up or admin action can free it for a second worker mid-call.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.background import chunk, enqueue, new_job_ids
from app.clock import utcnow
from app.db import Database
from app.workrows.leases import free


@dataclass
class Window:
    """Where the next pass goes on judging rows handed out long ago (by id): each pass
    judges at most one window of them, so its cost does not grow with a backlog that live
    jobs hold, and every row is judged again within backlog / limit passes."""

    after: int = 0


def due_ids(session: Session, table: Any, base: sa.ColumnElement[bool], *,
            order_by: Sequence[Any], limit: int, redispatch_after: float,
            live: Collection[str], window: Window | None = None) -> list[int]:
    """Ids of the rows matching ``base`` to hand out, in one statement:

    - never handed out, or held under a lease that expired (its worker died or hung),
      whatever its job: ``limit`` of them in ``order_by`` order;
    - handed out more than ``redispatch_after`` seconds ago to a job that is not among
      ``live`` (``app.background.live_job_ids``, read once per pass: no row's job is looked
      up on its own): the next ``limit`` such rows after ``window``, which moves on.

    Each part is a range of an index (``ix_<table>_dispatched``, ``ix_<table>_leased``, the
    primary key), so a pass over rows that live jobs hold reads at most one window."""
    c = table.c
    now = utcnow()
    stale = now - timedelta(seconds=redispatch_after)
    expired = sa.and_(c.lease_owner.is_not(None),
                      sa.or_(c.lease_until.is_(None), c.lease_until < now))
    unheld = (sa.select(c.id, c.job_id, sa.literal(False).label("handed"))
              .where(base, sa.or_(c.dispatched_at.is_(None), expired))
              .order_by(*order_by).limit(limit).subquery())
    after = window.after if window is not None else 0
    handed = (sa.select(c.id, c.job_id, sa.literal(True).label("handed"))
              .where(base, c.dispatched_at < stale, c.id > after)
              .order_by(c.id).limit(limit).subquery())
    rows = session.execute(sa.union_all(sa.select(unheld), sa.select(handed))).all()
    old = [r for r in rows if r.handed]
    if window is not None:  # a short window reached the end: start again from the first
        window.after = max(r.id for r in old) if len(old) == limit else 0
    ids = [r.id for r in rows if not r.handed]
    ids += [r.id for r in old if r.job_id is None or r.job_id not in live]
    return list(dict.fromkeys(ids))


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
