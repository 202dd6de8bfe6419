"""The Salesforce org's daily API allocation, spent by every worker on every machine as one.

Salesforce counts API calls over a rolling 24 hours and reports the org's usage in every
answer's ``Sforce-Limit-Info`` header. Paybridge takes at most ``1 - reserve`` of the
allocation, leaving the reserve for the org's other integrations, and spends it evenly: calls
are paced through a limiter in Redis at that share per window, after a burst for short peaks.
When the usage reaches the share, or Salesforce refuses with REQUEST_LIMIT_EXCEEDED, every
CRM call pauses (the shared ``CrmPause``) for ``pause_seconds``. Callers see ``PausedError``
and postpone their rows without spending an attempt.
"""

from __future__ import annotations

import logging
import time

import redis

from app.clients.errors import PausedError
from app.crm_pause import CrmPause
from app.ratelimit import RateLimiter

log = logging.getLogger(__name__)


class CrmAllowance:
    def __init__(self, connection: redis.Redis, pause: CrmPause, *, reserve: float,
                 window: float, burst: float, pause_seconds: float) -> None:
        self.redis = connection
        self.pause = pause
        self.reserve = reserve
        self.window = window
        self.burst = burst  # share of our daily share that may go back to back
        self.pause_seconds = pause_seconds
        self.limiter: RateLimiter | None = None  # known once an answer told the allocation
        self._allocation = 0

    def share(self, allocation: int) -> float:
        return allocation * (1 - self.reserve)

    def before_call(self) -> None:
        """Raise PausedError while calls are paused; otherwise wait for our paced slot."""
        until = self.pause.until()
        if until:
            raise PausedError("CRM calls are paused (Salesforce API allocation)",
                              retry_after=max(1.0, until - time.time()))
        if self.limiter is not None:
            self.limiter.acquire()

    def observe(self, used: int, allocation: int) -> None:
        """The usage an answer reported: pace to the allocation, pause at our share."""
        if allocation <= 0:
            return
        share = self.share(allocation)
        if allocation != self._allocation:
            self._allocation = allocation
            burst = max(1, int(share * self.burst))
            self.limiter = RateLimiter(self.redis, "salesforce", share, self.window,
                                       headroom=1.0, burst=burst)
        if used >= share:
            log.warning("salesforce api usage reached our share of the allocation; pausing",
                        extra={"used": used, "allocation": allocation,
                               "reserve": self.reserve})
            self.pause.pause(self.pause_seconds)

    def refused(self, error: PausedError) -> PausedError:
        """Salesforce said REQUEST_LIMIT_EXCEEDED: everyone stops for a while."""
        until = self.pause.until() or self.pause.pause(self.pause_seconds)
        error.retry_after = max(1.0, until - time.time())
        return error
