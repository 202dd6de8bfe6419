"""How partner failures are classified. The queues only ever see these classes."""

from __future__ import annotations

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
