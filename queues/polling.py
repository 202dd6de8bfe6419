"""Change capture by polling (CHANGE_CAPTURE=poll): no code in the org.

Per queueable object, the clock asks Salesforce for the records whose ``SystemModstamp`` is
at or after the watermark minus CAPTURE_OVERLAP (``queryAll``, so deletions come too: one
call when idle). Salesforce stamps a transaction's records when it runs but shows them only
once it commits, so a long transaction can surface with a stamp before the watermark: the
overlap re-reads that stretch, and the snapshots' (record id, SystemModstamp) drop what was
already taken in. Each record's mapped fields (never bank-detail fields) are kept as a
snapshot: the next change's ``previous_fields``. Changes made by Paybridge's own
integration user are its write-backs: they refresh the snapshot and are never queued (loop
protection). What is left goes through the same validation and intake as
``POST /api/v1/queue``, oldest first. Watermarks and snapshots live in the database, so a
restart or a Redis flush resumes where the last poll stopped.

Each change is taken in exactly once: the queued changes, the snapshots and the watermark
commit in one transaction, so a crash anywhere before that commit leaves all three as they
were and the next poll reads the same records again; after it, the snapshots drop them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.errors import ValidationFailed
from app.mapping import OBJECTS, QUEUEABLE_OBJECTS, ObjectMap
from app.runtime import Runtime
from queues import intake
from queues.capture_models import CaptureSnapshot, CaptureWatermark
from queues.schemas import ChangeSchema

log = logging.getLogger(__name__)
SYSTEM_FIELDS = ("Id", "IsDeleted", "CreatedDate", "SystemModstamp", "LastModifiedById")


def polled_objects() -> list[ObjectMap]:
    """Objects a CRM change can queue, in the mapping's order (parents before children).
    Payouts are gateway-only and never polled."""
    return [o for name, o in OBJECTS.items() if name in QUEUEABLE_OBJECTS]


def captured_fields(obj: ObjectMap) -> list[str]:
    """The mapped fields a snapshot keeps: never the bank-detail ones."""
    return sorted(obj.crm_fields - obj.sensitive_crm_fields - set(SYSTEM_FIELDS))


def stamp(value: str) -> datetime:
    """Salesforce's 2024-05-01T09:30:00.000+0000 as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def poll_changes(rt: Runtime) -> int:
    """One poll of every object; returns how many changes were queued."""
    own = rt.crm.integration_user_id()
    return sum(poll_object(rt, obj, own) for obj in polled_objects())


def poll_object(rt: Runtime, obj: ObjectMap, own_user_id: str) -> int:
    now = utcnow()
    with rt.db.transaction() as session:
        mark = session.get(CaptureWatermark, obj.name)
        watermark = mark.modstamp if mark is not None else now
    since = watermark - timedelta(seconds=rt.settings.capture_overlap)
    # No transaction is open across the call to Salesforce.
    calls_before = rt.crm.calls
    records = rt.crm.changed_since(obj.sobject, [*SYSTEM_FIELDS, *captured_fields(obj)], since)
    rt.telemetry.capture_poll(obj.name, rt.crm.calls - calls_before)
    with rt.db.transaction() as session:
        snapshots = _snapshots(session, obj.name, [str(r["Id"]) for r in records])
    changes, seen = derive(obj, records, snapshots, own_user_id, since)
    valid = _screened(rt, changes)
    newest = max([watermark, *(stamp(str(r["SystemModstamp"])) for r in records)])
    with rt.db.transaction() as session:
        items = intake.store(session, rt, valid)
        _remember(session, obj.name, seen, newest, now)
    intake.enqueue(rt, items)
    queued = len(items)
    if changes:
        log.info("polled changes", extra={"object": obj.name, "records": len(records),
                                          "changes": len(changes), "queued": queued})
    return queued


def _snapshots(session: Any, name: str, ids: list[str]) -> dict[str, CaptureSnapshot]:
    found: dict[str, CaptureSnapshot] = {}
    for start in range(0, len(ids), 500):
        rows = session.scalars(sa.select(CaptureSnapshot).where(
            CaptureSnapshot.object == name,
            CaptureSnapshot.record_id.in_(ids[start:start + 500])))
        for row in rows:
            session.expunge(row)
            found[row.record_id] = row
    return found


def derive(obj: ObjectMap, records: Iterable[dict[str, Any]],
           snapshots: dict[str, CaptureSnapshot], own_user_id: str,
           since: datetime) -> tuple[list[dict[str, Any]], dict[str, CaptureSnapshot]]:
    """The changes the records (oldest first) mean, and the snapshots to keep afterwards."""
    names = captured_fields(obj)
    changes: list[dict[str, Any]] = []
    seen: dict[str, CaptureSnapshot] = {}
    for record in records:
        record_id, modstamp = str(record["Id"]), stamp(str(record["SystemModstamp"]))
        before = seen.get(record_id) or snapshots.get(record_id)
        if before is not None and before.modstamp >= modstamp:
            continue  # taken in already (the overlap reads it again)
        fields = {n: record[n] for n in names if record.get(n) is not None}
        deleted = bool(record.get("IsDeleted"))
        seen[record_id] = CaptureSnapshot(object=obj.name, record_id=record_id,
                                          modstamp=modstamp, fields=fields, deleted=deleted)
        if record.get("LastModifiedById") == own_user_id:
            continue  # our own write-back: remembered, never sent round again
        change = _change(obj, record_id, fields, deleted, before, record, since)
        if change is not None:
            changes.append(change)
    return changes, seen


def _change(obj: ObjectMap, record_id: str, fields: dict[str, Any], deleted: bool,
            before: CaptureSnapshot | None, record: dict[str, Any],
            since: datetime) -> dict[str, Any] | None:
    previous = before.fields if before is not None else None
    if deleted:
        if before is not None and before.deleted:
            return None
        operation = "delete"
    elif before is None or before.deleted:
        created = record.get("CreatedDate")
        # A record first seen now was created in this stretch (insert), or before polling
        # began (an update whose previous fields nobody saw).
        operation = "insert" if created is None or stamp(str(created)) >= since else "update"
        previous = None
    elif fields == before.fields:
        return None  # only unmapped fields changed: nothing for the gateway
    else:
        operation = "update"
    return {"object": obj.name, "record_id": record_id, "operation": operation,
            "fields": fields, "previous_fields": previous}


def _screened(rt: Runtime, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The endpoint's validation and intake's rules, change by change: one bad record must
    not hold back the others. A refused change is logged by record id and field names or
    error code, never values; its snapshot is still kept, so it is not read again."""
    kept = []
    for change in changes:
        where = {"object": change["object"], "record_id": change["record_id"]}
        try:
            kept += intake.screen(rt, [ChangeSchema().load(change)])
        except ValidationError as exc:
            log.warning("polled change refused by validation",
                        extra={**where, "fields": sorted(exc.normalized_messages())})
        except ValidationFailed as exc:
            log.warning("polled change refused at intake", extra={**where, "code": exc.code})
    return kept


def _remember(session: Session, name: str, seen: dict[str, CaptureSnapshot],
              newest: datetime, now: datetime) -> None:
    for snapshot in seen.values():
        session.merge(snapshot)
    mark = session.get(CaptureWatermark, name)
    if mark is None:
        session.add(CaptureWatermark(object=name, modstamp=newest, polled_at=now))
    else:
        mark.modstamp, mark.polled_at = max(mark.modstamp, newest), now
