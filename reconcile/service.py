"""What the console (and anything else) reads and asks of reconciliation: runs, their
progress, differences filtered and paged, repairs of one or of all of a kind, CSV rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import Database
from app.runtime import Runtime
from reconcile import repairs
from reconcile.models import ReconcileDifference, ReconcileRun

CSV_COLUMNS = ("id", "run_id", "object", "kind", "crm_id", "gateway_id", "field", "crm_value",
               "gateway_value", "repair", "safe", "repair_state", "note", "found_at",
               "repaired_at")
PAGE = 100


def run_dict(run: ReconcileRun) -> dict[str, Any]:
    return {"id": run.id, "kind": run.kind, "objects": list(run.objects),
            "repair": run.repair, "dry_run": run.dry_run, "where": run.soql_where,
            "state": run.state, "started_by": run.started_by,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "updated_at": run.updated_at.isoformat(), "progress": dict(run.progress or {}),
            "summary": dict(run.summary or {}), "error": run.error}


def difference_dict(diff: ReconcileDifference) -> dict[str, Any]:
    return {c: _plain(getattr(diff, c)) for c in CSV_COLUMNS}


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def list_runs(db: Database, *, kind: str | None = None, before_id: int | None = None,
              limit: int = 50) -> list[dict[str, Any]]:
    """Newest first; ``before_id`` pages on."""
    query = sa.select(ReconcileRun).order_by(ReconcileRun.id.desc()).limit(limit)
    if kind:
        query = query.where(ReconcileRun.kind == kind)
    if before_id:
        query = query.where(ReconcileRun.id < before_id)
    with db.transaction() as session:
        return [run_dict(r) for r in session.scalars(query)]


def run_progress(db: Database, run_id: int) -> dict[str, Any] | None:
    with db.transaction() as session:
        run = session.get(ReconcileRun, run_id)
        return run_dict(run) if run is not None else None


def last_result(db: Database, kind: str = "reconcile") -> dict[str, Any] | None:
    """The newest finished run: what the dashboard shows."""
    with db.transaction() as session:
        return last_run(session, kind)


def last_run(session: Session, kind: str = "reconcile") -> dict[str, Any] | None:
    """``last_result`` inside the caller's transaction."""
    run = session.scalars(sa.select(ReconcileRun).where(
        ReconcileRun.kind == kind, ReconcileRun.state == "done")
        .order_by(ReconcileRun.id.desc()).limit(1)).first()
    return run_dict(run) if run is not None else None


def _filtered(run_id: int, kind: str | None, obj: str | None,
              state: str | None) -> sa.Select[tuple[ReconcileDifference]]:
    query = sa.select(ReconcileDifference).where(ReconcileDifference.run_id == run_id)
    if kind:
        query = query.where(ReconcileDifference.kind == kind)
    if obj:
        query = query.where(ReconcileDifference.object == obj)
    if state:
        query = query.where(ReconcileDifference.repair_state == state)
    return query.order_by(ReconcileDifference.id)


def differences(db: Database, run_id: int, *, kind: str | None = None,
                obj: str | None = None, state: str | None = None, after_id: int = 0,
                limit: int = PAGE) -> tuple[list[dict[str, Any]], int | None]:
    """One page of a run's differences (keyset: pass the returned id as ``after_id``; None
    when there is no further page)."""
    query = _filtered(run_id, kind, obj, state).where(ReconcileDifference.id > after_id)
    with db.transaction() as session:
        rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return [difference_dict(d) for d in rows], (rows[-1].id if more and rows else None)


def repair_one(rt: Runtime, difference_id: int) -> dict[str, str]:
    """Raises ``repairs.NotRepairable`` for a difference only an admin can settle."""
    state, note = repairs.repair_one(rt, difference_id)
    return {"repair_state": state, "note": note}


def repair_all(rt: Runtime, run_id: int, kind: str, obj: str | None = None) -> int:
    """Every pending safe repair of that kind in the run; returns how many were applied."""
    return repairs.apply_safe(rt, run_id, obj, kind)


def csv_rows(db: Database, run_id: int, *, kind: str | None = None, obj: str | None = None,
             state: str | None = None) -> Iterator[list[Any]]:
    """The header, then every matching difference, read a page at a time."""
    yield list(CSV_COLUMNS)
    after = 0
    while True:
        page, _ = differences(db, run_id, kind=kind, obj=obj, state=state, after_id=after,
                              limit=500)
        if not page:
            return
        for row in page:
            yield [row[c] for c in CSV_COLUMNS]
        after = int(page[-1]["id"])
