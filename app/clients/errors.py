"""How partner failures are classified. The queues only ever see these classes."""

from __future__ import annotations

import email.utils
import math
import time
from datetime import UTC
from typing import Any


class PartnerError(Exception):
    def __init__(self, message: str, *, status: int | None = None,
                 details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.details = details


class TransientError(PartnerError):
    """Retrying later may succeed: timeouts, connection errors, 5xx, 429, row locks."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 status: int | None = None, details: Any = None) -> None:
        super().__init__(message, status=status, details=details)
        self.retry_after = retry_after


class PermanentError(PartnerError):
    """Retrying cannot fix it (validation errors, unknown records): Failed, for an admin."""


class InvalidStateError(PermanentError):
    """The gateway refused an action for the resource's current state (e.g. already cancelled)."""

    def __init__(self, message: str, *, reason: str | None = None, status: int | None = None,
                 details: Any = None) -> None:
        super().__init__(message, status=status, details=details)
        self.reason = reason


class PausedError(TransientError):
    """The partner told us to stop for a while (daily API allocation used up)."""


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP-date), or None
    when it is absent or unreadable: then the retry schedule alone decides."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": UTC, says RFC 5322
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None
