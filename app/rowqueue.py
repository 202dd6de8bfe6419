"""Durable work rows: the mechanics both queues share.

A work row (an API Queue item, a Webhook Event) lives in the database, is leased by one job
at a time, keeps an error log of every attempt, is retried on the configured schedule, and
ends Failed for an admin to reprocess or discard. Every state change is guarded by the lease
owner, so a worker whose lease expired cannot overwrite what the new owner did.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from app import audit
from app.clock import iso, utcnow
from app.db import Database, JSONType, UTCDateTime
from app.redaction import redact
from app.retry import next_delay

PENDING, FAILED, DISCARDED = "pending", "failed", "discarded"
MAX_LOG_ENTRIES = 50


class WorkRow:
    """Columns every work row has (mixed into the feature's model)."""

    status: Mapped[str] = mapped_column(sa.String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    job_id: Mapped[str | None] = mapped_column(sa.String(64))
    error_log: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    discard_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


R = TypeVar("R", bound=WorkRow)


def unleased(model: type[WorkRow], now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(model.status == PENDING, model.next_attempt_at <= now,
                   sa.or_(model.lease_until.is_(None), model.lease_until < now))


def lease(db: Database, model: type[WorkRow], cond: sa.ColumnElement[bool], owner: str,
          lease_seconds: float) -> list[int]:
    """Lease every row matching ``cond`` in one round trip; returns their ids."""
    table = model.__table__  # type: ignore[attr-defined]
    now = utcnow()
    with db.transaction() as session:
        if db.dialect == "postgresql":
            # SKIP LOCKED: two claimers never wait on each other's rows.
            cond = table.c.id.in_(sa.select(table.c.id).where(cond)
                                  .with_for_update(skip_locked=True))
        rows = session.execute(
            sa.update(table).where(cond)
            .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds))
            .returning(table.c.id)
        ).all()
    return sorted(r[0] for r in rows)


def renew(db: Database, model: type[WorkRow], ids: Sequence[int], owner: str,
          lease_seconds: float) -> None:
    if ids:
        with db.transaction() as session:
            session.execute(sa.update(model).where(
                model.id.in_(list(ids)), model.lease_owner == owner)  # type: ignore[attr-defined]
                .values(lease_until=utcnow() + timedelta(seconds=lease_seconds)))


def release(db: Database, model: type[WorkRow], ids: Sequence[int], owner: str) -> None:
    """Give rows back untouched (graceful shutdown): they are due again at once."""
    if ids:
        with db.transaction() as session:
            session.execute(sa.update(model).where(
                model.id.in_(list(ids)), model.lease_owner == owner)  # type: ignore[attr-defined]
                .values(lease_owner=None, lease_until=None, dispatched_at=None))


def load_owned(session: Session, model: type[R], row_id: int, owner: str) -> R | None:
    return session.scalars(sa.select(model).where(
        model.id == row_id, model.lease_owner == owner)).first()  # type: ignore[attr-defined]


def log_attempt(row: WorkRow, entry: dict[str, Any]) -> None:
    entry = {"at": iso(utcnow()), "attempt": row.attempts, **entry}
    if entry.get("error"):
        entry["error"] = redact(str(entry["error"]))[:2000]
    row.error_log = [*(row.error_log or []), entry][-MAX_LOG_ENTRIES:]


def requeue(row: WorkRow, at: datetime) -> None:
    row.next_attempt_at = at
    row.lease_owner = row.lease_until = row.dispatched_at = row.job_id = None


def record_failure(row: WorkRow, *, stage: str, error: str, transient: bool,
                   schedule: Sequence[float], jitter: float, retry_after: float | None = None,
                   status: int | None = None) -> str:
    """Count an attempt; schedule the retry or make the row Failed. Returns the outcome."""
    row.attempts += 1
    delay = next_delay(row.attempts, schedule, jitter=jitter,
                       retry_after=retry_after) if transient else None
    outcome = "retry" if delay is not None else "failed"
    log_attempt(row, {"stage": stage, "outcome": outcome, "error": error, "status": status,
                      **({"retry_in_s": round(delay, 3)} if delay is not None else {})})
    row.last_error = redact(error)[:2000]
    if delay is None:
        row.status = FAILED
        requeue(row, utcnow())
    else:
        requeue(row, utcnow() + timedelta(seconds=delay))
    return outcome


def record_wait(row: WorkRow, *, stage: str, reason: str, seconds: float) -> None:
    """Postpone without spending an attempt: the cause is elsewhere (a parent, a pause)."""
    last = (row.error_log or [{}])[-1]
    if last.get("outcome") != "waiting" or last.get("error") != reason:
        log_attempt(row, {"stage": stage, "outcome": "waiting", "error": reason})
    requeue(row, utcnow() + timedelta(seconds=seconds))


def mark_dispatched(db: Database, model: type[WorkRow],
                    assignments: dict[str, Sequence[int]]) -> None:
    now = utcnow()
    with db.transaction() as session:
        for job_id, ids in assignments.items():
            session.execute(sa.update(model).where(model.id.in_(list(ids)))  # type: ignore[attr-defined]
                            .values(dispatched_at=now, job_id=job_id, lease_owner=None,
                                    lease_until=None))


def dispatchable(model: type[WorkRow], now: datetime,
                 redispatch_after: float) -> sa.ColumnElement[bool]:
    """Never handed out, or handed out long enough ago that the job may be lost, or leased
    by a worker whose lease expired."""
    stale = now - timedelta(seconds=redispatch_after)
    return sa.or_(model.dispatched_at.is_(None), model.dispatched_at < stale,
                  model.lease_owner.is_not(None))


def reprocess(session: Session, query: sa.Select[Any], actor: str) -> list[int]:
    """Failed rows (selected by ``query``) become due now, with a fresh set of retries."""
    rows = list(session.scalars(query.with_for_update()))
    for row in rows:
        row.status, row.attempts = PENDING, 0
        log_attempt(row, {"stage": "admin", "outcome": "reprocess", "error": None, "by": actor})
        requeue(row, utcnow())
    return [row.id for row in rows]


def discard(row: WorkRow, reason: str, actor: str) -> None:
    if row.status != FAILED:
        raise ValueError(f"only Failed items can be discarded; this one is {row.status}")
    row.status = DISCARDED
    row.discard_reason = redact(reason)[:2000]
    log_attempt(row, {"stage": "admin", "outcome": "discarded", "error": None, "by": actor})
    requeue(row, utcnow())


def discard_one(db: Database, model: type[R], row_id: int, reason: str, actor: str,
                audit_target: str) -> R | None:
    """Discard one Failed row, audited. Raises ValueError when it is not Failed."""
    with db.transaction() as session:
        row = session.get(model, row_id, with_for_update=True)
        if row is not None:
            before = row.status
            discard(row, reason, actor)
            audit.record(session, actor=actor, action="discard", target_type=audit_target,
                         target_id=row.id, before={"status": before},  # type: ignore[attr-defined]
                         after={"status": row.status}, note=reason)
        return row


def discard_many(db: Database, model: type[WorkRow], ids: Sequence[int], reason: str,
                 actor: str, audit_target: str) -> list[int]:
    """Discard those of ``ids`` that are Failed, in one transaction (bulk operations)."""
    with db.transaction() as session:
        rows = list(session.scalars(sa.select(model).where(
            model.id.in_(list(ids)), model.status == FAILED)  # type: ignore[attr-defined]
            .with_for_update()))
        for row in rows:
            discard(row, reason, actor)
        done = [row.id for row in rows]  # type: ignore[attr-defined]
        audit.record_many(session, actor=actor, action="discard", target_type=audit_target,
                          target_ids=done, before={"status": FAILED},
                          after={"status": DISCARDED}, note=reason)
        return done


def counts_by_status(db: Database, model: type[WorkRow]) -> dict[str, int]:
    with db.transaction() as session:
        rows = session.execute(sa.select(model.status, sa.func.count()).group_by(model.status))
        return {status: count for status, count in rows}
