"""The health of both queues, as the dashboard (and GET /api/v1/dashboard) shows it.

Counts come from the database at the moment of asking; throughput and failures per minute
come from the Redis counters every process bumps (app.telemetry); worker and clock liveness
from RQ's worker registry and the clock's heartbeat key; change capture's cost (polling)
from the calls each object's last poll spent, beside the org's allocation; the last
reconcile run's result from its row.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import redis
import sqlalchemy as sa
from rq import Worker

from app.clock import iso, utcnow
from app.runtime import Runtime
from queues.models import QueueItem
from reconcile import service as reconcile_service
from webhooks.models import PARKED, PENDING, WebhookEvent

CLOCK_HEARTBEAT_KEY = "paybridge:clock:heartbeat"  # written by workers.clock.tick
QUEUES: dict[str, dict[str, Any]] = {
    "api": {"label": "API Queue", "model": QueueItem, "kind": QueueItem.object,
            "waiting": (PENDING,)},
    "webhook": {"label": "Webhook Queue", "model": WebhookEvent,
                "kind": WebhookEvent.resource_type, "waiting": (PENDING, PARKED)},
}


def _rate(done: int, failed: int) -> float | None:
    return round(failed / (done + failed), 4) if done + failed else None


def _window(series: list[dict[str, int]], bucket: int) -> dict[str, Any]:
    """Totals of a per-minute series, and the series regrouped into ``bucket``-minute bars."""
    done = sum(m["done"] for m in series)
    failed = sum(m["failed"] for m in series)
    bars = [{"minute": series[i]["minute"],
             "done": sum(m["done"] for m in series[i:i + bucket]),
             "failed": sum(m["failed"] for m in series[i:i + bucket])}
            for i in range(0, len(series), bucket)]
    return {"done": done, "failed": failed, "failure_rate": _rate(done, failed), "bars": bars}


def queue_stats(rt: Runtime, name: str) -> dict[str, Any]:
    spec = QUEUES[name]
    model, kind = spec["model"], spec["kind"]
    with rt.db.transaction() as session:
        counts = dict(session.execute(
            sa.select(model.status, sa.func.count()).group_by(model.status)).all())
        per_kind: dict[str, dict[str, int]] = {}
        for obj, status, count in session.execute(
                sa.select(kind, model.status, sa.func.count()).group_by(kind, model.status)):
            per_kind.setdefault(obj, {})[status] = count
        oldest = [session.scalar(sa.select(model.created_at).where(model.status == status)
                                 .order_by(model.id).limit(1)) for status in spec["waiting"]]
    oldest_at = min((o for o in oldest if o is not None), default=None)
    day = rt.telemetry.series(name, 24 * 60)
    return {
        "label": spec["label"], "counts": counts,
        "oldest_pending_at": oldest_at.isoformat() if oldest_at else None,
        "oldest_pending_seconds": (utcnow() - oldest_at).total_seconds() if oldest_at else None,
        "by_kind": dict(sorted(per_kind.items())),
        "last_hour": _window(day[-60:], 1), "last_day": _window(day, 60),
    }


def salesforce_usage(rt: Runtime) -> dict[str, Any] | None:
    usage = rt.telemetry.salesforce()
    if not usage or not usage.get("allocation"):
        return None
    return {"used": int(usage["used"]), "allocation": int(usage["allocation"]),
            "share": round(usage["used"] / usage["allocation"], 4),
            "seen_at": iso(datetime.fromtimestamp(usage["at"], UTC))}


def capture_cost(rt: Runtime, usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """What change capture by polling spends: the calls each object's last poll took (one
    when idle, one more per page of changes), per interval and extrapolated to a day, and
    that day's share of the org's allocation."""
    s = rt.settings
    if s.change_capture != "poll":
        return None
    polls = rt.telemetry.capture_polls()
    per_interval = sum(calls for calls, _at in polls.values())
    per_day = round(per_interval * 86_400 / s.capture_poll_interval) if polls else None
    allocation = usage["allocation"] if usage else None
    return {
        "interval_seconds": s.capture_poll_interval,
        "objects": {obj: {"calls": calls, "polled_at": iso(datetime.fromtimestamp(at, UTC))}
                    for obj, (calls, at) in sorted(polls.items())},
        "calls_per_interval": per_interval if polls else None, "calls_per_day": per_day,
        "share_of_allocation": (round(per_day / allocation, 4)
                                if per_day is not None and allocation else None),
    }


def processes(rt: Runtime) -> dict[str, Any]:
    try:
        workers = [{"name": w.name, "state": str(w.get_state()), "queues": w.queue_names(),
                    "current_job": w.get_current_job_id(),
                    "last_heartbeat": w.last_heartbeat.isoformat() if w.last_heartbeat
                    else None} for w in Worker.all(connection=rt.redis)]
        beat = rt.redis.get(CLOCK_HEARTBEAT_KEY)
    except redis.RedisError as exc:
        return {"redis": f"unreachable: {type(exc).__name__}", "workers": [],
                "clock": {"alive": False, "seconds_since_beat": None}}
    since = round(time.time() - float(beat), 1) if beat else None
    return {"redis": "ok", "workers": sorted(workers, key=lambda w: w["name"]),
            "clock": {"alive": beat is not None, "seconds_since_beat": since}}


def snapshot(rt: Runtime) -> dict[str, Any]:
    usage = salesforce_usage(rt)
    return {"generated_at": utcnow().isoformat(),
            "queues": {name: queue_stats(rt, name) for name in QUEUES},
            "salesforce": usage, "capture": capture_cost(rt, usage),
            "reconcile": last_reconcile(rt), **processes(rt)}


def last_reconcile(rt: Runtime) -> dict[str, Any] | None:
    """The newest reconcile run that started: when, its state, and what it found."""
    run = reconcile_service.latest(rt.db)
    if run is None:
        return None
    summary = run["summary"]
    found = sum((summary.get("found") or {}).values())
    remaining = sum((summary.get("remaining") or {}).values())
    return {"id": run["id"], "state": run["state"], "started_at": run["started_at"],
            "finished_at": run["finished_at"], "objects": run["objects"],
            "found": found if summary else run["totals"]["differences"],
            "repaired": summary.get("repaired", 0), "remaining": remaining,
            "remaining_by_kind": summary.get("remaining") or {}}
