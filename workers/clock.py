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

import redis
import sqlalchemy.exc

from app.config import Settings
from app.logs import configure_logging
from app.runtime import Runtime
from queues import service
from workers.context import set_runtime
from workers.dispatcher import dispatch_api

log = logging.getLogger(__name__)
HEARTBEAT_KEY = "paybridge:clock:heartbeat"


PRUNE_EVERY = 3600.0
_last_prune = 0.0


def tick(rt: Runtime) -> int:
    global _last_prune
    dispatched = dispatch_api(rt)
    if time.monotonic() - _last_prune > PRUNE_EVERY:
        _last_prune = time.monotonic()
        service.prune_archive(rt.db, rt.settings.archive_retention)
    with contextlib.suppress(redis.RedisError):
        rt.redis.set(HEARTBEAT_KEY, str(time.time()), ex=60)
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
    log.info("clock starting", extra={"mode": settings.api_queue_mode, "interval_s": interval})
    while not stop.is_set():
        try:
            tick(rt)
        except (redis.RedisError, sqlalchemy.exc.OperationalError) as exc:
            # Redis or the database restarting: keep beating, reconnect on the next tick.
            log.warning("dispatch tick failed; will retry", extra={"error": str(exc)})
        stop.wait(interval)
    log.info("clock stopped")
