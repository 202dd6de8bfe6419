"""Repairing differences through the paths Paybridge already has, never a side channel.

* ``heal``: the gateway's current status onto the CRM record (one sObject Collections write
  for a batch), recorded in the status history with source ``reconcile``.
* ``write_back`` / ``write_link``: the gateway's write-back fields (and, for a link, its id)
  onto the CRM record, as the API Queue writes back after a gateway call.
* ``queue_update``: an update through ``queues.intake`` with the endpoint's own validation;
  the field's digest of what the gateway last accepted is forgotten first, so the update
  sends it again (the gateway changed, the CRM did not).
* ``create_crm``: the CRM record made by the webhook path for gateway-originated resources
  (``webhooks.crm_records``), under that resource's lease.

Each repair reads the gateway's current state first (the state may have moved since the
comparison). A refused repair is kept, with the partner's words, for an admin.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError

from app import audit
from app.clients.errors import PartnerError
from app.clients.salesforce import CrmWrite
from app.clock import utcnow
from app.errors import ValidationFailed
from app.logs import log_context
from app.mapping import GATEWAY_ID_FIELD, OBJECTS, writeback_fields
from app.records import service as records
from app.redaction import redact
from app.runtime import Runtime
from app.workrows.leases import new_lease
from queues import intake
from queues.schemas import ChangeSchema
from reconcile import compare, kinds, runs
from reconcile.models import OPEN, ReconcileDifference, ReconcileRun, ReconcileStaging
from webhooks import service as webhook_service
from webhooks.apply import WebhookContext
from webhooks.crm_records import ensure_crm_record

log = logging.getLogger(__name__)
BATCH = 200  # one sObject Collections call
SOURCE = "reconcile"
Outcome = tuple[str, str]  # (repair state, note)
REPAIRING = "repairing"
# A claim whose repair died with its process (no outcome saved) may be taken up again after
# this long: longer than any repair of one batch takes.
CLAIM_EXPIRES = timedelta(minutes=15)


class NotRepairable(Exception):
    """The difference has no automatic repair (or is repaired already)."""


def apply_safe(rt: Runtime, run_id: int, obj: str | None = None, kind: str | None = None,
               progress: Any = None) -> int:
    """Apply every pending safe repair of the run (of one object / kind); returns how many
    were applied."""
    applied, last = 0, 0
    while True:
        with rt.db.transaction() as session:
            query = sa.select(ReconcileDifference).where(
                ReconcileDifference.run_id == run_id, ReconcileDifference.safe.is_(True),
                ReconcileDifference.repair_state == "pending", ReconcileDifference.id > last)
            if obj:
                query = query.where(ReconcileDifference.object == obj)
            if kind:
                query = query.where(ReconcileDifference.kind == kind)
            batch = list(session.scalars(query.order_by(ReconcileDifference.id).limit(BATCH)))
        if not batch:
            return applied
        last = batch[-1].id
        outcomes = repair(rt, batch)
        applied += sum(1 for state, _ in outcomes.values() if state == "applied")
        if progress is not None:
            progress(obj or "", "repair", len(batch))


def repair_one(rt: Runtime, difference_id: int, actor: str | None = None) -> Outcome:
    with rt.db.transaction() as session:
        diff = session.get(ReconcileDifference, difference_id)
    if diff is None:
        raise NotRepairable(f"no difference {difference_id}")
    if diff.repair_state == "applied":
        raise NotRepairable(f"difference {difference_id} is repaired already")
    if not diff.safe:
        raise NotRepairable(f"difference {difference_id} needs an admin: {diff.note}")
    outcome = repair(rt, [diff], actor).get(diff.id)
    if outcome is None:
        raise NotRepairable(f"difference {difference_id} is being repaired already")
    return outcome


def claim(rt: Runtime, diffs: Sequence[ReconcileDifference]) -> list[ReconcileDifference]:
    """The differences this repair may act on: each moved to ``repairing`` in one statement,
    so of two repairs asked for at once (one difference from the console, all of its kind
    in a job, a scheduled ``--repair``), exactly one acts on each difference."""
    if not diffs:
        return []
    now = utcnow()
    t = ReconcileDifference
    with rt.db.transaction() as session:
        taken = set(session.scalars(
            sa.update(t).where(t.id.in_([d.id for d in diffs]), sa.or_(
                t.repair_state.in_(OPEN),
                sa.and_(t.repair_state == REPAIRING, t.repaired_at < now - CLAIM_EXPIRES)))
            .values(repair_state=REPAIRING, repaired_at=now).returning(t.id)))
    return [d for d in diffs if d.id in taken]


def repair(rt: Runtime, diffs: Sequence[ReconcileDifference],
           actor: str | None = None) -> dict[int, Outcome]:
    """Repair these differences; each one's outcome is saved on its row, and, when a person
    (``actor``) asked for it, in the audit log in the same transaction. A difference another
    repair has claimed is left to it (no outcome for it here)."""
    before = {d.id: d.repair_state for d in diffs}
    diffs = claim(rt, diffs)
    outcomes: dict[int, Outcome] = {}
    writes = [d for d in diffs if d.repair in (kinds.HEAL, kinds.WRITE_BACK, kinds.WRITE_LINK)]
    outcomes.update(_crm_writes(rt, writes))
    for diff in diffs:
        with log_context(object=diff.object, record=diff.crm_id, resource=diff.gateway_id):
            if diff.repair == kinds.QUEUE_UPDATE:
                outcomes[diff.id] = _queue_update(rt, diff)
            elif diff.repair == kinds.CREATE_CRM:
                outcomes[diff.id] = _create_crm(rt, diff)
    _save(rt, outcomes, actor, before)
    return outcomes


def _save(rt: Runtime, outcomes: dict[int, Outcome], actor: str | None,
          before: dict[int, str]) -> None:
    changes: dict[tuple[str, str], list[int]] = {}
    touched: set[int] = set()
    with rt.db.transaction() as session:
        for diff_id, (state, note) in outcomes.items():
            diff = session.get(ReconcileDifference, diff_id)
            if diff is not None:
                changes.setdefault((before[diff_id], state), []).append(diff_id)
                diff.repair_state, diff.note = state, redact(note)[:2000]
                diff.repaired_at = utcnow() if state == "applied" else None
                touched.add(diff.run_id)
        session.flush()
        for run_id in touched:  # a finished run's summary follows later repairs
            run = session.get(ReconcileRun, run_id)
            if run is not None and run.state not in ("queued", "running"):
                run.summary = runs.summary(session, run_id)
        if actor is None:
            return
        # One multi-row insert per outcome; each difference's own note stays on its row.
        for (before, after), ids in changes.items():
            audit.record_many(session, actor=actor, action="reconcile_repair",
                              target_type="reconcile_difference", target_ids=ids,
                              before={"repair_state": before}, after={"repair_state": after})


def _current(rt: Runtime, diff: ReconcileDifference) -> dict[str, Any]:
    """The resource as the run staged it (no call), or as the gateway shows it now once the
    run is over (a repair asked for from the console)."""
    with rt.db.transaction() as session:
        row = session.get(ReconcileStaging, (diff.run_id, diff.object, str(diff.gateway_id)))
        if row is not None:
            return resource_from(row)
    return rt.gateway.get(OBJECTS[diff.object].resource, str(diff.gateway_id))


def resource_from(row: ReconcileStaging) -> dict[str, Any]:
    """A staged resource in the gateway's own shape (dotted paths nested again)."""
    resource: dict[str, Any] = {"id": row.gateway_id, "status": row.data.get("status")}
    for path, value in (row.data.get("values") or {}).items():
        *parents, leaf = path.split(".")
        target = resource
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    if row.crm_id:
        resource["metadata"] = {"crm_id": row.crm_id}
    return resource


def _crm_writes(rt: Runtime, diffs: Sequence[ReconcileDifference]) -> dict[int, Outcome]:
    """One CRM write per record (a record's differences merged), one Collections call per
    200 records; the history and links follow the writes that Salesforce took."""
    outcomes: dict[int, Outcome] = {}
    per_record: dict[str, tuple[str, dict[str, Any], list[ReconcileDifference], Any]] = {}
    labels = dict(rt.settings.status_labels)
    for diff in diffs:
        obj = OBJECTS[diff.object]
        try:
            resource = _current(rt, diff)
        except PartnerError as exc:
            outcomes[diff.id] = ("failed", f"the gateway answered {exc.status}: {exc}")
            continue
        wanted = writeback_fields(obj, resource, labels)
        if diff.repair == kinds.WRITE_LINK:
            fields = wanted
        elif diff.field in wanted or diff.repair == kinds.WRITE_BACK:
            fields = {str(diff.field): wanted.get(str(diff.field))}
        else:
            fields = {}
        sobject, merged, group, _ = per_record.setdefault(
            str(diff.crm_id), (obj.sobject, {}, [], resource))
        merged.update(fields)
        group.append(diff)
    items = list(per_record.items())
    for start in range(0, len(items), BATCH):
        chunk = items[start:start + BATCH]
        try:
            results = rt.crm.update_many([CrmWrite(s, crm_id, f) for crm_id, (s, f, _, _) in chunk])
        except PartnerError as exc:
            outcomes.update({d.id: ("failed", f"Salesforce: {exc}")
                             for _, (_, _, group, _) in chunk for d in group})
            continue
        for (crm_id, (_, fields, group, resource)), result in zip(chunk, results, strict=True):
            if not result.ok:
                outcomes.update({d.id: ("failed", f"Salesforce: {result.message}")
                                 for d in group})
                continue
            _record(rt, group, crm_id, resource)
            outcomes.update({d.id: ("applied", _done_note(d, fields)) for d in group})
    return outcomes


def _done_note(diff: ReconcileDifference, fields: dict[str, Any]) -> str:
    wrote = ", ".join(f"{k}={v}" for k, v in sorted(fields.items()) if k != GATEWAY_ID_FIELD)
    return f"{diff.repair}: wrote {wrote or GATEWAY_ID_FIELD} from the gateway"


def _record(rt: Runtime, group: list[ReconcileDifference], crm_id: str,
            resource: dict[str, Any]) -> None:
    """The link, and the status the CRM now shows, in Paybridge's records."""
    diff = group[0]
    status = resource.get("status")
    with rt.db.transaction() as session:
        link = records.upsert_link(session, diff.object, crm_id=crm_id,
                                   gateway_id=str(diff.gateway_id))
        if status and OBJECTS[diff.object].has_status and (
                link.status != status or any(d.repair == kinds.HEAL for d in group)):
            shown = next((d.crm_value for d in group if d.kind == kinds.STATUS), None)
            records.record_transition(
                session, link, str(status), source=SOURCE,
                cause=f"reconcile run {diff.run_id}: the CRM showed {shown or 'no status'}, "
                      f"the gateway {status}")


def _queue_update(rt: Runtime, diff: ReconcileDifference) -> Outcome:
    """The record's current mapped fields, queued as an update of the CRM-owned field."""
    obj = OBJECTS[diff.object]
    try:
        found = list(rt.crm.iter_records(obj.sobject, compare.crm_select(obj),
                                         where=f"Id = '{diff.crm_id}'"))
    except PartnerError as exc:
        return "failed", f"Salesforce: {exc}"
    if not found:
        return "failed", f"the CRM no longer has {diff.crm_id}"
    fields = {k: v for k, v in found[0].items()
              if k not in ("Id", "attributes") and v is not None}
    with rt.db.transaction() as session:
        link = records.find_link(session, obj.name, crm_id=str(diff.crm_id))
        if link is not None and link.sent_digests and diff.field in link.sent_digests:
            link.sent_digests = {k: v for k, v in link.sent_digests.items() if k != diff.field}
    change = {"object": obj.name, "record_id": str(diff.crm_id), "operation": "update",
              "fields": fields, "previous_fields": None}
    try:
        items = intake.submit(rt, [ChangeSchema().load(change)])
    except ValidationError as exc:
        return "failed", f"refused by validation: {sorted(exc.normalized_messages())}"
    except ValidationFailed as exc:
        return "failed", f"refused at intake: {exc}"
    ids = ", ".join(str(i.id) for i in items) or "none (nothing for the gateway)"
    return "applied", f"queue_update: queued as queue item {ids}"


def _create_crm(rt: Runtime, diff: ReconcileDifference) -> Outcome:
    obj, gateway_id = OBJECTS[diff.object], str(diff.gateway_id)
    ctx = WebhookContext(settings=rt.settings, db=rt.db, gateway=rt.gateway, crm=rt.crm,
                         pause=rt.crm_pause, telemetry=rt.telemetry)
    lease = new_lease(rt.db, "reconcile", rt.settings.lease_seconds)
    if not webhook_service.acquire_resource(rt.db, obj.name, gateway_id, lease):
        return "pending", "the resource is being worked on by a webhook job: try again"
    try:
        resource = _current(rt, diff)
        crm_id = ensure_crm_record(ctx, obj.name, gateway_id, dict(rt.settings.status_labels),
                                   lease, resource=resource)
    except PartnerError as exc:
        return "failed", f"could not make the CRM record: {exc}"
    finally:
        webhook_service.release_resource(rt.db, obj.name, gateway_id, lease)
    with rt.db.transaction() as session:
        session.execute(sa.update(ReconcileDifference).where(
            ReconcileDifference.id == diff.id).values(crm_id=crm_id))
    _record(rt, [diff], crm_id, resource)
    return "applied", f"create_crm: made {obj.sobject} {crm_id} from the gateway resource"
