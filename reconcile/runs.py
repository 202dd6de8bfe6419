"""A run's life in the database: opened or resumed, its progress and cursor saved with every
batch, its differences stored once each, finished with a summary by kind."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.db import Database
from reconcile.kinds import Finding
from reconcile.models import ReconcileDifference, ReconcileRun, ReconcileStaging

log = logging.getLogger(__name__)
# A run whose process saved nothing for this long is taken to have died: it may be resumed.
STALE_AFTER = timedelta(minutes=2)
UNFINISHED = ("running", "stopped", "failed")
QUEUED = "queued"  # asked for from the console; its admin job has not started it yet


class AlreadyRunning(Exception):
    """Another process is working on a run of this kind right now."""


class NotQueued(Exception):
    """The queued run a job was handed is gone or no longer queued."""


def refuse_if_busy(session: Session, kind: str, *, but: int | None = None) -> None:
    """Raise ``AlreadyRunning`` while another process is still saving progress on a run of
    this kind (``but``: a run that does not count, the caller's own)."""
    query = sa.select(ReconcileRun).where(
        ReconcileRun.kind == kind, ReconcileRun.state == "running",
        ReconcileRun.updated_at > utcnow() - STALE_AFTER)
    if but is not None:
        query = query.where(ReconcileRun.id != but)
    busy = session.scalars(query).first()
    if busy is not None:
        raise AlreadyRunning(f"{kind} run {busy.id} is running (last progress "
                             f"{busy.updated_at.isoformat()})")


def open_run(db: Database, kind: str, objects: Sequence[str], *, repair: bool = False,
             dry_run: bool = False, where: str | None = None, started_by: str = "cli",
             resume: bool = True, queued: int | None = None) -> tuple[ReconcileRun, bool]:
    """The unfinished run of the same kind and scope, taken up again (``True``), or a new
    one; ``queued``: the run the console asked for, taken up by its job. Refused while
    another process is still saving progress on a run of this kind."""
    now = utcnow()
    with db.transaction() as session:
        _one_opener(session, kind)
        refuse_if_busy(session, kind, but=queued)
        if queued is not None:
            return _take(session, queued, kind), False
        previous = session.scalars(sa.select(ReconcileRun).where(
            ReconcileRun.kind == kind, ReconcileRun.state.in_(UNFINISHED))
            .order_by(ReconcileRun.id.desc())).first()
        if (resume and previous is not None and list(previous.objects) == list(objects)
                and previous.soql_where == where and previous.dry_run == dry_run):
            previous.state, previous.error, previous.repair = "running", None, repair
            previous.updated_at = now
            return previous, True
        run = ReconcileRun(kind=kind, objects=list(objects), repair=repair, dry_run=dry_run,
                           soql_where=where, state="running", started_by=started_by,
                           started_at=now, updated_at=now, progress={}, cursor={}, summary={})
        session.add(run)
        session.flush()
        return run, False


def _one_opener(session: Session, kind: str) -> None:
    # Two starts at the same moment must not both find no busy run and both insert one.
    # SQLite: the transaction began IMMEDIATE, which already serialises writers; PostgreSQL:
    # a transaction-scoped advisory lock per kind does it (released at commit).
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                        {"key": f"paybridge-{kind}-run"})


def _take(session: Session, run_id: int, kind: str) -> ReconcileRun:
    run = session.get(ReconcileRun, run_id, with_for_update=True)
    if run is None or run.kind != kind or run.state != QUEUED:
        raise NotQueued(f"{kind} run {run_id} is not waiting to start")
    run.state, run.started_at, run.updated_at = "running", utcnow(), utcnow()
    return run


def cursor_of(db: Database, run_id: int, obj: str) -> dict[str, Any]:
    with db.transaction() as session:
        run = session.get(ReconcileRun, run_id)
        return dict((run.cursor or {}).get(obj) or {}) if run else {}


def save(session: Session, run_id: int, obj: str, *, phase: str, after: str | None,
         counts: dict[str, int] | None = None) -> None:
    """The object's cursor and progress, in the caller's transaction (the batch's)."""
    run = session.get(ReconcileRun, run_id, with_for_update=True)
    if run is None:
        return
    run.cursor = {**(run.cursor or {}), obj: {"phase": phase, "after": after}}
    progress = dict((run.progress or {}).get(obj) or {})
    for name, n in (counts or {}).items():
        progress[name] = progress.get(name, 0) + n
    progress["phase"] = phase
    run.progress = {**(run.progress or {}), obj: progress}
    run.updated_at = utcnow()


def store(session: Session, db: Database, run_id: int, findings: Iterable[Finding]) -> int:
    """Differences found, each once per run however often its batch is compared."""
    rows = [{"run_id": run_id, "key": f.key, "object": f.object, "kind": f.kind,
             "crm_id": f.crm_id, "gateway_id": f.gateway_id, "field": f.field,
             "crm_value": f.crm_value, "gateway_value": f.gateway_value, "repair": f.repair,
             "safe": f.safe, "repair_state": "pending", "note": f.note, "found_at": utcnow()}
            for f in findings]
    if not rows:
        return 0
    result = session.execute(db.insert(ReconcileDifference).values(rows)
                             .on_conflict_do_nothing(index_elements=["run_id", "key"]))
    return max(result.rowcount or 0, 0)


def summary(session: Session, run_id: int) -> dict[str, Any]:
    """Differences by kind: found, and still standing (not repaired)."""
    rows = session.execute(
        sa.select(ReconcileDifference.kind, ReconcileDifference.repair_state, sa.func.count())
        .where(ReconcileDifference.run_id == run_id)
        .group_by(ReconcileDifference.kind, ReconcileDifference.repair_state)).all()
    found: dict[str, int] = {}
    remaining: dict[str, int] = {}
    for kind, state, n in rows:
        found[kind] = found.get(kind, 0) + n
        if state != "applied":
            remaining[kind] = remaining.get(kind, 0) + n
    return {"found": found, "remaining": remaining,
            "repaired": sum(found.values()) - sum(remaining.values())}


def finish(db: Database, run_id: int, state: str, error: str | None = None) -> dict[str, Any]:
    """End the run; a finished run's staging rows are dropped (its differences stay)."""
    with db.transaction() as session:
        run = session.get(ReconcileRun, run_id, with_for_update=True)
        if run is None:
            return {}
        run.state, run.error = state, error
        run.summary = summary(session, run_id)
        if state == "done":
            run.finished_at = utcnow()
            session.execute(sa.delete(ReconcileStaging).where(ReconcileStaging.run_id == run_id))
        run.updated_at = utcnow()
        log.info("reconcile run ended", extra={"run": run_id, "state": state,
                                               "remaining": sum(run.summary["remaining"].values())})
        return dict(run.summary)
