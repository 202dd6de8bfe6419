"""Per-API-key request rates on the intake endpoints, shared by every web process.

Each key has its own allowance per endpoint group, kept in Redis by the same GCRA limiter
that paces our gateway calls (app.ratelimit), so any number of gunicorn workers on any number
of machines together hold a key to its rate. A request over it is refused at once, before
its body is parsed, with 429 and ``Retry-After`` (the seconds until the key's next slot); it
is never made to wait inside a worker. While Redis is unreachable the limit is not applied:
intake stores rows in the database, which must not stop because the counter is away.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, request

from app.config import Settings
from app.errors import AppError
from app.ratelimit import RateLimiter, Throttled


class RateLimited(AppError):
    status = 429
    code = "rate_limited"


def rate_limited(group: str, limit_of: Callable[[Settings], int]
                 ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Route decorator, placed under ``require_key``: ``limit_of(settings)`` requests per
    API_RATE_WINDOW for each key on the routes of ``group`` (a short name, part of the Redis
    key)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            rt = current_app.extensions["paybridge"]
            limit, window = limit_of(rt.settings), rt.settings.api_rate_window
            if limit > 0:
                _take_slot(rt.redis, group, g.api_key_id, limit, window)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def _take_slot(connection: Any, group: str, key_id: int, limit: int, window: float) -> None:
    limiter = RateLimiter(connection, f"api-{group}:{key_id}", limit, window, headroom=1.0,
                          max_wait=0.0, burst=max(1, limit // 10))
    try:
        limiter.acquire()
    except Throttled as exc:
        wait = max(1, math.ceil(exc.retry_after or 1.0))
        raise RateLimited(
            f"this API key may send {limit} requests per {window:g}s to {request.path}; try "
            f"again in {wait}s", details={"retry_after": wait, "limit": limit,
                                    "window_seconds": window},
            headers={"Retry-After": str(wait)}) from None
