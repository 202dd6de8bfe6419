"""A deadline for the partner calls one web request makes.

gunicorn kills a worker whose request runs longer than WEB_TIMEOUT, wherever it is: between
the gateway's answer and the database write that records it, for instance. A request that
calls partners synchronously therefore runs under ``deadline(seconds)`` (validated to end
well before WEB_TIMEOUT). Every partner call made under it gets connect and read timeouts
cut so that both together end by the deadline, the shared rate limiters wait no longer than
what is left, and no call starts with too little left to be useful: ``DeadlineExceeded``
instead, which is transient (the same request again may succeed). Database writes are not
cut: once a partner has acted, recording it matters more than the deadline.

Outside a deadline (workers, the clock) nothing changes. requests' timeouts bound each
socket operation, not a whole call: a partner trickling its answer a byte per read timeout
could outlast them; WEB_TIMEOUT's margin covers the usual cases, gunicorn's kill the rest.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from app.clients.errors import TransientError

# Less than this left: a call could only time out, so it is not started.
MIN_CALL_SECONDS = 0.25

_ends_at: ContextVar[float | None] = ContextVar("paybridge_deadline", default=None)


class DeadlineExceeded(TransientError):
    """The request's deadline came before a partner answered, or before a call could start."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    token = _ends_at.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _ends_at.reset(token)


def remaining() -> float | None:
    """Seconds left before the deadline; None outside one."""
    ends_at = _ends_at.get()
    return None if ends_at is None else ends_at - time.monotonic()


def call_timeouts(connect: float, read: float, what: str) -> tuple[float, float]:
    """(connect, read) timeouts for the next call to ``what``: as configured, cut to fit
    together in what is left of the deadline. A caller whose timeouts were cut reports a
    timeout as ``DeadlineExceeded``: the deadline, not the partner's timeout, ended it."""
    left = remaining()
    if left is None:
        return connect, read
    if left < MIN_CALL_SECONDS:
        raise DeadlineExceeded(f"no time left in the request's deadline to call {what}")
    cut_connect = min(connect, left / 4)
    return cut_connect, min(read, left - cut_connect)


def wait_limit(seconds: float) -> float:
    """The longest a rate limiter may sleep in-line: ``seconds``, or less under a deadline
    (leaving time for the call itself)."""
    left = remaining()
    return seconds if left is None else max(0.0, min(seconds, left - MIN_CALL_SECONDS))
