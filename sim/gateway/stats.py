"""Request statistics for ``/sim/stats``: counts by ``METHOD /path/template`` and status."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict


class RequestStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: dict[str, Counter[str]] = defaultdict(Counter)
            self.rate_limited = 0

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
