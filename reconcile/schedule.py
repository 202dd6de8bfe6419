"""The scheduled reconcile: the leading clock asks whether one is due and, if so, hands one
RQ job to the admin queue; the job runs (or resumes) the run. ``runs.open_run`` refuses a
second run while one is making progress, so at most one runs across all machines."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.background import ADMIN_QUEUE, enqueue
from app.clock import utcnow
from app.db import Database
from app.runtime import Runtime
from reconcile import engine, runs
from reconcile.models import ReconcileRun

log = logging.getLogger(__name__)
RUN_JOB = "workers.admin_jobs.run_reconcile"
# Set when a job is handed out, so ticks before the job opens its run hand out no other.
SCHEDULED_KEY = "paybridge:reconcile:scheduled"
# With no run yet, the first is due one interval after a clock first looked (a new
# installation does not start with a full read of both partners).
FIRST_DUE_KEY = "paybridge:reconcile:first_due"
CHECK_EVERY = 60.0  # seconds between the clock's looks


def due(db: Database, interval: float, now: datetime | None = None,
        first_due: datetime | None = None) -> bool:
    """A run is due when the last one started ``interval`` ago, or when the last one did
    not finish and nobody is working on it any more (it is resumed)."""
    if interval <= 0:
        return False
    now = now or utcnow()
    with db.transaction() as session:
        last = session.scalars(sa.select(ReconcileRun).where(ReconcileRun.kind == "reconcile")
                               .order_by(ReconcileRun.id.desc()).limit(1)).first()
    if last is None:
        return first_due is None or now >= first_due
    if last.state == "running":
        return last.updated_at <= now - runs.STALE_AFTER
    if last.state in runs.UNFINISHED:
        return True
    return last.started_at <= now - timedelta(seconds=interval)


def schedule(rt: Runtime) -> int:
    """Hand out the reconcile job when one is due; 1 when it was handed out."""
    s = rt.settings
    now = utcnow()
    rt.redis.set(FIRST_DUE_KEY, str(now.timestamp() + s.reconcile_interval), nx=True)
    first = float(rt.redis.get(FIRST_DUE_KEY) or 0)
    if not due(rt.db, s.reconcile_interval, now, datetime.fromtimestamp(first, UTC)):
        return 0
    hold = int(max(60, min(3600, s.reconcile_interval)))
    if not rt.redis.set(SCHEDULED_KEY, "1", nx=True, ex=hold):
        return 0
    enqueue(rt.redis, ADMIN_QUEUE, RUN_JOB, {f"pb-reconcile-{uuid.uuid4().hex}": []},
            timeout=s.reconcile_timeout)
    log.info("scheduled reconcile handed out")
    return 1


def run_scheduled(rt: Runtime) -> dict[str, int]:
    """The job: every mapped object, the safe repairs unless RECONCILE_REPAIR is off."""
    try:
        run_id, summary = engine.reconcile(rt, repair=rt.settings.reconcile_repair,
                                           started_by="clock")
    except runs.AlreadyRunning as exc:
        # The key may be a console start's, still waiting for its job: it is not ours to
        # free (it expires on its own if nobody frees it).
        log.info("scheduled reconcile skipped", extra={"reason": str(exc)})
        return {"runs": 0}
    except BaseException:
        rt.redis.delete(SCHEDULED_KEY)
        raise
    rt.redis.delete(SCHEDULED_KEY)
    return {"runs": 1, "run": run_id, "remaining": sum(summary["remaining"].values())}
