"""Fixed-window API rate limiting with GoCardless-style headers.

Contract:
- Windows last ``window_s`` scaled by the time scale and are aligned to when the limit was
  (re)configured. Requests allowed in a window are counted; refused ones are not.
- Every API response carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and
  ``RateLimit-Reset`` (an HTTP date of the window's end, as GoCardless sends). With no limit
  configured nothing is refused and the headers report ``UNLIMITED`` as the limit.
- A refused request gets 429 with ``Retry-After`` = whole seconds until the window ends
  (at least 1).
- The last ``HISTORY`` windows that saw requests are kept with their allowed and refused
  counts (``/sim/stats`` -> ``rate_limit.windows``), so a benchmark can read how much of
  each window's allowance was used without sampling at the window edges.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate

from .clock import Clock

UNLIMITED = 1_000_000
HISTORY = 2000


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    headers: dict[str, str]


class RateLimiter:
    """Counts API requests per fixed window and refuses those over the limit."""

    def __init__(self, clock: Clock, limit: int = 0, window_s: float = 60.0) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.refused = 0
        self.configure(limit, window_s)

    def configure(self, limit: int, window_s: float) -> None:
        """Set the limit (0 disables refusing) and the unscaled window length."""
        if limit < 0 or window_s <= 0:
            raise ValueError("rate_limit needs limit >= 0 and window_s > 0")
        with self._lock:
            self.limit = limit
            self.window_s = window_s
            self._origin = time.monotonic()
            self._window_index = 0
            self._used = 0
            self._refused_now = 0
            self._history: deque[tuple[int, int, int]] = deque(maxlen=HISTORY)

    def hit(self) -> RateDecision:
        """Account for one request."""
        return self._decide(count=True)

    def peek(self) -> dict[str, str]:
        """The current headers without counting a request (for answers refused earlier)."""
        return self._decide(count=False).headers

    def _decide(self, count: bool) -> RateDecision:
        with self._lock:
            length = self._clock.scaled(self.window_s)
            now = time.monotonic()
            index = int((now - self._origin) // length)
            if index != self._window_index:
                if self._used or self._refused_now:
                    self._history.append((self._window_index, self._used, self._refused_now))
                self._window_index = index
                self._used = 0
                self._refused_now = 0
            window_end = self._origin + (index + 1) * length
            remaining_s = max(window_end - now, 0.0)
            limit = self.limit or UNLIMITED
            allowed = self._used < limit
            if count and allowed:
                self._used += 1
            elif count:
                self.refused += 1
                self._refused_now += 1
            headers = {
                "RateLimit-Limit": str(limit),
                "RateLimit-Remaining": str(max(limit - self._used, 0)),
                "RateLimit-Reset": formatdate(time.time() + remaining_s, usegmt=True),
            }
            if count and not allowed:
                headers["Retry-After"] = str(max(1, math.ceil(remaining_s)))
            return RateDecision(allowed, headers)

    def snapshot(self) -> dict[str, object]:
        """Settings and counters; ``windows`` lists the windows that saw requests, oldest
        first; the latest is ``complete`` only once its time is over."""
        with self._lock:
            windows = [{"index": i, "allowed": used, "refused": refused, "complete": True}
                       for i, used, refused in self._history]
            length = self._clock.scaled(self.window_s)
            current = int((time.monotonic() - self._origin) // length)
            if self._used or self._refused_now:
                windows.append({"index": self._window_index, "allowed": self._used,
                                "refused": self._refused_now,
                                "complete": self._window_index < current})
            return {"limit": self.limit, "window_s": self.window_s,
                    "scaled_window_s": self._clock.scaled(self.window_s),
                    "refused": self.refused, "windows": windows}
