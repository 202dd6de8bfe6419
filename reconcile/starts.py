"""Runs asked for from the console: stored as a queued run (its scope and flags on the row,
so the job carries only its id), handed to an admin job, refused while one is under way.

One at a time per kind, across machines, as the scheduled run does it: the handed-out key
(``SET NX``, the same key the clock uses for reconcile) covers the time before the job
opens its run, and ``runs.refuse_if_busy`` the time after, while the run saves progress.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

import redis
import sqlalchemy as sa

from app import audit
from app.background import ADMIN_QUEUE, enqueue
from app.clock import utcnow
from app.errors import Conflict, ValidationFailed
from app.logs import log_context
from app.mapping import OBJECTS
from app.runtime import Runtime
from reconcile import backfill, engine, runs, schedule
from reconcile.models import ReconcileRun

log = logging.getLogger(__name__)
RUN_JOB = "workers.admin_jobs.run_requested"
KINDS = ("reconcile", "backfill")
# How long a handed-out run keeps others off before its job has opened it.
HOLD_SECONDS = 600
MAX_WHERE = 2000


def handed_out_key(kind: str) -> str:
    return schedule.SCHEDULED_KEY if kind == "reconcile" else f"paybridge:{kind}:scheduled"


def _scope(kind: str, objects: list[str], where: str | None) -> list[str]:
    if kind == "reconcile":
        unknown = [o for o in objects if o not in OBJECTS]
        if unknown:
            raise ValidationFailed(f"objects must be among {', '.join(OBJECTS)}", details={
                "fields": {"objects": [f"unknown object {o!r}" for o in unknown]}})
        return [n for n in OBJECTS if n in objects] if objects else list(OBJECTS)
    if len(objects) != 1:
        raise ValidationFailed("a backfill names one object (or all)",
                               details={"fields": {"object": ["exactly one"]}})
    if where is not None and len(where) > MAX_WHERE:
        raise ValidationFailed(f"where is limited to {MAX_WHERE} characters",
                               details={"fields": {"where": ["too long"]}})
    try:
        return backfill.objects_for(objects[0])
    except ValueError as exc:
        raise ValidationFailed(str(exc), details={"fields": {"object": [str(exc)]}}) from exc


def start(rt: Runtime, kind: str, objects: list[str], *, repair: bool = False,
          dry_run: bool = False, where: str | None = None, actor: str) -> dict[str, Any]:
    """Queue a run and hand it to an admin job; ``Conflict`` while one is under way."""
    if kind not in KINDS:
        raise ValidationFailed(f"kind must be one of {', '.join(KINDS)}",
                               details={"fields": {"kind": [f"unknown kind {kind!r}"]}})
    where = ((where or "").strip() or None) if kind == "backfill" else None
    names = _scope(kind, objects, where)
    key = handed_out_key(kind)
    if not rt.redis.set(key, "console", nx=True, ex=HOLD_SECONDS):
        raise Conflict(f"a {kind} run has been handed out and has not started yet: wait "
                       "for it to finish", code="run_in_progress")
    try:
        run_id = _queue(rt, kind, names, repair=repair and kind == "reconcile",
                        dry_run=dry_run, where=where, actor=actor)
    except BaseException:
        with contextlib.suppress(redis.RedisError):
            rt.redis.delete(key)
        raise
    enqueue(rt.redis, ADMIN_QUEUE, RUN_JOB, {f"pb-{kind}-{uuid.uuid4().hex}": [run_id]},
            timeout=rt.settings.reconcile_timeout)
    log.info("run queued from the console", extra={"run": run_id, "kind": kind})
    with rt.db.transaction() as session:
        return {"id": run_id, "kind": kind, "objects": names,
                "state": session.get(ReconcileRun, run_id).state}


def _queue(rt: Runtime, kind: str, names: list[str], *, repair: bool, dry_run: bool,
           where: str | None, actor: str) -> int:
    now = utcnow()
    with rt.db.transaction() as session:
        try:
            runs.refuse_if_busy(session, kind)
        except runs.AlreadyRunning as exc:
            raise Conflict(f"{exc}: wait for it to finish", code="run_in_progress") from exc
        # We hold the handed-out key, so a queued run still here lost its job.
        session.execute(sa.update(ReconcileRun).where(
            ReconcileRun.kind == kind, ReconcileRun.state == runs.QUEUED).values(
            state="failed", error="its job never started it (lost from Redis?)",
            updated_at=now))
        run = ReconcileRun(kind=kind, objects=names, repair=repair, dry_run=dry_run,
                           soql_where=where, state=runs.QUEUED, started_by="console",
                           started_at=now, updated_at=now, progress={}, cursor={},
                           summary={})
        session.add(run)
        session.flush()
        audit.record(session, actor=actor, action=f"{kind}_start", target_type="reconcile_run",
                     target_id=run.id, after={"objects": names, "repair": repair,
                                              "dry_run": dry_run, "where": where})
        return run.id


def run_requested(rt: Runtime, run_id: int) -> dict[str, Any]:
    """The job: run the queued run with the scope and flags on its row."""
    with rt.db.transaction() as session:
        run = session.get(ReconcileRun, run_id)
        spec = (run.kind, list(run.objects), run.repair, run.dry_run, run.soql_where) \
            if run is not None else None
    if spec is None:
        return {"runs": 0}
    kind, names, repair, dry_run, where = spec
    with log_context(run=run_id):
        try:
            if kind == "reconcile":
                _, summary = engine.reconcile(rt, names, repair=repair, dry_run=dry_run,
                                              started_by="console", queued=run_id)
            else:
                name = names[0] if len(names) == 1 else "all"
                _, summary = backfill.backfill(rt, name, where=where, dry_run=dry_run,
                                               started_by="console", queued=run_id)
        except runs.AlreadyRunning as exc:  # one the clock or the CLI started meanwhile
            runs.finish(rt.db, run_id, "failed", error=f"not started: {exc}")
            return {"runs": 0}
        except runs.NotQueued as exc:
            log.info("queued run not started", extra={"reason": str(exc)})
            return {"runs": 0}
        finally:
            with contextlib.suppress(redis.RedisError):
                rt.redis.delete(handed_out_key(kind))
    return {"runs": 1, "run": run_id, "remaining": sum(summary["remaining"].values())}
