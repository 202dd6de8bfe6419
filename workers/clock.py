"""The clock process: runs the dispatcher on a fixed beat and says it is alive.

Immediate mode sweeps every DISPATCH_INTERVAL (retries due, lost jobs, expired leases);
scheduled mode hands out work only every SCHEDULE_INTERVAL, like a scheduled batch job.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable

import redis
import sqlalchemy.exc

from app import idempotency
from app.clients.errors import PartnerError
from app.config import Settings
from app.console.upkeep import upkeep
from app.logs import configure_logging
from app.runtime import Runtime
from queues import service
from queues.polling import poll_changes
from reconcile import schedule as reconcile_schedule
from webhooks.catchup import catch_up
from workers.context import set_runtime
from workers.dispatcher import dispatch_api, dispatch_webhooks
from workers.leadership import Leadership

log = logging.getLogger(__name__)
HEARTBEAT_KEY = "paybridge:clock:heartbeat"


PRUNE_EVERY = 3600.0
_last: dict[str, float] = {"prune": 0.0, "catchup": 0.0, "console": 0.0, "capture": 0.0,
                           "reconcile": 0.0}


def _every(name: str, seconds: float) -> bool:
    if seconds <= 0 or time.monotonic() - _last.get(name, 0.0) < seconds:
        return False
    _last[name] = time.monotonic()
    return True


def _step(name: str, fn: Callable[[], int | None]) -> int:
    """One duty of a tick. Whatever it raises is logged and the other duties still run: the
    clock is what keeps every queue moving, so no single failure may stop it."""
    try:
        return fn() or 0
    except (redis.RedisError, sqlalchemy.exc.OperationalError) as exc:
        # Redis or the database restarting: keep beating, reconnect on the next tick.
        log.warning("clock step failed; will retry", extra={"step": name, "error": str(exc)})
    except PartnerError as exc:
        log.warning("clock step could not reach a partner",
                    extra={"step": name, "error": str(exc)})
    except Exception:
        log.exception("clock step failed unexpectedly; will retry", extra={"step": name})
    return 0


def tick(rt: Runtime, leadership: Leadership | None = None) -> int:
    """One beat. With several clocks, only the one holding the lead does the duties."""
    if leadership is not None:
        try:
            if not leadership.hold():
                return 0
        except redis.RedisError as exc:  # no Redis, no dispatching either: wait for it
            log.warning("clock cannot reach Redis to lead", extra={"error": str(exc)})
            return 0
    dispatched = _step("dispatch_api", lambda: dispatch_api(rt))
    dispatched += _step("dispatch_webhooks", lambda: dispatch_webhooks(rt))
    if _every("prune", PRUNE_EVERY):
        _step("prune", lambda: service.prune_archive(rt.db, rt.settings.archive_retention))
        _step("prune_idempotency_keys", lambda: idempotency.prune(rt.db))
    if _every("catchup", rt.settings.catchup_interval):
        _step("catchup", lambda: catch_up(rt))
    # Light: one query per polled object per interval when nothing changed.
    if rt.settings.change_capture == "poll" and _every("capture",
                                                       rt.settings.capture_poll_interval):
        _step("capture", lambda: poll_changes(rt))
    if rt.settings.reconcile_interval > 0 and _every("reconcile", reconcile_schedule.CHECK_EVERY):
        _step("reconcile", lambda: reconcile_schedule.schedule(rt))
    if _every("console", rt.settings.alert_interval):
        _step("console", lambda: upkeep(rt))
    with contextlib.suppress(redis.RedisError):
        # Outlives the beat even in scheduled mode, so "clock alive" does not flap.
        beat = max(rt.settings.dispatch_interval, rt.settings.schedule_interval
                   if rt.settings.api_queue_mode == "scheduled" else 0)
        rt.redis.set(HEARTBEAT_KEY, str(time.time()), ex=int(max(60, 3 * beat)))
    return dispatched


def run() -> None:
    settings = Settings.from_env()
    configure_logging("clock", settings.log_format, settings.log_level)
    rt = Runtime(settings)
    set_runtime(rt)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    interval = (settings.dispatch_interval if settings.api_queue_mode == "immediate"
                else settings.schedule_interval)
    # A leader that stops renewing is replaced after a few beats (never under 10 s).
    leadership = Leadership(rt.redis, max(10.0, 5 * interval))
    log.info("clock starting", extra={"mode": settings.api_queue_mode, "interval_s": interval,
                                      "clock": leadership.id})
    while not stop.is_set():
        tick(rt, leadership)
        stop.wait(interval)
    with contextlib.suppress(redis.RedisError):
        leadership.release()
    log.info("clock stopped")
