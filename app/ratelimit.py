"""One request-rate limiter shared by every process on every machine, kept in Redis.

GCRA (the generic cell rate algorithm) in one Lua script: each call reserves the next
slot, spaced ``window / (limit * headroom)`` apart, so N workers together never exceed the
partner's rate, whatever N is. ``burst`` lets that many calls go back to back before the
spacing applies (the gateway's fixed windows want none beyond ``catch_up``, a burst that
fits in the headroom; a daily allowance wants some). The partner's own signals win: a
429's Retry-After, or ``RateLimit-Remaining: 0`` until ``RateLimit-Reset``, block every
caller until then, burst or not.
"""

from __future__ import annotations

import time

import redis

from app.clients.errors import PausedError
from app.deadline import wait_limit

_SCRIPT = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
if blocked - now > wait then wait = blocked - now end
if wait > max_wait then return tostring(-wait) end
if tat < now + wait then tat = now + wait end
local ttl = math.ceil((tat + interval - now) * 1000) + 1000
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', ttl)
return tostring(wait)
"""


# The gateway's limiter: a worker that paused between two batches (their CRM write-back)
# makes up 2.5 % of the allowance at once, inside the 3 % headroom, so the pause does not
# cost its share of the window.
GATEWAY_CATCH_UP = 0.025


class Throttled(PausedError):
    """Our own limiter says the next free slot is too far away to wait for in-line."""


class RateLimiter:
    def __init__(self, connection: redis.Redis, name: str, limit: float, window: float, *,
                 headroom: float = 0.97, max_wait: float = 5.0, burst: int = 1,
                 catch_up: float = 0.0) -> None:
        """``catch_up``: the share of ``limit`` that may be made up back to back after the
        callers paused (a worker writing a batch back before its next one); it must fit in
        the headroom, so no window of the partner's ever carries more than ``limit``: the
        spacing gives ``limit * headroom`` a window, the catch-up at most ``limit *
        catch_up`` more (GCRA's bound holds for any window, aligned or not)."""
        if catch_up > 1.0 - headroom:
            raise ValueError("catch_up must fit in the headroom")
        self.redis = connection
        self.keys = [f"paybridge:ratelimit:{name}:tat", f"paybridge:ratelimit:{name}:blocked"]
        self.headroom = headroom
        self.burst = burst
        self.catch_up = catch_up
        self.max_wait = max_wait
        self.set_rate(limit, window)
        self._script = connection.register_script(_SCRIPT)

    def set_rate(self, limit: float, window: float) -> None:
        """A new allowance (e.g. the partner reported a different allocation)."""
        self.limit, self.window = limit, window
        self.interval = window / (max(limit, 1.0) * self.headroom)
        slots = max(self.burst, int(limit * self.catch_up))
        self.tolerance = self.interval * (max(slots, 1) - 1)

    def acquire(self) -> float:
        """Take the next slot, sleeping up to ``max_wait`` (less under a request's
        deadline); returns the seconds slept."""
        try:
            wait = float(self._script(keys=self.keys, args=[
                self.interval, wait_limit(self.max_wait), self.tolerance]))
        except redis.RedisError:
            return 0.0  # Redis down: the partner's own 429s still protect it
        if wait < 0:
            raise Throttled(f"{self.keys[0].split(':')[2]} rate limit: next slot in {-wait:.1f}s",
                            retry_after=-wait)
        if wait > 0:
            time.sleep(wait)
        return wait

    def block(self, seconds: float) -> None:
        """Nobody calls before ``seconds`` from now (partner said so)."""
        try:
            seconds_now, micros = self.redis.time()  # the clock every caller's script uses
            until = seconds_now + micros / 1_000_000 + seconds
            self.redis.set(self.keys[1], str(until), px=max(1, int(seconds * 1000) + 1000))
        except redis.RedisError:
            pass
