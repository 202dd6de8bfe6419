"""Time for the gateway emulator: timestamps, time scaling and Bacs working days.

Contract:
- ``Clock.stamp()`` returns ISO-8601 UTC timestamps with millisecond precision that are
  strictly increasing across the whole process, so ``created_at`` orders resources and
  events without ties and ``created_at[gt]`` never skips or repeats an event.
- ``Clock.scaled(seconds)`` multiplies an emulator-side duration by the time scale: a scale
  of 0.1 makes a 60 s rate-limit window last 6 s and a 1 s webhook retry wait 0.1 s.
  Timestamps stay on the real wall clock.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta


def format_us(us: int) -> str:
    """Render microseconds since the epoch as ``2026-11-22T10:00:00.123Z``."""
    moment = datetime.fromtimestamp(us / 1_000_000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(us // 1000) % 1000:03d}Z"


def parse_timestamp(text: str) -> int:
    """Parse an ISO-8601 timestamp (``Z`` or offset; naive means UTC) to epoch microseconds.

    Raises ``ValueError`` for anything else.
    """
    moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def add_business_days(start: date, days: int) -> date:
    """Return the date ``days`` Bacs working days after ``start`` (weekends skipped)."""
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current


def roll_to_business_day(day: date) -> date:
    """Move a weekend date forward to the next Monday, as Bacs does with charge dates."""
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def add_months(day: date, months: int, day_of_month: int | None = None) -> date:
    """Add calendar months; ``day_of_month`` -1 means the last day, others are clamped."""
    month_index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(month_index, 12)
    month += 1
    next_month = date(year + (month == 12), month % 12 + 1, 1)
    last_day = (next_month - timedelta(days=1)).day
    wanted = day.day if day_of_month is None else day_of_month
    if wanted == -1 or wanted > last_day:
        wanted = last_day
    return date(year, month, wanted)


class Clock:
    """Process-wide source of timestamps and scaled durations (thread-safe)."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be greater than 0")
        self.time_scale = time_scale
        self._lock = threading.Lock()
        self._last_ms = 0

    def stamp_us(self) -> int:
        """Return a strictly increasing timestamp in epoch microseconds (whole milliseconds).

        When two stamps fall in the same millisecond the later one is pushed 1 ms ahead,
        because consumers filter with ``created_at[gt]`` at millisecond precision.
        """
        with self._lock:
            now_ms = time.time_ns() // 1_000_000
            self._last_ms = max(now_ms, self._last_ms + 1)
            return self._last_ms * 1000

    def scaled(self, seconds: float) -> float:
        """Return ``seconds`` multiplied by the time scale."""
        return seconds * self.time_scale

    @staticmethod
    def today() -> date:
        """Today's date in UTC."""
        return datetime.now(tz=UTC).date()
