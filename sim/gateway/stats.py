"""Request statistics for ``/sim/stats`` (counts by ``METHOD /path/template`` and status)
and the request log for ``/sim/requests``: each API request with its path, status,
Idempotency-Key and start/end times, and the ones still in flight. A real gateway keeps
such a log for its merchants (GoCardless's dashboard lists every API request); here it lets
a test judge what reached the gateway from the gateway's own records.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, defaultdict, deque
from typing import Any

LOG_SIZE = 200_000


class RequestStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: dict[str, Counter[str]] = defaultdict(Counter)
            self.rate_limited = 0
            self._log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
            self._in_flight: dict[int, dict[str, Any]] = {}
            self._ids = itertools.count(1)

    def begin(self, method: str, path: str, idempotency_key: str | None) -> int:
        entry = {"method": method, "path": path, "idempotency_key": idempotency_key,
                 "started": time.time()}
        with self._lock:
            number = next(self._ids)
            self._in_flight[number] = entry
        return number

    def end(self, number: int | None, status: int) -> None:
        with self._lock:
            entry = self._in_flight.pop(number, None) if number is not None else None
            if entry is not None:
                self._log.append({**entry, "status": status, "ended": time.time()})

    def log(self, path_prefix: str = "") -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            done = [e for e in self._log if e["path"].startswith(path_prefix)]
            flying = [e for e in self._in_flight.values() if e["path"].startswith(path_prefix)]
        return {"requests": done, "in_flight": flying}

    def record(self, method: str, template: str, status: int) -> None:
        with self._lock:
            self._requests[f"{method} {template}"][str(status)] += 1
            if status == 429:
                self.rate_limited += 1

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "requests": {key: dict(counts) for key, counts in sorted(self._requests.items())},
                "rate_limited": self.rate_limited,
            }
