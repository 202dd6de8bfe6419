"""Backfill: onboard CRM records no trigger ever queued, creating nothing twice.

Per object (``all``: every queueable object, parents first, so a child's insert waits in
the API Queue for its parent's), resumable phase by phase like a reconcile:

1. ``gateway``: the object's gateway resources staged (reconcile's own step).
2. ``claimed``: the CRM records that carry a gateway id mark the resources they name, so
   only unclaimed resources can match a record below.
3. ``match``: the CRM records without a gateway id (and matching ``--where``), 200 at a
   time, paired as reconcile pairs them: a resource whose ``metadata.crm_id`` names the
   record, else one with the same match key (a customer's e-mail, case-insensitive); a
   match gets its link written back (the reconcile write-link repair). The rest are queued
   as inserts through ``queues.intake`` (the API's validation; the insert's idempotency key
   is stable per record, so a batch queued again after a crash still creates one resource).
   Bank accounts are reported instead: their details are never stored, so they are set up
   through POST /api/v1/bank-accounts.

With ``--dry-run`` everything is found and recorded on the run, nothing is written or
queued.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError

from app.errors import ValidationFailed
from app.logs import log_context
from app.mapping import GATEWAY_ID_FIELD, OBJECTS, QUEUEABLE_OBJECTS, ObjectMap
from app.redaction import redact
from app.runtime import Runtime
from queues import intake
from queues.models import BLOCKING, QueueItem
from queues.schemas import ChangeSchema
from reconcile import compare, engine, kinds, repairs, runs
from reconcile.engine import Progress, quiet
from reconcile.kinds import Finding
from reconcile.models import ReconcileDifference, ReconcileStaging

log = logging.getLogger(__name__)
BATCH = 200  # what one POST /api/v1/queue takes
NO_DETAILS = ("bank details are never stored, so this account cannot be queued: collect "
              "them through POST /api/v1/bank-accounts")
_ID = re.compile(r"^[A-Za-z0-9]{15,18}$")


def objects_for(name: str) -> list[str]:
    if name == "all":
        return list(QUEUEABLE_OBJECTS)
    if name not in QUEUEABLE_OBJECTS:
        raise ValueError(f"object must be one of all, {', '.join(QUEUEABLE_OBJECTS)}")
    return [name]


def unsynced_where(where: str | None, after: str | None = None) -> str:
    clauses = [f"{GATEWAY_ID_FIELD} = null"]
    if where:
        clauses.append(f"({where})")
    if after:
        if not _ID.match(after):
            raise ValueError("a resume cursor must be a Salesforce id")
        clauses.append(f"Id > '{after}'")
    return " AND ".join(clauses)


def backfill(rt: Runtime, name: str, *, where: str | None = None, dry_run: bool = False,
             progress: Progress = quiet, started_by: str = "cli",
             queued: int | None = None) -> tuple[int, dict[str, Any]]:
    """``name``: one queueable object or ``all``; ``queued``: the console's queued run."""
    names = objects_for(name)
    run, resumed = runs.open_run(rt.db, "backfill", names, where=where, dry_run=dry_run,
                                 started_by=started_by, queued=queued)
    with log_context(run=run.id):
        log.info("backfill started", extra={"objects": names, "resumed": resumed})
        try:
            for obj_name in names:
                with log_context(object=obj_name):
                    engine.run_phases(rt, run.id, OBJECTS[obj_name], _steps(where, dry_run),
                                      progress)
        except KeyboardInterrupt:
            runs.finish(rt.db, run.id, "stopped")
            raise
        except Exception as exc:
            runs.finish(rt.db, run.id, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        return run.id, runs.finish(rt.db, run.id, "done")


def _steps(where: str | None, dry_run: bool) -> list[tuple[str, engine.Step]]:
    def match(rt: Runtime, run_id: int, obj: ObjectMap, after: str | None,
              progress: Progress) -> None:
        _match(rt, run_id, obj, after, progress, where=where, dry_run=dry_run)

    return [("gateway", engine.stage_gateway), ("claimed", _claimed), ("match", match)]


def _claimed(rt: Runtime, run_id: int, obj: ObjectMap, after: str | None,
             progress: Progress) -> None:
    where = f"{GATEWAY_ID_FIELD} != null" + (f" AND Id > '{after}'" if after else "")
    batch: list[dict[str, Any]] = []
    for record in rt.crm.iter_records(obj.sobject, ["Id", GATEWAY_ID_FIELD], where=where,
                                      order_by="Id"):
        batch.append(record)
        if len(batch) >= engine.BATCH:
            _mark_claimed(rt, run_id, obj, batch)
            batch = []
    if batch:
        _mark_claimed(rt, run_id, obj, batch)


def _mark_claimed(rt: Runtime, run_id: int, obj: ObjectMap,
                  batch: list[dict[str, Any]]) -> None:
    with rt.db.transaction() as session:
        session.execute(sa.update(ReconcileStaging).where(
            ReconcileStaging.run_id == run_id, ReconcileStaging.object == obj.name,
            ReconcileStaging.gateway_id.in_([str(r[GATEWAY_ID_FIELD]) for r in batch]))
            .values(seen=True))
        runs.save(session, run_id, obj.name, phase="claimed", after=str(batch[-1]["Id"]))


def _match(rt: Runtime, run_id: int, obj: ObjectMap, after: str | None, progress: Progress,
           *, where: str | None, dry_run: bool) -> None:
    batch: list[dict[str, Any]] = []
    for record in rt.crm.iter_records(obj.sobject, compare.crm_select(obj),
                                      where=unsynced_where(where, after), order_by="Id"):
        batch.append(record)
        if len(batch) >= BATCH:
            _match_batch(rt, run_id, obj, batch, progress, dry_run)
            batch = []
    if batch:
        _match_batch(rt, run_id, obj, batch, progress, dry_run)


def _match_batch(rt: Runtime, run_id: int, obj: ObjectMap, batch: list[dict[str, Any]],
                 progress: Progress, dry_run: bool) -> None:
    with rt.db.transaction() as session:
        claims: dict[str, list[ReconcileStaging]] = {}
        for row in session.scalars(sa.select(ReconcileStaging).where(
                ReconcileStaging.run_id == run_id, ReconcileStaging.object == obj.name,
                ReconcileStaging.seen.is_(False),
                ReconcileStaging.crm_id.in_([str(r["Id"]) for r in batch]))):
            claims.setdefault(str(row.crm_id), []).append(row)
        by_key = _by_key(session, run_id, obj, batch)
        seen: set[str] = set()
        findings = [f for r in batch for f in engine.match_record(
            obj, r, {}, claims, seen, lambda _o, _c: None, {}, by_key)]
        findings = [_to_queue(obj, f) for f in findings]
        if seen and not dry_run:
            session.execute(sa.update(ReconcileStaging).where(
                ReconcileStaging.run_id == run_id, ReconcileStaging.object == obj.name,
                ReconcileStaging.gateway_id.in_(list(seen))).values(seen=True))
        runs.store(session, rt.db, run_id, findings)
    queued = 0 if dry_run else _queue(rt, run_id, obj, batch, findings)
    if not dry_run:
        repairs.repair(rt, _pending(rt, run_id, [f.key for f in findings
                                                  if f.repair == kinds.WRITE_LINK]))
    counts = {"crm_seen": len(batch), "queued": queued,
              "matched": sum(f.repair == kinds.WRITE_LINK for f in findings),
              "reported": sum(f.repair == kinds.ADMIN for f in findings)}
    with rt.db.transaction() as session:
        runs.save(session, run_id, obj.name, phase="match", after=str(batch[-1]["Id"]),
                  counts=counts)
    progress(obj.name, "match", len(batch))


def _by_key(session: Any, run_id: int, obj: ObjectMap,
            batch: list[dict[str, Any]]) -> dict[str, ReconcileStaging]:
    match = compare.MATCH_KEYS.get(obj.name)
    keys = {compare.match_key(r.get(match[0])) for r in batch} - {None} if match else set()
    if not keys:
        return {}
    found: dict[str, ReconcileStaging] = {}
    for row in session.scalars(sa.select(ReconcileStaging).where(
            ReconcileStaging.run_id == run_id, ReconcileStaging.object == obj.name,
            ReconcileStaging.seen.is_(False), ReconcileStaging.crm_id.is_(None),
            ReconcileStaging.match_key.in_(list(keys))).order_by(ReconcileStaging.gateway_id)):
        found.setdefault(str(row.match_key), row)  # two resources, one e-mail: the first
    return found


def _to_queue(obj: ObjectMap, finding: Finding) -> Finding:
    """Backfill queues what reconcile would only report as never sent."""
    if finding.kind != kinds.NOT_SYNCED:
        return finding
    if obj.name == "BankAccount":
        return dataclasses.replace(finding, note=NO_DETAILS)
    return dataclasses.replace(finding, repair=kinds.QUEUE_INSERT,
                               note="queued as an insert through the API Queue")


def _pending(rt: Runtime, run_id: int, keys: Sequence[str]) -> list[ReconcileDifference]:
    if not keys:
        return []
    with rt.db.transaction() as session:
        return list(session.scalars(sa.select(ReconcileDifference).where(
            ReconcileDifference.run_id == run_id, ReconcileDifference.key.in_(list(keys)),
            ReconcileDifference.repair_state == "pending")))


def _queue(rt: Runtime, run_id: int, obj: ObjectMap, batch: list[dict[str, Any]],
           findings: list[Finding]) -> int:
    """Inserts for the records nothing matched, unless one is already waiting in the queue
    (a batch queued again after a crash)."""
    wanted = {f.crm_id for f in findings if f.repair == kinds.QUEUE_INSERT}
    with rt.db.transaction() as session:
        waiting = set(session.scalars(sa.select(QueueItem.record_id).where(
            QueueItem.object == obj.name, QueueItem.record_id.in_(list(wanted)),
            QueueItem.status.in_(BLOCKING))))
    changes = []
    for record in batch:
        crm_id = str(record["Id"])
        if crm_id in wanted and crm_id not in waiting:
            fields = {k: v for k, v in record.items()
                      if k not in ("Id", "attributes") and v is not None}
            changes.append({"object": obj.name, "record_id": crm_id, "operation": "insert",
                            "fields": fields, "previous_fields": None})
    states: dict[str, tuple[str, str]] = {c: ("applied", "already waiting in the API Queue")
                                          for c in wanted & waiting}
    for change in changes:  # one by one: a refused record must not hold back the others
        try:
            items = intake.submit(rt, [ChangeSchema().load(change)])
            states[change["record_id"]] = ("applied", "queued as queue item "
                                           + ", ".join(str(i.id) for i in items))
        except ValidationError as exc:
            states[change["record_id"]] = (
                "failed", f"refused by validation: {sorted(exc.normalized_messages())}")
        except ValidationFailed as exc:
            states[change["record_id"]] = ("failed", f"refused at intake: {exc}")
    with rt.db.transaction() as session:
        for diff in session.scalars(sa.select(ReconcileDifference).where(
                ReconcileDifference.run_id == run_id, ReconcileDifference.object == obj.name,
                ReconcileDifference.kind == kinds.NOT_SYNCED,
                ReconcileDifference.crm_id.in_(list(states)))):
            state, note = states[str(diff.crm_id)]
            # Intake's refusals may quote what the record holds: masked before it is stored.
            diff.repair_state, diff.note = state, redact(note)[:2000]
    return sum(1 for s, _ in states.values() if s == "applied")
