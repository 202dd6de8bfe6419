"""Reconcile: per mapped object, stream both sides and compare them with flat memory.

Phases per object, each resumable from the cursor saved with every batch:

1. ``gateway``: the gateway's list endpoint, 500 a page, into the staging table (the
   cursor is the last resource id staged: GoCardless's ``after`` cursor is that id), which
   is then analyzed for the planner.
2. ``crm``: the CRM's records ordered by Id (counted first, so the read is SOQL pages or
   one Bulk job from the start), compared in batches of ``BATCH`` against the
   staged resources they name (by gateway id, and by ``metadata.crm_id``); staged rows a
   record claims are marked seen. The cursor is the last CRM Id compared.
3. ``orphans``: staged resources no CRM record claimed.
4. ``failed``: the object's API Queue items that are Failed.
5. ``repair``: with ``--repair`` (and not ``--dry-run``), the safe repairs.

Only one page of each side and one batch are ever in memory. The partners' clients apply
the shared gateway rate limiter and the Salesforce allowance reserve to every call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.logs import log_context
from app.mapping import GATEWAY_ID_FIELD, OBJECTS, ObjectMap
from app.records import service as records
from app.runtime import Runtime
from app.workrows.rows import FAILED
from queues.models import QueueItem
from reconcile import compare, kinds, runs
from reconcile.kinds import Finding
from reconcile.models import ReconcileStaging

log = logging.getLogger(__name__)
BATCH = 500
# progress(object, phase, items just handled)
Progress = Callable[[str, str, int], None]


def quiet(_obj: str, _phase: str, _n: int) -> None:
    return None


def reconcile(rt: Runtime, objects: Sequence[str] | None = None, *, repair: bool = False,
              dry_run: bool = False, started_by: str = "cli",
              progress: Progress = quiet,
              queued: int | None = None) -> tuple[int, dict[str, Any]]:
    """Run (or resume) a reconcile of ``objects`` (default: every mapped object, parents
    first); returns the run id and its summary. ``queued``: the console's queued run."""
    names = list(objects or OBJECTS)
    run, resumed = runs.open_run(rt.db, "reconcile", names, repair=repair, dry_run=dry_run,
                                 started_by=started_by, queued=queued)
    with log_context(run=run.id):
        log.info("reconcile started", extra={"objects": names, "resumed": resumed})
        try:
            for name in names:
                with log_context(object=name):
                    run_object(rt, run.id, OBJECTS[name], repair=repair and not dry_run,
                               progress=progress)
        except KeyboardInterrupt:
            runs.finish(rt.db, run.id, "stopped")
            raise
        except Exception as exc:
            runs.finish(rt.db, run.id, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        return run.id, runs.finish(rt.db, run.id, "done")


Step = Callable[[Runtime, int, ObjectMap, "str | None", Progress], None]


def run_object(rt: Runtime, run_id: int, obj: ObjectMap, *, repair: bool,
               progress: Progress = quiet) -> None:
    steps: list[tuple[str, Step]] = [("gateway", stage_gateway), ("crm", compare_crm),
                                     ("orphans", find_orphans), ("failed", find_failed)]
    if repair:
        steps.append(("repair", _repair))
    run_phases(rt, run_id, obj, steps, progress)


def run_phases(rt: Runtime, run_id: int, obj: ObjectMap, steps: Sequence[tuple[str, Step]],
               progress: Progress) -> None:
    """The steps in order, from the phase the saved cursor names (a resumed run starts
    there, at its ``after``); each finished step moves the cursor to the next."""
    names = [name for name, _ in steps]
    cursor = runs.cursor_of(rt.db, run_id, obj.name)
    phase, after = cursor.get("phase", names[0]), cursor.get("after")
    if phase not in names:  # done (or a phase this run does not have)
        return
    for index in range(names.index(phase), len(steps)):
        steps[index][1](rt, run_id, obj, after, progress)
        after = None
        following = names[index + 1] if index + 1 < len(names) else "done"
        with rt.db.transaction() as session:
            runs.save(session, run_id, obj.name, phase=following, after=None)


def _repair(rt: Runtime, run_id: int, obj: ObjectMap, _after: str | None,
            progress: Progress) -> None:
    from reconcile import repairs  # repairs reuse the queue and webhook paths

    repairs.apply_safe(rt, run_id, obj.name, progress=progress)


def stage_gateway(rt: Runtime, run_id: int, obj: ObjectMap, after: str | None,
                  progress: Progress) -> None:
    batch: list[dict[str, Any]] = []
    for resource in rt.gateway.iter_resources(obj.resource, {"after": after} if after else None):
        batch.append({"run_id": run_id, "object": obj.name, "seen": False,
                      **compare.staged(obj, resource)})
        if len(batch) >= BATCH:
            _stage(rt, run_id, obj, batch, progress)
            batch = []
    _stage(rt, run_id, obj, batch, progress)
    analyze_staging(rt)


def analyze_staging(rt: Runtime) -> None:
    """Planner statistics for the rows just staged. The table fills within seconds and is
    queried at once, long before autovacuum would analyze it: without statistics
    PostgreSQL picked the match-key index and filtered the whole object for every batch of
    ids (about a second per query at 100,000 staged resources)."""
    if rt.db.dialect != "postgresql":
        return
    with rt.db.transaction() as session:
        session.execute(sa.text("ANALYZE reconcile_staging"))


def _stage(rt: Runtime, run_id: int, obj: ObjectMap, batch: list[dict[str, Any]],
           progress: Progress) -> None:
    if not batch:
        return
    with rt.db.transaction() as session:
        session.execute(rt.db.insert(ReconcileStaging).values(batch).on_conflict_do_nothing(
            index_elements=["run_id", "object", "gateway_id"]))
        runs.save(session, run_id, obj.name, phase="gateway", after=batch[-1]["gateway_id"],
                  counts={"gateway_seen": len(batch)})
    progress(obj.name, "gateway", len(batch))


def compare_crm(rt: Runtime, run_id: int, obj: ObjectMap, after: str | None,
                progress: Progress) -> None:
    # Ids are compared as text in Salesforce's own order: what ORDER BY Id walks through.
    where = f"Id > '{after}'" if after else None
    # One COUNT() call decides SOQL pages or a Bulk job up front: no page read to be dropped.
    bulk = rt.crm.wants_bulk(rt.crm.count_records(obj.sobject, where))
    batch: list[dict[str, Any]] = []
    for record in rt.crm.iter_records(obj.sobject, compare.crm_select(obj), where=where,
                                      order_by="Id", bulk=bulk):
        batch.append(record)
        if len(batch) >= BATCH:
            _compare_batch(rt, run_id, obj, batch, progress)
            batch = []
    if batch:
        _compare_batch(rt, run_id, obj, batch, progress)


def _staged_by(session: Session, run_id: int, obj: str, column: Any,
               values: Sequence[str]) -> list[ReconcileStaging]:
    if not values:
        return []
    return list(session.scalars(sa.select(ReconcileStaging).where(
        ReconcileStaging.run_id == run_id, ReconcileStaging.object == obj,
        column.in_(list(set(values))))))


def parent_links(session: Session, run_id: int, obj: ObjectMap,
                 crm_records: Sequence[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(parent object, parent CRM id) -> parent gateway id for a batch: Paybridge's links
    first, then the parent's staged resources naming the record in ``metadata.crm_id``."""
    known: dict[tuple[str, str], str] = {}
    for fm in obj.fields:
        if not fm.link:
            continue
        ids = [str(r[fm.crm]) for r in crm_records if r.get(fm.crm)]
        for crm_id, gw in records.gateway_ids(session, fm.link, ids).items():
            known[(fm.link, crm_id)] = gw
        missing = [i for i in ids if (fm.link, i) not in known]
        claimed: dict[str, list[str]] = {}
        for row in _staged_by(session, run_id, fm.link, ReconcileStaging.crm_id, missing):
            claimed.setdefault(str(row.crm_id), []).append(row.gateway_id)
        # Two parents naming one record (a duplicate, reported on the parent) say nothing
        # about which one the child belongs to: that lookup is left uncompared.
        known.update({(fm.link, crm_id): gws[0] for crm_id, gws in claimed.items()
                      if len(gws) == 1})
    return known


def _compare_batch(rt: Runtime, run_id: int, obj: ObjectMap, batch: list[dict[str, Any]],
                   progress: Progress) -> None:
    labels = dict(rt.settings.status_labels)
    with rt.db.transaction() as session:
        gw_ids = [str(r[GATEWAY_ID_FIELD]) for r in batch if r.get(GATEWAY_ID_FIELD)]
        by_gw = {s.gateway_id: s for s in _staged_by(session, run_id, obj.name,
                                                     ReconcileStaging.gateway_id, gw_ids)}
        claims: dict[str, list[ReconcileStaging]] = {}
        for row in _staged_by(session, run_id, obj.name, ReconcileStaging.crm_id,
                              [str(r["Id"]) for r in batch]):
            claims.setdefault(str(row.crm_id), []).append(row)
        links = parent_links(session, run_id, obj, batch)
        findings: list[Finding] = []
        seen: set[str] = set()
        for record in batch:
            findings += match_record(obj, record, by_gw, claims, seen,
                                     lambda o, c: links.get((o, c)), labels)
        if seen:
            session.execute(sa.update(ReconcileStaging).where(
                ReconcileStaging.run_id == run_id, ReconcileStaging.object == obj.name,
                ReconcileStaging.gateway_id.in_(list(seen))).values(seen=True))
        stored = runs.store(session, rt.db, run_id, findings)
        runs.save(session, run_id, obj.name, phase="crm", after=str(batch[-1]["Id"]),
                  counts={"crm_seen": len(batch), "differences": stored})
    progress(obj.name, "crm", len(batch))


def match_record(obj: ObjectMap, record: dict[str, Any], by_gw: dict[str, ReconcileStaging],
                 claims: dict[str, list[ReconcileStaging]], seen: set[str],
                 resolve: Callable[[str, str], str | None], labels: dict[str, str],
                 by_key: dict[str, ReconcileStaging] | None = None) -> list[Finding]:
    """What one CRM record's pairing says: compared, or why it has no partner. ``by_key``:
    unclaimed staged resources by their match key (backfill's second match)."""
    crm_id, gateway_id = str(record["Id"]), record.get(GATEWAY_ID_FIELD)
    others = [c for c in claims.get(crm_id, []) if c.gateway_id != gateway_id]
    seen.update(c.gateway_id for c in others)
    if not gateway_id:
        if len(others) == 1:
            return [_link(obj, crm_id, others[0].gateway_id, "names this record in "
                          "metadata.crm_id")]
        if others:
            return [_duplicate(obj, crm_id, c.gateway_id) for c in others]
        match = compare.MATCH_KEYS.get(obj.name)
        staged = (by_key or {}).get(compare.match_key(record.get(match[0])) or "") if match \
            else None
        if staged is not None and staged.gateway_id not in seen:
            seen.add(staged.gateway_id)
            return [_link(obj, crm_id, staged.gateway_id,
                          f"has this record's {match[0] if match else ''} and no CRM record")]
        return [Finding(obj.name, kinds.NOT_SYNCED, kinds.ADMIN, crm_id, None, None, None,
                        None, f"never sent to the gateway: paybridge backfill {obj.name}")]
    gateway_id = str(gateway_id)
    found = [_duplicate(obj, crm_id, c.gateway_id) for c in others]
    staged = by_gw.get(gateway_id)
    if staged is None:
        return found + [Finding(
            obj.name, kinds.MISSING_AT_GATEWAY, kinds.ADMIN, crm_id, gateway_id,
            GATEWAY_ID_FIELD, gateway_id, None,
            "the gateway has no such resource: check the gateway account (a sandbox "
            "refresh?), then clear the gateway id and queue the record again")]
    seen.add(gateway_id)
    if staged.crm_id and staged.crm_id != crm_id:
        return found + [Finding(
            obj.name, kinds.LINK_CONFLICT, kinds.ADMIN, crm_id, gateway_id, "metadata.crm_id",
            crm_id, staged.crm_id, f"the gateway resource belongs to {staged.crm_id}: one of "
            "the two records carries the wrong gateway id")]
    return found + compare.compare(obj, record, staged.data, resolve, labels)


def _link(obj: ObjectMap, crm_id: str, gateway_id: str, why: str) -> Finding:
    return Finding(obj.name, kinds.LINK_MISSING, kinds.WRITE_LINK, crm_id, gateway_id,
                   GATEWAY_ID_FIELD, None, gateway_id,
                   f"the gateway resource {why}: its gateway id is written onto the record")


def _duplicate(obj: ObjectMap, crm_id: str, gateway_id: str) -> Finding:
    return Finding(obj.name, kinds.DUPLICATE_AT_GATEWAY, kinds.ADMIN, crm_id, gateway_id,
                   "metadata.crm_id", crm_id, crm_id,
                   "another gateway resource also names this record: cancel the one the "
                   "CRM record does not carry")


def find_orphans(rt: Runtime, run_id: int, obj: ObjectMap, after: str | None,
                 progress: Progress) -> None:
    while True:
        with rt.db.transaction() as session:
            query = sa.select(ReconcileStaging).where(
                ReconcileStaging.run_id == run_id, ReconcileStaging.object == obj.name,
                ReconcileStaging.seen.is_(False))
            if after:
                query = query.where(ReconcileStaging.gateway_id > after)
            rows = list(session.scalars(query.order_by(ReconcileStaging.gateway_id)
                                        .limit(BATCH)))
            if not rows:
                return
            stored = runs.store(session, rt.db, run_id, [_orphan(obj, r) for r in rows])
            after = rows[-1].gateway_id
            runs.save(session, run_id, obj.name, phase="orphans", after=after,
                      counts={"differences": stored})
        progress(obj.name, "orphans", len(rows))


def _orphan(obj: ObjectMap, row: ReconcileStaging) -> Finding:
    if row.crm_id:
        return Finding(obj.name, kinds.MISSING_IN_CRM, kinds.ADMIN, row.crm_id, row.gateway_id,
                       "metadata.crm_id", None, row.crm_id,
                       f"metadata.crm_id names {row.crm_id}, which the CRM does not have "
                       "(deleted?): restore the record, or cancel the resource")
    return Finding(obj.name, kinds.MISSING_IN_CRM, kinds.CREATE_CRM, None, row.gateway_id,
                   None, None, row.gateway_id,
                   "no CRM record: one is made for it, as for a resource first heard of "
                   "through a webhook")


def find_failed(rt: Runtime, run_id: int, obj: ObjectMap, after: str | None,
                progress: Progress) -> None:
    last = int(after or 0)
    while True:
        with rt.db.transaction() as session:
            items = list(session.scalars(sa.select(QueueItem).where(
                QueueItem.object == obj.name, QueueItem.status == FAILED, QueueItem.id > last)
                .order_by(QueueItem.id).limit(BATCH)))
            if not items:
                return
            stored = runs.store(session, rt.db, run_id, [Finding(
                obj.name, kinds.QUEUE_FAILED, kinds.ADMIN, i.record_id, i.gateway_id, None,
                None, None, compare.shown(f"queue item {i.id} ({i.operation}) is Failed: "
                                          f"{i.last_error or 'no error recorded'}; fix it, "
                                          "then reprocess or discard it")) for i in items])
            last = items[-1].id
            runs.save(session, run_id, obj.name, phase="failed", after=str(last),
                      counts={"differences": stored})
        progress(obj.name, "failed", len(items))
