"""Counters shared by every Paybridge process, kept in Redis.

Workers, the clock and gunicorn's workers are separate processes, possibly on separate
machines, so a process-local Prometheus registry would only ever see its own share.
Counters and histogram buckets are Redis hash fields instead: any web process exports the
cluster-wide totals at scrape time (app.console.metrics). Per-minute buckets of processed and
failed items feed the dashboard's charts for the last day.

Telemetry must never stop work: every Redis error is swallowed (a flushed Redis only resets
the counters, which Prometheus treats as a counter reset).
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import weakref
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import redis

PREFIX = "paybridge:metrics"
COUNTERS = f"{PREFIX}:counters"
HISTOGRAMS = f"{PREFIX}:histograms"
SALESFORCE_USAGE = "paybridge:salesforce:api_usage"
CAPTURE_POLLS = "paybridge:capture:polls"  # per object: calls the last poll spent, and when
SERIES_TTL = 26 * 3600
# Seconds from an item's arrival to its end: most take well under a second, retried ones
# minutes to hours.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
                   3600.0, 14400.0, 86400.0)
QUEUES = ("api", "webhook")


def _key(name: str, labels: Mapping[str, str]) -> str:
    return name + "|" + ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def parse_key(key: str) -> tuple[str, dict[str, str]]:
    name, _, rest = key.partition("|")
    labels = dict(part.split("=", 1) for part in rest.split(",") if "=" in part)
    return name, labels


def outcome_class(outcome: str) -> str:
    """'201' -> 'ok', '404' -> '4xx', '503' -> '5xx'; named outcomes stay as they are."""
    if not outcome.isdigit():
        return outcome
    code = int(outcome)
    if code < 400:
        return "ok"
    if code in (409, 429):
        return str(code)
    return f"{code // 100}xx"


def series_key(queue: str, minute: int) -> str:
    return f"{PREFIX}:series:{queue}:{minute}"


# Partner calls are counted in the process and sent at most this often (and when a job
# ends, and when the process exits): one Redis command per call cost a worker more CPU than
# a tenth of the call it counted.
PARTNER_CALLS_EVERY = 1.0
_live: weakref.WeakSet[Telemetry] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for telemetry in list(_live):
        telemetry.flush()


class Telemetry:
    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection
        self._calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self._calls_sent = time.monotonic()
        _live.add(self)

    # --- writing (any process) -------------------------------------------------------

    def partner_call(self, partner: str, outcome: str) -> None:
        key = _key("partner_calls", {"partner": partner, "outcome": outcome_class(outcome)})
        with self._calls_lock:
            self._calls[key] += 1
            due = time.monotonic() - self._calls_sent >= PARTNER_CALLS_EVERY
        if due:
            self.flush()

    def flush(self) -> None:
        """Send the partner calls counted here and not yet sent (one pipeline)."""
        with self._calls_lock:
            calls, self._calls = self._calls, Counter()
            self._calls_sent = time.monotonic()
        if not calls:
            return
        pipe = self.redis.pipeline(transaction=False)
        for key, count in calls.items():
            pipe.hincrby(COUNTERS, key, count)
        with contextlib.suppress(redis.RedisError):
            pipe.execute()

    def salesforce_usage(self, used: int, allocation: int) -> None:
        with contextlib.suppress(redis.RedisError):
            self.redis.hset(SALESFORCE_USAGE, mapping={"used": used, "allocation": allocation,
                                                       "at": time.time()})

    def processed(self, queue: str, items: Iterable[tuple[str, datetime]]) -> None:
        """Items finished now: (object, arrival time) each.

        Totals are added once per counter and bucket, not once per item: a job of 200 items
        sends about 20 commands, not 3,400."""
        items = list(items)
        if not items:
            return
        now = time.time()
        by_object = Counter(obj for obj, _ in items)
        buckets: Counter[str] = Counter()
        total_seconds = 0.0
        for _, arrived in items:
            seconds = max(0.0, now - arrived.timestamp())
            total_seconds += seconds
            # Buckets are cumulative: an item counts in every bucket at or above it.
            first = bisect_left(LATENCY_BUCKETS, seconds)
            buckets.update(str(bound) for bound in LATENCY_BUCKETS[first:])
        pipe = self.redis.pipeline(transaction=False)
        for obj, count in by_object.items():
            pipe.hincrby(COUNTERS, _key("processed", {"queue": queue, "object": obj}), count)
        base = {"queue": queue}
        for bound, count in buckets.items():
            pipe.hincrby(HISTOGRAMS, _key("latency", {**base, "le": bound}), count)
        pipe.hincrby(HISTOGRAMS, _key("latency", {**base, "le": "+Inf"}), len(items))
        pipe.hincrbyfloat(HISTOGRAMS, _key("latency_sum", base), total_seconds)
        self._bump_series(pipe, queue, "done", len(items), now)
        with contextlib.suppress(redis.RedisError):
            pipe.execute()

    def failed(self, queue: str, by_object: Mapping[str, int]) -> None:
        total = sum(by_object.values())
        if not total:
            return
        pipe = self.redis.pipeline(transaction=False)
        for obj, count in by_object.items():
            pipe.hincrby(COUNTERS, _key("failed", {"queue": queue, "object": obj}), count)
        self._bump_series(pipe, queue, "failed", total, time.time())
        with contextlib.suppress(redis.RedisError):
            pipe.execute()

    @staticmethod
    def _bump_series(pipe: Any, queue: str, field: str, amount: int, now: float) -> None:
        key = series_key(queue, int(now // 60))
        pipe.hincrby(key, field, amount)
        pipe.expire(key, SERIES_TTL)

    # --- reading (the web process) ---------------------------------------------------

    def counters(self) -> list[tuple[str, dict[str, str], float]]:
        self.flush()  # this process's own calls count at once
        raw = self.redis.hgetall(COUNTERS)
        return [(*parse_key(k.decode()), float(v)) for k, v in raw.items()]

    def histograms(self) -> list[tuple[str, dict[str, str], float]]:
        raw = self.redis.hgetall(HISTOGRAMS)
        return [(*parse_key(k.decode()), float(v)) for k, v in raw.items()]

    def series(self, queue: str, minutes: int, now: float | None = None) -> list[dict[str, int]]:
        """Processed and failed counts per minute, oldest first, ending with this minute."""
        current = int((now or time.time()) // 60)
        first = current - minutes + 1
        pipe = self.redis.pipeline(transaction=False)
        for minute in range(first, current + 1):
            pipe.hgetall(series_key(queue, minute))
        try:
            rows = pipe.execute()
        except redis.RedisError:
            rows = [{}] * minutes
        return [{"minute": first + i, "done": int(row.get(b"done", 0)),
                 "failed": int(row.get(b"failed", 0))} for i, row in enumerate(rows)]

    def capture_poll(self, obj: str, calls: int) -> None:
        """The Salesforce calls one poll of ``obj`` spent (change capture's cost)."""
        with contextlib.suppress(redis.RedisError):
            pipe = self.redis.pipeline(transaction=False)
            pipe.hset(CAPTURE_POLLS, obj, f"{calls} {time.time()}")
            pipe.hincrby(COUNTERS, _key("capture_polls", {"object": obj}), 1)
            pipe.hincrby(COUNTERS, _key("capture_calls", {"object": obj}), calls)
            pipe.execute()

    def capture_polls(self) -> dict[str, tuple[int, float]]:
        """Per object, (calls, unix time) of its last poll; empty when none was seen."""
        try:
            raw = self.redis.hgetall(CAPTURE_POLLS)
        except redis.RedisError:
            return {}
        found = {}
        for obj, value in raw.items():
            calls, at = value.decode().split()
            found[obj.decode()] = (int(calls), float(at))
        return found

    def salesforce(self) -> dict[str, float] | None:
        try:
            raw = self.redis.hgetall(SALESFORCE_USAGE)
        except redis.RedisError:
            return None
        if not raw:
            return None
        return {k.decode(): float(v) for k, v in raw.items()}
