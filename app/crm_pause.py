"""A shared 'stop writing to the CRM until T' flag, set when Salesforce refuses for a while.

It lives in Redis because every worker on every machine must see it at once; losing it (a
flushed Redis) only means one more refused call, which sets it again.
"""

from __future__ import annotations

import contextlib
import time

import redis

KEY = "paybridge:crm:paused_until"


class CrmPause:
    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection

    def until(self) -> float | None:
        try:
            value = self.redis.get(KEY)
        except redis.RedisError:
            return None
        if value is None:
            return None
        until = float(value)
        return until if until > time.time() else None

    def pause(self, seconds: float, reason: str = "") -> float:
        until = time.time() + seconds
        with contextlib.suppress(redis.RedisError):
            self.redis.set(KEY, str(until), px=max(1, int(seconds * 1000)))
        return until
