"""What the console (and anything else) reads and asks of reconciliation: runs, their
progress, differences counted, filtered and paged, repairs of one difference, the
conditions a repair of all of a kind works through, CSV rows.

Difference rows are stored masked (``compare.shown``); everything read here is masked
again on the way out, so a value that slipped past one path (a partner's message quoted in
a note) still never reaches a page, a CSV file or a JSON answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import Database
from app.errors import Conflict, NotFound, ValidationFailed
from app.mapping import OBJECTS
from app.redaction import redact
from app.runtime import Runtime
from reconcile import repairs
from reconcile.kinds import KINDS
from reconcile.models import OPEN, REPAIR_STATES, ReconcileDifference, ReconcileRun

CSV_COLUMNS = ("id", "run_id", "object", "kind", "crm_id", "gateway_id", "field", "crm_value",
               "gateway_value", "repair", "safe", "repair_state", "note", "found_at",
               "repaired_at")
MASKED = ("crm_value", "gateway_value", "note")
PAGE = 100
CSV_PAGE = 1000
# Open: not repaired yet; a failed repair may be asked for again once its cause is fixed.
# Counters a run's per-object progress may carry (reconcile's and backfill's).
COUNTERS = ("gateway_seen", "crm_seen", "differences", "matched", "queued", "reported")
BUSY = ("queued", "running")


def run_dict(run: ReconcileRun) -> dict[str, Any]:
    progress = dict(run.progress or {})
    totals = {c: sum(int(p.get(c, 0)) for p in progress.values()) for c in COUNTERS}
    return {"id": run.id, "kind": run.kind, "objects": list(run.objects),
            "repair": run.repair, "dry_run": run.dry_run, "where": run.soql_where,
            "state": run.state, "started_by": run.started_by,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "updated_at": run.updated_at.isoformat(), "progress": progress,
            "totals": totals, "summary": dict(run.summary or {}), "error": run.error}


def difference_dict(diff: ReconcileDifference) -> dict[str, Any]:
    return dict(zip(CSV_COLUMNS, _shown([getattr(diff, c) for c in CSV_COLUMNS]), strict=True))


_MASKED_AT = tuple(CSV_COLUMNS.index(c) for c in MASKED)
_TIMES_AT = tuple(CSV_COLUMNS.index(c) for c in ("found_at", "repaired_at"))
_COLUMNS = tuple(ReconcileDifference.__table__.c[c] for c in CSV_COLUMNS)
_DIGIT = re.compile(r"\d")


def _shown(values: list[Any]) -> list[Any]:
    """One row's values in CSV_COLUMNS order as they may be shown: masked, times as text.
    Every bank-detail pattern has a digit in it: text without one is left as it is."""
    for i in _MASKED_AT:
        if values[i] and _DIGIT.search(values[i]):
            values[i] = redact(str(values[i]))
    for i in _TIMES_AT:
        if values[i] is not None:
            values[i] = values[i].isoformat()
    return values


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


def get_run(db: Database, run_id: int) -> dict[str, Any]:
    """``run_progress``, or ``NotFound``."""
    run = run_progress(db, run_id)
    if run is None:
        raise NotFound(f"reconcile run {run_id} does not exist")
    return run


def last_result(db: Database, kind: str = "reconcile") -> dict[str, Any] | None:
    """The newest finished run: what the metrics and alerts judge by."""
    with db.transaction() as session:
        return last_run(session, kind)


def last_run(session: Session, kind: str = "reconcile") -> dict[str, Any] | None:
    """``last_result`` inside the caller's transaction."""
    run = session.scalars(sa.select(ReconcileRun).where(
        ReconcileRun.kind == kind, ReconcileRun.state == "done")
        .order_by(ReconcileRun.id.desc()).limit(1)).first()
    return run_dict(run) if run is not None else None


def latest(db: Database, kind: str = "reconcile") -> dict[str, Any] | None:
    """The newest run that has started, whatever became of it: what the dashboard shows."""
    with db.transaction() as session:
        run = session.scalars(sa.select(ReconcileRun).where(
            ReconcileRun.kind == kind, ReconcileRun.state != "queued")
            .order_by(ReconcileRun.id.desc()).limit(1)).first()
        return run_dict(run) if run is not None else None


@dataclass(frozen=True)
class DiffFilter:
    obj: str | None = None
    kind: str | None = None
    state: str | None = None
    safe: bool | None = None

    def as_args(self) -> dict[str, str]:
        """The filter as query-string values (the names ``parse_filter`` reads)."""
        out = {"object": self.obj, "kind": self.kind, "repair_state": self.state,
               "safe": None if self.safe is None else str(self.safe).lower()}
        return {k: v for k, v in out.items() if v}


CHOICES: dict[str, tuple[str, ...]] = {
    "object": tuple(OBJECTS), "kind": KINDS, "repair_state": REPAIR_STATES,
    "safe": ("true", "false")}


def parse_filter(args: Mapping[str, Any]) -> DiffFilter:
    """A filter from query-string values; an unknown value is refused, naming the field."""
    values: dict[str, str | None] = {}
    for name, allowed in CHOICES.items():
        value = str(args.get(name) or "").strip() or None
        if value is not None and value not in allowed:
            raise ValidationFailed(f"{name} must be one of {', '.join(allowed)}",
                                   details={"fields": {name: [f"unknown value {value!r}"]}})
        values[name] = value
    return DiffFilter(obj=values["object"], kind=values["kind"], state=values["repair_state"],
                      safe=None if values["safe"] is None else values["safe"] == "true")


def _conditions(run_id: int, flt: DiffFilter) -> list[Any]:
    conds: list[Any] = [ReconcileDifference.run_id == run_id]
    for column, value in ((ReconcileDifference.object, flt.obj),
                          (ReconcileDifference.kind, flt.kind),
                          (ReconcileDifference.repair_state, flt.state),
                          (ReconcileDifference.safe, flt.safe)):
        if value is not None:
            conds.append(column == value)
    return conds


def differences(db: Database, run_id: int, flt: DiffFilter = DiffFilter(), *,
                after_id: int = 0, limit: int = PAGE
                ) -> tuple[list[dict[str, Any]], int | None]:
    """One page of a run's differences in id order (keyset: pass the returned id as
    ``after_id``; None when there is no further page)."""
    rows = _page(db, run_id, flt, after_id, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return ([dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows],
            rows[-1][0] if more and rows else None)


def _page(db: Database, run_id: int, flt: DiffFilter, after_id: int,
          limit: int) -> list[list[Any]]:
    """Plain rows (no ORM objects: an export reads every one), shown as they may be."""
    query = (sa.select(*_COLUMNS)
             .where(*_conditions(run_id, flt), ReconcileDifference.id > after_id)
             .order_by(ReconcileDifference.id).limit(limit))
    with db.transaction() as session:
        return [_shown(list(r)) for r in session.execute(query)]


def counts(db: Database, run_id: int) -> list[dict[str, Any]]:
    """Per object and kind: differences found, still open, and open with a safe repair."""
    query = (sa.select(ReconcileDifference.object, ReconcileDifference.kind,
                       ReconcileDifference.repair_state, ReconcileDifference.safe,
                       sa.func.count())
             .where(ReconcileDifference.run_id == run_id)
             .group_by(ReconcileDifference.object, ReconcileDifference.kind,
                       ReconcileDifference.repair_state, ReconcileDifference.safe))
    table: dict[tuple[str, str], dict[str, Any]] = {}
    with db.transaction() as session:
        for obj, kind, state, safe, n in session.execute(query):
            row = table.setdefault((obj, kind), {"object": obj, "kind": kind, "found": 0,
                                                 "open": 0, "repairable": 0})
            row["found"] += n
            if state in OPEN:
                row["open"] += n
                row["repairable"] += n if safe else 0
    return [table[k] for k in sorted(table)]


def _settled(db: Database, run_id: int) -> None:
    """Repairs wait until the run has finished: its own repair phase may be working."""
    run = get_run(db, run_id)
    if run["state"] in BUSY:
        raise Conflict(f"{run['kind']} run {run_id} is {run['state']}: repair its "
                       "differences once it has finished", code="run_in_progress")


def repair_one(rt: Runtime, difference_id: int, actor: str) -> dict[str, Any]:
    """Repair one difference through its repair path; the difference as it is afterwards."""
    with rt.db.transaction() as session:
        diff = session.get(ReconcileDifference, difference_id)
        run_id = diff.run_id if diff is not None else None
    if run_id is None:
        raise NotFound(f"difference {difference_id} does not exist")
    _settled(rt.db, run_id)
    try:
        repairs.repair_one(rt, difference_id, actor)
    except repairs.NotRepairable as exc:
        raise Conflict(str(exc), code="not_repairable") from exc
    with rt.db.transaction() as session:
        return difference_dict(session.get(ReconcileDifference, difference_id))


def repair_conditions(spec: Mapping[str, Any]) -> list[Any]:
    """What a repair of all of a kind works through: the run's open differences of that
    kind (and object) that have a safe repair. ``spec``: run_id, kind, object."""
    return [*_conditions(int(spec["run_id"]), DiffFilter(obj=spec.get("object"),
                                                         kind=spec["kind"], safe=True)),
            ReconcileDifference.repair_state.in_(OPEN)]


def check_repair_all(db: Database, run_id: int, kind: str, obj: str | None) -> None:
    """Refuse a repair of all of a kind that names nothing real, or comes too early."""
    parse_filter({"kind": kind, "object": obj})
    if not kind:
        raise ValidationFailed("kind is required", details={"fields": {"kind": ["required"]}})
    _settled(db, run_id)


def repair_ids(rt: Runtime, ids: list[int], actor: str) -> int:
    """Repair these differences (the ones still open); how many were applied."""
    with rt.db.transaction() as session:
        diffs = list(session.scalars(sa.select(ReconcileDifference).where(
            ReconcileDifference.id.in_(ids), ReconcileDifference.repair_state.in_(OPEN),
            ReconcileDifference.safe.is_(True)).order_by(ReconcileDifference.id)))
    outcomes = repairs.repair(rt, diffs, actor) if diffs else {}
    return sum(1 for state, _ in outcomes.values() if state == "applied")


def csv_rows(db: Database, run_id: int, flt: DiffFilter = DiffFilter()) -> Iterator[list[Any]]:
    """The header, then every matching difference, read a page at a time."""
    yield list(CSV_COLUMNS)
    after = 0
    while rows := _page(db, run_id, flt, after, CSV_PAGE):
        yield from rows
        after = rows[-1][0]
