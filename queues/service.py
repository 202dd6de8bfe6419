"""API Queue use cases, one transaction each.

Life of a row: accepted (pending, stage new) -> claimed by a job (leased) -> gateway call ->
stage gateway_done (result kept) -> CRM write-back -> deleted. Transient failures put it back
to pending with a later ``next_attempt_at``; permanent ones, or retries used up, make it Failed.
Every change of state is fenced by the lease's token (app.workrows.leases), so a worker whose
row another worker took over cannot overwrite the newer outcome.
"""

from __future__ import annotations

import hashlib
import json
import uuid
import zlib
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import audit
from app.clock import utcnow
from app.db import Database
from app.listing import ListFilter, conditions, page_query
from app.workrows import admin as row_admin
from app.workrows import dispatch, leases
from app.workrows.leases import Lease, owned
from app.workrows.states import admin_transition, log_attempt
from queues.models import (
    BLOCKING,
    FAILED,
    PENDING,
    STAGE_GATEWAY_DONE,
    STAGE_NEW,
    ArchivedItem,
    QueueItem,
)

qi = QueueItem.__table__
AUDIT_TARGET = "queue_item"


def insert_idempotency_key(obj: str, record_id: str) -> str:
    """Stable per CRM record, so even a trigger that fires twice creates one gateway resource."""
    digest = hashlib.sha256(f"{obj}:{record_id}:insert".encode()).hexdigest()[:40]
    return f"pb-{digest}"


_LOCK_KEYS = sa.text("SELECT pg_advisory_xact_lock(k) "
                     "FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k")


def _lock_records(session: Session, records: Iterable[tuple[str, str]]) -> None:
    """Serialise intake per record on PostgreSQL, so ids follow commit order for each record.

    Without it two concurrent requests for one record could commit ids out of order and a
    worker could see the later change first. SQLite already has a single writer.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({zlib.crc32(f"{o}:{r}".encode()) for o, r in records})
    if keys:
        # One statement for the batch (one per record cost a 200-change request 60 ms).
        # Locks are taken in key order, so two batches never wait on each other in a
        # circle: PostgreSQL evaluates a volatile select list in ORDER BY order.
        session.execute(_LOCK_KEYS, {"keys": keys})


def accept_changes(db: Database, changes: Sequence[dict[str, Any]], *,
                   dispatch_job_ids: Sequence[str] | None = None,
                   batch_size: int = 50) -> list[QueueItem]:
    """Store a whole batch of validated changes (all or nothing) in a transaction of its own;
    see ``store_changes``."""
    with db.transaction() as session:
        return store_changes(session, changes, dispatch_job_ids=dispatch_job_ids,
                             batch_size=batch_size)


def store_changes(session: Session, changes: Sequence[dict[str, Any]], *,
                  dispatch_job_ids: Sequence[str] | None = None,
                  batch_size: int = 50) -> list[QueueItem]:
    """Store validated changes before anything else happens, in the caller's transaction, so
    what the caller records beside them (capture snapshots, notification ids) commits with
    them or not at all.

    With ``dispatch_job_ids`` (immediate mode) the rows are marked as handed to those jobs,
    ``batch_size`` rows per job, in the same transaction; the caller enqueues after commit.
    """
    now = utcnow()
    _lock_records(session, ((c["object"], c["record_id"]) for c in changes))
    rows = []
    for index, change in enumerate(changes):
        op = change["operation"]
        key = (insert_idempotency_key(change["object"], change["record_id"])
               if op == "insert" else f"pb-{uuid.uuid4().hex}")
        job_id = dispatch_job_ids[index // batch_size] if dispatch_job_ids else None
        rows.append({
            "object": change["object"], "record_id": change["record_id"], "operation": op,
            "fields": change["fields"], "previous_fields": change.get("previous_fields"),
            "status": PENDING, "stage": STAGE_NEW, "attempts": 0,
            "idempotency_key": key, "next_attempt_at": now, "error_log": [],
            "created_at": now, "updated_at": now,
            "dispatched_at": now if job_id else None, "job_id": job_id,
        })
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        document = json.dumps(rows, default=_json_default, separators=(",", ":"))
        stored = session.scalars(sa.select(QueueItem).from_statement(_PG_STORE),
                                 {"rows": document, "now": now})
        return sorted(stored, key=lambda item: item.id)  # ids follow the order given
    # SQLite (the embedded default): the ORM's multi-row INSERT ... RETURNING.
    return list(session.scalars(
        sa.insert(QueueItem).returning(QueueItem, sort_by_parameter_order=True), rows))


# PostgreSQL: the whole batch is one short statement with one JSON parameter, so the driver
# prepares it once per connection instead of parsing a 200-row VALUES list per request (most
# of the request's cost). Rows are numbered as given and ids drawn in that order, which is
# what keeps a record's changes in order.
_PG_STORE = sa.text("""
INSERT INTO api_queue_items (object, record_id, operation, fields, previous_fields, stage,
    idempotency_key, status, attempts, next_attempt_at, error_log, created_at, updated_at,
    dispatched_at, job_id, lease_token)
SELECT r.object, r.record_id, r.operation, r.fields, r.previous_fields, r.stage,
    r.idempotency_key, r.status, 0, :now, '[]'::jsonb, :now, :now, r.dispatched_at, r.job_id, 0
FROM ROWS FROM (jsonb_to_recordset(CAST(:rows AS jsonb)) AS (object text, record_id text,
    operation text, fields jsonb, previous_fields jsonb, stage text, idempotency_key text,
    status text, dispatched_at timestamptz, job_id text)) WITH ORDINALITY
    AS r(object, record_id, operation, fields, previous_fields, stage, idempotency_key,
         status, dispatched_at, job_id, n)
ORDER BY r.n
RETURNING """ + ", ".join(c.name for c in QueueItem.__table__.c)).columns(*QueueItem.__table__.c)


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in a queue row")


def accept_writeback(session: Session, *, obj: str, record_id: str, gateway_id: str,
                     fields: dict[str, Any], result: dict[str, Any], note: str,
                     job_id: str | None = None) -> QueueItem:
    """Store a change whose gateway call the caller already made, so only the CRM write-back
    of ``result`` remains, retried like any other row's.

    For callers whose input must never be queued (raw bank details): ``fields`` and ``result``
    hold safe CRM fields only. Runs in the caller's transaction; the caller enqueues
    ``job_id`` (immediate mode) after commit.
    """
    _lock_records(session, [(obj, record_id)])
    now = utcnow()
    item = QueueItem(
        object=obj, record_id=record_id, operation="insert", fields=fields,
        previous_fields=None, status=PENDING, stage=STAGE_GATEWAY_DONE, attempts=0,
        idempotency_key=f"pb-{uuid.uuid4().hex}", gateway_id=gateway_id, result=result,
        next_attempt_at=now, error_log=[], dispatched_at=now if job_id else None, job_id=job_id,
    )
    log_attempt(item, {"stage": "gateway", "outcome": "ok", "note": note})
    session.add(item)
    session.flush()
    return item


def accept_retirement(session: Session, *, obj: str, record_id: str,
                      gateway_id: str) -> QueueItem:
    """Queue cancelling (a bank account: disabling) a gateway resource that ``record_id`` no
    longer points at, because it was re-pointed to a new one in this transaction.

    The row's ``gateway_id`` is set from the start (``QueueItem.retires``): its gateway step
    acts on that resource, not on the record's current one, and it writes nothing back to
    the CRM, whose record shows the new resource. Queued behind the record's other rows, it
    runs once they are done, with the usual retries; no job is assigned here because it
    cannot start before the write-back ahead of it (the dispatcher hands it out then).
    Runs in the caller's transaction.
    """
    _lock_records(session, [(obj, record_id)])
    now = utcnow()
    item = QueueItem(
        object=obj, record_id=record_id, operation="delete", fields={}, previous_fields=None,
        status=PENDING, stage=STAGE_NEW, attempts=0, idempotency_key=f"pb-{uuid.uuid4().hex}",
        gateway_id=gateway_id, next_attempt_at=now, error_log=[])
    session.add(item)
    session.flush()
    return item


def _blocked_by_earlier():
    earlier = qi.alias("earlier")
    return sa.exists().where(
        earlier.c.object == qi.c.object, earlier.c.record_id == qi.c.record_id,
        earlier.c.id < qi.c.id, earlier.c.status.in_(BLOCKING),
    )


def _claimable(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(qi.c.status == PENDING, qi.c.next_attempt_at <= now,
                   leases.free(qi, now), ~_blocked_by_earlier())


def claim(db: Database, ids: Sequence[int], lease: Lease) -> list[int]:
    """Lease the given rows that are due and first in line for their record. One round trip."""
    if not ids:
        return []
    return leases.claim(db, qi, sa.and_(qi.c.id.in_(list(ids)), _claimable(utcnow())), lease)


def load_owned(session: Session, item_id: int, lease: Lease) -> QueueItem | None:
    return session.scalars(sa.select(QueueItem).where(
        QueueItem.id == item_id, owned(qi, lease))).first()


def load_owned_many(session: Session, ids: Sequence[int], lease: Lease) -> list[QueueItem]:
    """The given rows still held under ``lease``, oldest first, in one query."""
    if not ids:
        return []
    return list(session.scalars(sa.select(QueueItem).where(
        QueueItem.id.in_(list(ids)), owned(qi, lease)).order_by(QueueItem.id)))


def record_gateway_done(session: Session, item: QueueItem, gateway_id: str,
                        result: dict[str, Any], note: str) -> None:
    item.stage = STAGE_GATEWAY_DONE
    item.gateway_id = gateway_id
    item.result = result
    log_attempt(item, {"stage": "gateway", "outcome": "ok", "note": note})


def complete(session: Session, ids: Sequence[int], lease: Lease) -> int:
    """Delete finished rows (pending -> done), keeping a compact copy in the archive (one
    statement each). Rows no longer held under ``lease`` are left alone."""
    if not ids:
        return 0
    held = sa.and_(qi.c.id.in_(list(ids)), owned(qi, lease), qi.c.status == PENDING)
    at = qi.c
    session.execute(sa.insert(ArchivedItem.__table__).from_select(
        ["id", "object", "record_id", "operation", "gateway_id", "attempts", "error_log",
         "created_at", "completed_at"],
        sa.select(at.id, at.object, at.record_id, at.operation, at.gateway_id, at.attempts,
                  at.error_log, at.created_at, sa.literal(utcnow(), ArchivedItem.completed_at.type))
        .where(held)))
    result = session.execute(sa.delete(qi).where(held))
    return result.rowcount or 0


def arrivals(session: Session, ids: Sequence[int], lease: Lease) -> list[tuple[str, datetime]]:
    """(object, arrival time) of held rows, read before ``complete`` deletes them."""
    if not ids:
        return []
    rows = session.execute(sa.select(qi.c.object, qi.c.created_at).where(
        qi.c.id.in_(list(ids)), owned(qi, lease)))
    return [(r.object, r.created_at) for r in rows]


def prune_archive(db: Database, older_than_seconds: float) -> int:
    with db.transaction() as session:
        result = session.execute(sa.delete(ArchivedItem).where(
            ArchivedItem.completed_at < utcnow() - timedelta(seconds=older_than_seconds)))
        return result.rowcount or 0


def pending_in_records(session: Session, obj: str, record_id: str) -> bool:
    return session.scalar(sa.select(sa.func.count()).select_from(qi).where(
        qi.c.object == obj, qi.c.record_id == record_id, qi.c.status.in_(BLOCKING))) > 0


# --- dispatch ------------------------------------------------------------------------------

def find_dispatchable(db: Database, *, limit: int, redispatch_after: float,
                      live: Collection[str] = (), window: dispatch.Window | None = None,
                      records: Iterable[tuple[str, str]] | None = None) -> list[int]:
    """Ids of rows due and first in line that no live job holds (``live``: the job ids
    still to run or running; see ``dispatch.due_ids``)."""
    cond = _claimable(utcnow())
    if records is not None:
        pairs = list(set(records))
        if not pairs:
            return []
        cond = sa.and_(cond, sa.tuple_(qi.c.object, qi.c.record_id).in_(pairs))
    with db.transaction() as session:
        return dispatch.due_ids(session, qi, cond, order_by=[qi.c.id], limit=limit,
                                redispatch_after=redispatch_after, live=live, window=window)


# --- admin ---------------------------------------------------------------------------------

def list_items(db: Database, *, status: str | None = None, obj: str | None = None,
               record_id: str | None = None, error: str | None = None,
               since: datetime | None = None, until: datetime | None = None, limit: int = 50,
               before_id: int | None = None) -> list[QueueItem]:
    """Newest first, keyset-paged (``before_id``), filtered as the console's lists are."""
    flt = ListFilter(status=status, kind=obj, record=record_id, error=error, since=since,
                     until=until)
    query = page_query(QueueItem, item_conditions(flt), limit=limit, before_id=before_id)
    with db.transaction() as session:
        return list(session.scalars(query))


def item_conditions(flt: ListFilter) -> list[Any]:
    return conditions(QueueItem, flt, kind=QueueItem.object, record=QueueItem.record_id)


def get_item(db: Database, item_id: int) -> QueueItem | None:
    with db.transaction() as session:
        return session.get(QueueItem, item_id)


def get_item_or_archived(db: Database, item_id: int) -> QueueItem | ArchivedItem | None:
    with db.transaction() as session:
        return session.get(QueueItem, item_id) or session.get(ArchivedItem, item_id)


def reprocess(db: Database, *, ids: Sequence[int] | None = None, obj: str | None = None,
              actor: str = "admin") -> list[int]:
    """Failed rows become pending and due now, with a fresh set of retries (audited)."""
    query = sa.select(QueueItem).where(QueueItem.status == FAILED)
    if ids is not None:
        query = query.where(QueueItem.id.in_(list(ids)))
    if obj:
        query = query.where(QueueItem.object == obj)
    return row_admin.reprocess(db, query, actor=actor, target_type=AUDIT_TARGET)


def discard(db: Database, item_id: int, reason: str, actor: str = "admin") -> QueueItem | None:
    return row_admin.discard_one(db, QueueItem, item_id, reason, actor, AUDIT_TARGET)


def discard_many(db: Database, ids: Sequence[int], reason: str, actor: str) -> list[int]:
    return row_admin.discard_many(db, QueueItem, ids, reason, actor, AUDIT_TARGET)


def edit(db: Database, item_id: int, fields: dict[str, Any],
         previous_fields: dict[str, Any] | None, actor: str) -> QueueItem | None:
    """Replace a Failed item's snapshot (validated by the caller) and reprocess it, audited
    with the payload before and after."""
    with db.transaction() as session:
        item = session.get(QueueItem, item_id, with_for_update=True)
        if item is None:
            return None
        if item.status != FAILED:
            raise ValueError(f"only Failed items can be edited; this one is {item.status}")
        if item.stage != STAGE_NEW:
            raise ValueError("its gateway call already succeeded and only the CRM write-back "
                             "is left: reprocess it instead")
        before = {"fields": item.fields, "previous_fields": item.previous_fields}
        item.fields, item.previous_fields = dict(fields), previous_fields
        audit.record(session, actor=actor, action="edit", target_type=AUDIT_TARGET,
                     target_id=item.id, before=before,
                     after={"fields": item.fields, "previous_fields": previous_fields})
        admin_transition(session, [item], PENDING, actor=actor, action="reprocess",
                         target_type=AUDIT_TARGET)
        return item


def counts_by_status(db: Database) -> dict[str, int]:
    return row_admin.counts_by_status(db, QueueItem)
