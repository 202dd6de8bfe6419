"""The org's "after insert / after update / after delete" trigger: calls out to Paybridge.

``submit`` is called with the org lock held and only queues; a single background thread
sends the calls in the order they were queued, so an API call never waits on Paybridge.
A call is retried with doubling backoff after a connection error, a timeout, 429 or 5xx
(Paybridge may not be up yet); any other answer ends it. Every call is logged.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

CHUNK_SIZE = 200  # changes per call, like a trigger's batch of 200 records
LOG_SIZE = 1000


@dataclass
class TriggerCall:
    """One call to the trigger URL and how it went (``state``: pending, sent or failed)."""

    number: int
    url: str
    api_key: str | None
    changes: list[dict[str, Any]]
    queued_at: str
    state: str = "pending"
    status: int | None = None
    attempts: int = 0
    error: str | None = None
    finished_at: str | None = None

    def as_json(self, with_changes: bool) -> dict[str, Any]:
        ops = Counter(c["operation"] for c in self.changes)
        body: dict[str, Any] = {
            "number": self.number,
            "time": self.finished_at or self.queued_at,
            "queued_at": self.queued_at,
            "url": self.url,
            "count": len(self.changes),
            "operations": dict(ops),
            "state": self.state,
            "status": self.status,
            "attempts": self.attempts,
            "error": self.error,
        }
        if with_changes:
            body["changes"] = self.changes
        return body


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class TriggerSettings:
    url: str | None
    api_key: str | None
    attempts: int = 6
    backoff: float = 0.25
    backoff_max: float = 4.0
    timeout: float = 10.0


@dataclass
class _Counters:
    sent: int = 0
    failed: int = 0
    retries: int = 0
    changes_sent: int = 0


class TriggerDispatcher:
    """Queues trigger calls and delivers them from one background thread."""

    def __init__(self, settings: TriggerSettings) -> None:
        self.settings = settings
        self._queue: queue.Queue[TriggerCall | None] = queue.Queue()
        self._log: deque[TriggerCall] = deque(maxlen=LOG_SIZE)
        self._log_lock = threading.Lock()
        self._numbers = 0
        self._pending = 0
        self._idle = threading.Condition(self._log_lock)
        self.counters = _Counters()
        self._stop = threading.Event()
        # Its own session, blind to proxy/CA environment variables: the target is local.
        self._http = requests.Session()
        self._http.trust_env = False
        self._thread = threading.Thread(target=self._run, name="sf-sim-trigger", daemon=True)
        self._thread.start()

    def configure(self, url: str | None, api_key: str | None) -> None:
        self.settings.url = url or None
        self.settings.api_key = api_key

    def submit(self, changes: list[dict[str, Any]]) -> int:
        """Queue the changes of one API call (in chunks of 200); returns calls queued."""
        url = self.settings.url
        if not url or not changes:
            return 0
        calls = 0
        for start in range(0, len(changes), CHUNK_SIZE):
            with self._log_lock:
                self._numbers += 1
                call = TriggerCall(
                    number=self._numbers,
                    url=url,
                    api_key=self.settings.api_key,
                    changes=changes[start : start + CHUNK_SIZE],
                    queued_at=_now(),
                )
                self._log.append(call)
                self._pending += 1
            self._queue.put(call)
            calls += 1
        return calls

    def log(self, with_changes: bool = False) -> list[dict[str, Any]]:
        with self._log_lock:
            return [c.as_json(with_changes) for c in self._log]

    def status(self) -> dict[str, Any]:
        with self._log_lock:
            return {
                "url": self.settings.url,
                "pending": self._pending,
                "sent": self.counters.sent,
                "failed": self.counters.failed,
                "retries": self.counters.retries,
                "changes_sent": self.counters.changes_sent,
            }

    def clear_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def reset_counters(self) -> None:
        with self._log_lock:
            self.counters = _Counters()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued call has been sent or has failed; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout=5)
        self._http.close()

    # -- delivery -------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            call = self._queue.get()
            if call is None:
                return
            self._deliver(call)
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _deliver(self, call: TriggerCall) -> None:
        headers = {"Content-Type": "application/json"}
        if call.api_key:
            headers["Authorization"] = f"Bearer {call.api_key}"
        delay = self.settings.backoff
        attempts = max(1, self.settings.attempts)
        for attempt in range(1, attempts + 1):
            call.attempts = attempt
            retry = False
            try:
                response = self._http.post(
                    call.url,
                    json={"changes": call.changes},
                    headers=headers,
                    timeout=self.settings.timeout,
                )
            except requests.RequestException as exc:
                call.status, call.error, retry = None, f"{type(exc).__name__}: {exc}", True
            else:
                call.status = response.status_code
                if response.status_code < 300:
                    call.error = None
                    self._finish(call, "sent")
                    return
                call.error = f"HTTP {response.status_code}: {response.text[:300]}"
                retry = response.status_code >= 500 or response.status_code == 429
            if not retry or attempt == attempts or self._stop.is_set():
                break
            with self._log_lock:
                self.counters.retries += 1
            # Sleeping on the stop event lets shutdown cut a long backoff short.
            self._stop.wait(delay)
            delay = min(delay * 2, self.settings.backoff_max)
        self._finish(call, "failed")

    def _finish(self, call: TriggerCall, state: str) -> None:
        with self._log_lock:
            call.state = state
            call.finished_at = _now()
            if state == "sent":
                self.counters.sent += 1
                self.counters.changes_sent += len(call.changes)
            else:
                self.counters.failed += 1

