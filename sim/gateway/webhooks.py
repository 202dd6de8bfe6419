"""Webhook delivery: events are batched, signed and POSTed to Paybridge from one thread.

Contract:
- ``enqueue`` is called for every event as it is created. A batch of up to ``batch_size``
  events is sent once events have lingered ``linger_s`` (50 ms) or a batch is full, as
  ``{"events": [...], "meta": {"webhook_id": "WB..."}}`` with ``Content-Type:
  application/json`` and ``Webhook-Signature`` = hex HMAC-SHA256 of the exact body bytes.
- A failed attempt (connection error, ``timeout_s`` timeout, non-2xx) is retried with the same
  body after 1, 2, 4, ... 128 s (times the time scale); after ``max_retries`` retries the
  delivery is given up. The body never changes between attempts; the signature is computed
  per attempt so ``wrong_key_next`` affects attempts, not whole deliveries.
- Sending is sequential (one attempt at a time), so without delivery faults batches arrive
  in creation order.
- Delivery faults (``/sim/webhooks/faults``): ``duplicate_rate`` re-sends a share of events
  in a later batch; ``shuffle`` shuffles each batch and holds about a third of it (never the
  newest event) back for a later batch, each event at most once; ``drop_rate`` records a
  share of deliveries as dropped without sending them; ``wrong_key_next`` signs the next N
  attempts with a wrong secret; ``pause`` holds everything.
- ``flush`` blocks until nothing is pending, in flight or waiting for a retry (or timeout).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import logging
import random
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from .clock import Clock, format_us
from .store import random_code

log = logging.getLogger("sim.gateway.webhooks")


@dataclass
class Attempt:
    at: str
    status: int | None
    error: str | None
    wrong_key: bool


@dataclass
class Delivery:
    id: str
    created_at: str
    event_ids: list[str]
    duplicate_event_ids: list[str]
    body: bytes
    state: str = "pending"
    attempts: list[Attempt] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "event_ids": self.event_ids,
            "duplicate_event_ids": self.duplicate_event_ids,
            "state": self.state,
            "attempts": [asdict(a) for a in self.attempts],
            "statuses": [a.status for a in self.attempts],
            "given_up": self.state == "given_up",
        }


@dataclass
class DeliveryFaults:
    duplicate_rate: float = 0.0
    shuffle: bool = False
    drop_rate: float = 0.0
    wrong_key_next: int = 0
    pause: bool = False


@dataclass
class _Item:
    event: dict[str, Any]
    duplicate: bool = False
    held: bool = False


def sign(body: bytes, secret: str) -> str:
    """The ``Webhook-Signature`` value for ``body``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _now_text() -> str:
    return format_us(time.time_ns() // 1000)


class WebhookDispatcher:
    """Queues events and delivers them in signed batches from a background thread."""

    def __init__(self, clock: Clock, url: str, secret: str, batch_size: int,
                 rng: random.Random, *, linger_s: float = 0.05, timeout_s: float = 10.0,
                 max_retries: int = 8, base_delay_s: float = 1.0) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.clock = clock
        self.url = url
        self.secret = secret
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.base_delay_s = base_delay_s
        self._rng = rng
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="gateway-webhooks", daemon=True)
        self.faults = DeliveryFaults()
        self._generation = 0
        self.reset()

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def reset(self) -> None:
        """Forget queued events, deliveries and counters (an attempt in flight is ignored)."""
        with self._cond:
            self._generation += 1
            self._pending: deque[_Item] = deque()
            self._pending_since: float | None = None
            self._retries: list[tuple[float, int, Delivery]] = []
            self._sequence = 0
            self._in_flight = 0
            self._flushers = 0
            self.deliveries: list[Delivery] = []
            self.counters: Counter[str] = Counter()
            self._cond.notify_all()

    def configure(self, url: str | None = None, secret: str | None = None) -> None:
        with self._cond:
            if url is not None:
                self.url = url
            if secret is not None:
                self.secret = secret

    def set_faults(self, body: dict[str, Any]) -> None:
        """Apply a ``POST /sim/webhooks/faults`` body; raises ``ValueError`` on bad input."""
        updates: dict[str, Any] = {}
        for name in ("duplicate_rate", "drop_rate"):
            if body.get(name) is not None:
                value = body[name]
                if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    0 <= value <= 1
                ):
                    raise ValueError(f"{name} must be a number between 0 and 1")
                updates[name] = float(value)
        for name in ("shuffle", "pause"):
            if body.get(name) is not None:
                if not isinstance(body[name], bool):
                    raise ValueError(f"{name} must be true or false")
                updates[name] = body[name]
        if body.get("wrong_key_next") is not None:
            value = body["wrong_key_next"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError("wrong_key_next must be a non-negative integer")
            updates["wrong_key_next"] = value
        with self._cond:
            for name, value in updates.items():
                setattr(self.faults, name, value)
            self._cond.notify_all()

    def clear_faults(self) -> None:
        with self._cond:
            self.faults = DeliveryFaults()
            self._cond.notify_all()

    def faults_snapshot(self) -> dict[str, Any]:
        with self._cond:
            return asdict(self.faults)

    def enqueue(self, event: dict[str, Any]) -> None:
        with self._cond:
            if not self.url:
                self.counters["events_not_sent_no_url"] += 1
                return
            self._push(_Item(event))

    def flush(self, timeout_s: float) -> dict[str, Any]:
        """Send everything now (no linger) and wait until it is delivered or given up."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._flushers += 1
            self._cond.notify_all()
            try:
                while not self._idle():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                return {"flushed": self._idle(), **self._queue_state()}
            finally:
                self._flushers -= 1

    def snapshot(self, limit: int | None = None) -> dict[str, Any]:
        with self._cond:
            shown = self.deliveries if limit is None else self.deliveries[-limit:]
            return {
                "url": self.url,
                "batch_size": self.batch_size,
                "deliveries": [d.summary() for d in shown],
                "counters": dict(self.counters),
                "faults": asdict(self.faults),
                **self._queue_state(),
            }

    def _queue_state(self) -> dict[str, int]:
        return {"pending_events": len(self._pending), "retrying": len(self._retries),
                "in_flight": self._in_flight}

    def _idle(self) -> bool:
        return not self._pending and not self._retries and self._in_flight == 0

    def _push(self, item: _Item) -> None:
        if self._pending_since is None:
            self._pending_since = time.monotonic()
        self._pending.append(item)
        self._cond.notify_all()

    def _run(self) -> None:
        session = requests.Session()
        while True:
            with self._cond:
                delivery = self._wait_for_job()
                if delivery is None:
                    return
                self._in_flight += 1
                generation = self._generation
                url = self.url
                wrong_key = self.faults.wrong_key_next > 0
                if wrong_key:
                    self.faults.wrong_key_next -= 1
                secret = self.secret + "-wrong" if wrong_key else self.secret
            status, error = self._send(session, url, delivery.body, sign(delivery.body, secret))
            with self._cond:
                # A reset while this attempt was in flight already counted it out.
                if generation == self._generation:
                    self._in_flight -= 1
                    self._record(delivery, Attempt(_now_text(), status, error, wrong_key))
                self._cond.notify_all()

    def _wait_for_job(self) -> Delivery | None:
        """Block (holding the condition) until a delivery should be attempted."""
        while not self._closed:
            wait: float | None = None
            if not self.faults.pause:
                now = time.monotonic()
                if self._retries and self._retries[0][0] <= now:
                    return heapq.heappop(self._retries)[2]
                if self._pending:
                    waited = now - (self._pending_since or now)
                    if (self._flushers or len(self._pending) >= self.batch_size
                            or waited >= self.linger_s):
                        delivery = self._make_batch()
                        if delivery is not None:
                            return delivery
                        continue
                    wait = self.linger_s - waited
                if self._retries:
                    until_retry = self._retries[0][0] - now
                    wait = until_retry if wait is None else min(wait, until_retry)
            self._cond.wait(wait)
        return None

    def _make_batch(self) -> Delivery | None:
        """Take the next batch; returns ``None`` when the batch was dropped."""
        items = [self._pending.popleft()
                 for _ in range(min(self.batch_size, len(self._pending)))]
        if self.faults.shuffle and len(items) > 1:
            # Only events older than the batch's newest one are held back, so every hold-back
            # really arrives after a newer event.
            newest = items[-1]
            self._rng.shuffle(items)
            holdable = [item for item in items if not item.held and item is not newest]
            hold = holdable[: min(max(1, len(items) // 3), len(holdable))]
            for item in hold:
                item.held = True
                self._pending.append(item)
            held_ids = {id(item) for item in hold}
            items = [item for item in items if id(item) not in held_ids]
            self.counters["events_held_back"] += len(hold)
        self._pending_since = time.monotonic() if self._pending else None
        webhook_id = "WB" + random_code(12)
        events = [item.event for item in items]
        body = json.dumps({"events": events, "meta": {"webhook_id": webhook_id}},
                          separators=(",", ":")).encode()
        delivery = Delivery(webhook_id, _now_text(), [e["id"] for e in events],
                            [item.event["id"] for item in items if item.duplicate], body)
        self.deliveries.append(delivery)
        self.counters["deliveries"] += 1
        if self.faults.drop_rate and self._rng.random() < self.faults.drop_rate:
            delivery.state = "dropped"
            self.counters["dropped"] += 1
            self.counters["events_dropped"] += len(events)
            self._cond.notify_all()
            return None
        for item in items:
            if not item.duplicate and self.faults.duplicate_rate and (
                self._rng.random() < self.faults.duplicate_rate
            ):
                self._push(_Item(item.event, duplicate=True, held=True))
                self.counters["events_duplicated"] += 1
        return delivery

    def _send(self, session: requests.Session, url: str, body: bytes,
              signature: str) -> tuple[int | None, str | None]:
        headers = {"Content-Type": "application/json", "Webhook-Signature": signature,
                   "User-Agent": "paybridge-gateway-emulator"}
        try:
            response = session.post(url, data=body, headers=headers, timeout=self.timeout_s)
        except requests.RequestException as exc:
            return None, type(exc).__name__
        return response.status_code, None

    def _record(self, delivery: Delivery, attempt: Attempt) -> None:
        delivery.attempts.append(attempt)
        self.counters["attempts"] += 1
        if attempt.status is not None and 200 <= attempt.status < 300:
            delivery.state = "delivered"
            self.counters["delivered"] += 1
            self.counters["events_delivered"] += len(delivery.event_ids)
            return
        failures = len(delivery.attempts)
        if failures > self.max_retries:
            delivery.state = "given_up"
            self.counters["given_up"] += 1
            log.warning("webhook %s given up after %d attempts", delivery.id, failures)
            return
        delivery.state = "retrying"
        delay = self.clock.scaled(self.base_delay_s * 2 ** (failures - 1))
        self._sequence += 1
        heapq.heappush(self._retries, (time.monotonic() + delay, self._sequence, delivery))
