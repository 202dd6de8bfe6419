"""The columns every work row has, mixed into each feature's model."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.db import JSONType, UTCDateTime

PENDING, FAILED, DISCARDED = "pending", "failed", "discarded"
PARKED, STALE, APPLIED = "parked", "stale", "applied"
# Not a stored status: the row was deleted (its effect complete; archived or forgotten).
DONE = "done"


class WorkRow:
    """``lease_token`` is the fencing token of the lease that holds the row: it grows with
    every grant (``leases.new_lease``), and every write made under a lease is conditional on
    it, so a job whose lease was lost cannot write anything."""

    kind: ClassVar[str]  # the row kind in ``states.TRANSITIONS``

    status: Mapped[str] = mapped_column(sa.String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_token: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    job_id: Mapped[str | None] = mapped_column(sa.String(64))
    error_log: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    discard_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
