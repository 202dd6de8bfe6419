"""Bulk reprocess / discard of every Failed item matching a filter, and the repair of every
open difference of one kind of a reconcile run, with progress.

Starting one stores a BulkOperation row (the filter, the number of items it matches, the
highest id it may touch, so items failing later are left alone) and enqueues a job after
commit. The job works through the items in id order, CHUNK at a time: each chunk is one
service call (which audits every item) followed by a progress update. The page polls the
row. If the job is lost, the clock re-enqueues operations that stopped moving; the cursor
makes a rerun continue where the last one stopped.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import redis
import sqlalchemy as sa

from app import audit
from app.background import ADMIN_QUEUE, enqueue, new_job_ids
from app.clock import utcnow
from app.console.models import DONE, FAILED, QUEUED, RUNNING, BulkOperation
from app.errors import NotFound, ValidationFailed
from app.listing import ListFilter
from app.runtime import Runtime
from queues import admin as queue_admin
from queues import service as queue_service
from queues.models import QueueItem
from reconcile import service as reconcile_service
from reconcile.models import ReconcileDifference
from webhooks import service as webhook_service
from webhooks.models import WebhookEvent

log = logging.getLogger(__name__)
RUN_JOB = "workers.admin_jobs.run_bulk_operations"
CHUNK = 500
# A chunk of repairs is partner calls (one Collections write, a read per queued update):
# kept to what one sObject Collections call takes, well inside the lock's life.
REPAIR_CHUNK = 200
STALLED_AFTER = 120.0
ACTIONS = ("reprocess", "discard")


def _spec(queue: str) -> tuple[Any, Callable[[dict[str, Any]], list[Any]]]:
    """The rows an operation of this queue works through, and its stored filter's
    conditions on them."""
    if queue == "api":
        return QueueItem, lambda f: queue_service.item_conditions(ListFilter.from_dict(f))
    if queue == "webhook":
        return WebhookEvent, lambda f: webhook_service.event_conditions(ListFilter.from_dict(f))
    if queue == "reconcile":
        return ReconcileDifference, reconcile_service.repair_conditions
    raise ValidationFailed(f"unknown queue {queue!r}; one of api, webhook")


def _apply(rt: Runtime, op: BulkOperation, ids: list[int]) -> int:
    actor = f"{op.actor} (bulk #{op.id})"
    if op.queue == "reconcile":
        return reconcile_service.repair_ids(rt, ids, actor)
    if op.action == "reprocess":
        if op.queue == "api":
            return len(queue_admin.reprocess(rt, ids=ids, actor=actor))
        return len(webhook_service.reprocess(rt, ids=ids, actor=actor))
    service = queue_service if op.queue == "api" else webhook_service
    return len(service.discard_many(rt.db, ids, op.reason or "", actor))


def start(rt: Runtime, *, queue: str, action: str, flt: ListFilter, reason: str | None,
          actor: str) -> BulkOperation:
    """Count what the filter matches among Failed items and hand the work to a job."""
    _spec(queue)
    if queue == "reconcile" or action not in ACTIONS:
        raise ValidationFailed(f"action must be one of {', '.join(ACTIONS)}")
    if action == "discard" and not (reason or "").strip():
        raise ValidationFailed("a discard needs a reason", details={"fields": {
            "reason": ["required for a discard"]}})
    flt = ListFilter(**{**flt.__dict__, "status": "failed"})
    return _open(rt, queue, action, flt.as_dict(), reason, actor)


def start_repair(rt: Runtime, *, run_id: int, kind: str, obj: str | None,
                 actor: str) -> BulkOperation:
    """Every open difference of one kind (and object) of a reconcile run that has a safe
    repair, repaired by a job through the repair paths."""
    reconcile_service.check_repair_all(rt.db, run_id, kind, obj)
    return _open(rt, "reconcile", "repair", {"run_id": run_id, "kind": kind, "object": obj},
                 None, actor)


def _open(rt: Runtime, queue: str, action: str, spec: dict[str, Any], reason: str | None,
          actor: str) -> BulkOperation:
    model, conds_of = _spec(queue)
    with rt.db.transaction() as session:
        total, upto = session.execute(
            sa.select(sa.func.count(), sa.func.max(model.id)).where(*conds_of(spec))).one()
        op = BulkOperation(queue=queue, action=action, actor=actor, reason=reason,
                           filter={**spec, "upto_id": upto or 0}, total=total,
                           status=QUEUED if total else DONE,
                           finished_at=None if total else utcnow())
        session.add(op)
        session.flush()
        audit.record(session, actor=actor, action=f"bulk_{action}",
                     target_type="bulk_operation", target_id=op.id,
                     after={"queue": queue, "filter": spec, "total": total}, note=reason)
    if total:
        _enqueue(rt, [op.id])
    return op


def _enqueue(rt: Runtime, ids: list[int]) -> None:
    enqueue(rt.redis, ADMIN_QUEUE, RUN_JOB, {new_job_ids(1, 1)[0]: ids},
            timeout=rt.settings.job_timeout)


def get(rt: Runtime, op_id: int) -> BulkOperation:
    with rt.db.transaction() as session:
        op = session.get(BulkOperation, op_id)
    if op is None:
        raise NotFound(f"bulk operation {op_id} does not exist")
    return op


def recent(rt: Runtime, limit: int = 20) -> list[BulkOperation]:
    with rt.db.transaction() as session:
        return list(session.scalars(sa.select(BulkOperation)
                                    .order_by(BulkOperation.id.desc()).limit(limit)))


def _next_chunk(rt: Runtime, op_id: int) -> tuple[BulkOperation, list[int]] | None:
    with rt.db.transaction() as session:
        op = session.get(BulkOperation, op_id)
        if op is None or op.status in (DONE, FAILED):
            return None
        model, conds_of = _spec(op.queue)
        ids = list(session.scalars(
            sa.select(model.id).where(*conds_of(op.filter), model.id > op.cursor,
                                      model.id <= op.filter.get("upto_id", 0))
            .order_by(model.id).limit(REPAIR_CHUNK if op.queue == "reconcile" else CHUNK)))
        op.status = RUNNING if ids else DONE
        if not ids:
            op.finished_at = utcnow()
        return op, ids


def _advance(rt: Runtime, op_id: int, ids: list[int], changed: int) -> None:
    with rt.db.transaction() as session:
        op = session.get(BulkOperation, op_id, with_for_update=True)
        if op is not None:
            op.cursor = max(ids)
            op.processed += len(ids)
            op.changed += changed


def run(rt: Runtime, op_id: int) -> None:
    """Work through one operation. A Redis lock keeps a rerun from overlapping a live run."""
    lock = f"paybridge:bulk:{op_id}:running"
    if not rt.redis.set(lock, "1", nx=True, ex=int(STALLED_AFTER)):
        return
    try:
        while (step := _next_chunk(rt, op_id)) is not None:
            op, ids = step
            if not ids:
                break
            _advance(rt, op_id, ids, _apply(rt, op, ids))
            rt.redis.expire(lock, int(STALLED_AFTER))
    except Exception as exc:  # the job boundary: record it on the operation
        log.exception("bulk operation failed", extra={"bulk_operation": op_id})
        with rt.db.transaction() as session:
            op = session.get(BulkOperation, op_id)
            if op is not None:
                op.status, op.error, op.finished_at = FAILED, str(exc)[:2000], utcnow()
    finally:
        with contextlib.suppress(redis.RedisError):
            rt.redis.delete(lock)


def resume_stalled(rt: Runtime) -> int:
    """Operations whose job vanished (nothing moved for a while) are handed out again."""
    cutoff = utcnow() - timedelta(seconds=STALLED_AFTER)
    with rt.db.transaction() as session:
        ids = list(session.scalars(sa.select(BulkOperation.id).where(
            BulkOperation.status.in_((QUEUED, RUNNING)), BulkOperation.updated_at < cutoff)))
    if ids:
        _enqueue(rt, ids)
    return len(ids)
