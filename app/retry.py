"""The retry schedule: one pure function, used by both queues.

``schedule`` is the list of intervals between attempts (SmarterPay-style: minutes, escalating).
Attempt n (1-based) that failed transiently waits ``schedule[n-1]`` (plus jitter, and never
less than the partner's Retry-After); after ``len(schedule)`` retries the item is Failed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def next_delay(attempt: int, schedule: Sequence[float], *, jitter: float = 0.1,
               retry_after: float | None = None,
               rng: random.Random | None = None) -> float | None:
    """Seconds to wait before the next attempt, or None when the retries are used up.

    Jitter spreads retries of a burst of failures (+/- ``jitter`` share of the interval) so
    they do not hit the partner again in the same second.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if attempt > len(schedule):
        return None
    base = schedule[attempt - 1]
    spread = base * jitter
    delay = base + (rng or random).uniform(-spread, spread) if spread else base
    if retry_after is not None:
        delay = max(delay, retry_after)
    return max(0.0, delay)
