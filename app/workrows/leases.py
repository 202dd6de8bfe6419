"""Fenced leases: who may work on a row, and proof that they still may.

A job takes one ``Lease`` (``new_lease``): a unique owner name and a fencing token drawn
from a counter that only grows. Every row or resource it claims carries that token; every
write it makes afterwards is conditional on the token (``owned``), so once another job has
claimed the row (with a larger token) the first job's late writes match nothing. A
``Heartbeat`` renews everything the job holds while it runs, and ``Lease.ensure`` refuses to
start a partner call that might outlive the lease.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.db import Base, Database

log = logging.getLogger(__name__)
COUNTER = "work"


class LeaseCounter(Base):
    """The source of fencing tokens: one row per counter, its value only ever grows."""

    __tablename__ = "lease_tokens"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    value: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class LeaseLost(Exception):
    """The lease can no longer be proven held for long enough: stop, write nothing."""


@dataclass
class Lease:
    owner: str
    token: int
    seconds: float
    renewed_at: float = field(default_factory=time.monotonic)
    # table name -> ids held under this lease (what the heartbeat renews)
    held: dict[str, set[int]] = field(default_factory=dict)
    fenced: int = 0  # writes dropped because the row had moved to another lease
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # One renewal at a time when several threads of the job need one (queues.lanes).
    _renewing: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def hold(self, table: sa.Table, ids: Iterable[int]) -> None:
        with self._lock:
            self.held.setdefault(table.name, set()).update(ids)

    def snapshot(self) -> dict[str, list[int]]:
        with self._lock:
            return {name: sorted(ids) for name, ids in self.held.items() if ids}

    def remaining(self) -> float:
        """Seconds the lease is certainly still valid (counted from the last renewal)."""
        return self.seconds - (time.monotonic() - self.renewed_at)

    def ensure(self, db: Database, need: float) -> None:
        """Make sure the lease outlives a step of ``need`` seconds: renew now if it might not;
        raise ``LeaseLost`` when that cannot be proven."""
        if self.remaining() > need:
            return
        with self._renewing:
            if self.remaining() <= need:  # not renewed by another thread meanwhile
                try:
                    renew(db, self)
                except sa.exc.SQLAlchemyError as exc:
                    raise LeaseLost(f"could not renew the lease: {exc}") from exc
        if self.remaining() <= need:
            raise LeaseLost(f"a {need:.1f}s step does not fit in a {self.seconds:.0f}s lease")

    def drop(self, what: str, rows: int = 1, **extra: Any) -> None:
        """A write matched nothing because its ``rows`` are no longer ours: log and count
        them."""
        with self._lock:
            self.fenced += rows
        log.warning("lease lost; result dropped", extra={"what": what, "token": self.token,
                                                         "rows": rows, **extra})


def new_lease(db: Database, label: str, seconds: float) -> Lease:
    """A lease for one job run, with the next fencing token."""
    # One atomic upsert: jobs starting together never collide, even before the counter row
    # exists (a database emptied by hand, or made without the migration's seed row).
    stmt = db.insert(LeaseCounter).values(name=COUNTER, value=1).on_conflict_do_update(
        index_elements=[LeaseCounter.name], set_={"value": LeaseCounter.value + 1},
    ).returning(LeaseCounter.value)
    with db.transaction() as session:
        token = session.execute(stmt).scalar_one()
    return Lease(owner=f"{label[:40]}:{uuid.uuid4().hex[:8]}", token=int(token),
                 seconds=seconds)


def owned(table: Any, lease: Lease) -> sa.ColumnElement[bool]:
    """Rows (or resources) of ``table`` still held under ``lease``."""
    c = table.c if hasattr(table, "c") else table
    return sa.and_(c.lease_token == lease.token, c.lease_owner == lease.owner)


def free(table: Any, now: Any) -> sa.ColumnElement[bool]:
    c = table.c if hasattr(table, "c") else table
    return sa.or_(c.lease_until.is_(None), c.lease_until < now)


def grant(session: Any, db: Database, table: sa.Table, cond: sa.ColumnElement[bool],
          lease: Lease) -> list[int]:
    """Put every row matching ``cond`` under ``lease`` (in the caller's transaction); returns
    their ids. On PostgreSQL rows locked by another claimer are skipped, never waited on."""
    if db.dialect == "postgresql":
        cond = table.c.id.in_(sa.select(table.c.id).where(cond)
                              .with_for_update(skip_locked=True))
    rows = session.execute(
        sa.update(table).where(cond)
        .values(lease_owner=lease.owner, lease_token=lease.token,
                lease_until=utcnow() + timedelta(seconds=lease.seconds))
        .returning(table.c.id)).all()
    ids = sorted(r[0] for r in rows)
    lease.hold(table, ids)
    return ids


def claim(db: Database, table: sa.Table, cond: sa.ColumnElement[bool],
          lease: Lease) -> list[int]:
    """``grant`` in a transaction of its own."""
    with db.transaction() as session:
        return grant(session, db, table, cond, lease)


def renew(db: Database, lease: Lease) -> int:
    """Extend everything still held under ``lease``; returns how many rows were renewed."""
    started = time.monotonic()
    held = lease.snapshot()
    renewed = 0
    if held:
        until = utcnow() + timedelta(seconds=lease.seconds)
        with db.transaction() as session:
            for name, ids in held.items():
                table = Base.metadata.tables[name]
                cond = sa.and_(table.c.id.in_(ids), owned(table, lease))
                if db.dialect == "postgresql":
                    # A row the job itself is writing right now is skipped, not waited on
                    # (no deadlock with the job's own transaction); the next beat renews it.
                    cond = table.c.id.in_(sa.select(table.c.id).where(cond)
                                          .with_for_update(skip_locked=True))
                result = session.execute(sa.update(table).where(cond)
                                         .values(lease_until=until))
                renewed += result.rowcount or 0
    lease.renewed_at = started
    return renewed


def release(db: Database, table: sa.Table, ids: Sequence[int], lease: Lease) -> None:
    """Give rows back untouched (graceful shutdown): they are due again at once."""
    if ids:
        with db.transaction() as session:
            session.execute(sa.update(table).where(table.c.id.in_(list(ids)),
                                                   owned(table, lease))
                            .values(lease_owner=None, lease_until=None, dispatched_at=None))


class Heartbeat:
    """Renews a job's lease in the background every quarter of its length, so rows the job
    holds never expire while it runs, whatever each step costs."""

    def __init__(self, db: Database, lease: Lease, interval: float | None = None) -> None:
        self.db, self.lease = db, lease
        self.interval = interval or max(0.05, lease.seconds / 4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat",
                                        daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                renew(self.db, self.lease)
            except Exception as exc:  # the job itself notices through Lease.ensure
                log.warning("lease renewal failed", extra={"token": self.lease.token,
                                                           "error": str(exc)})
