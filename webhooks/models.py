"""The Webhook Event row: one gateway event, stored before anything is applied.

Statuses: pending (to apply), parked (it skips a stage: waiting for the missing event),
stale (older than what was applied: kept visible, never applied), failed (for an admin),
discarded, applied (only kept when WEBHOOK_KEEP_APPLIED is set; otherwise deleted).
Stage: new -> applied (status history written) -> the CRM write; like the API Queue, a row
remembers how far it got so the CRM write is retried alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, JSONType, UTCDateTime
from app.workrows.rows import APPLIED, DISCARDED, FAILED, PARKED, PENDING, STALE, WorkRow

STATUSES = (PENDING, PARKED, STALE, FAILED, DISCARDED, APPLIED)
WORKABLE = (PENDING, PARKED)
STAGE_NEW, STAGE_APPLIED = "new", "applied"


class WebhookEvent(WorkRow, Base):
    __tablename__ = "webhook_events"
    kind = "webhook"
    __table_args__ = (
        sa.UniqueConstraint("event_id", name="uq_webhook_events_event_id"),
        sa.Index("ix_webhook_events_due", "status", "next_attempt_at"),
        sa.Index("ix_webhook_events_resource", "resource_type", "resource_id", "event_time"),
        sa.Index("ix_webhook_events_event_time", "event_time"),
        # The console's lists: newest first within a status (and a resource type).
        sa.Index("ix_webhook_events_status_id", "status", "id"),
        sa.Index("ix_webhook_events_status_resource", "status", "resource_type", "id"),
        # The dispatcher's pass (app.workrows.dispatch.dispatchable): due rows by index,
        # so a pass over a backlog every live job holds costs the same at any size.
        sa.Index("ix_webhook_events_dispatched", "dispatched_at"),
        sa.Index("ix_webhook_events_leased", "lease_until",
                 postgresql_where=sa.text("lease_owner IS NOT NULL"),
                 sqlite_where=sa.text("lease_owner IS NOT NULL")),
        # Ids are never reused once rows are deleted: archive entries and log lines keep
        # naming one row each (SQLite would otherwise hand out a deleted row's id again).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(sa.String(64))
    endpoint: Mapped[str] = mapped_column(sa.String(32))
    delivery_id: Mapped[str] = mapped_column(sa.String(64))
    resource_type: Mapped[str] = mapped_column(sa.String(48))
    resource_id: Mapped[str | None] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(64))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    stage: Mapped[str] = mapped_column(sa.String(16), default=STAGE_NEW)
    reason: Mapped[str | None] = mapped_column(sa.Text)  # the classifier's word, for admins

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id, "event_id": self.event_id, "endpoint": self.endpoint,
            "resource_type": self.resource_type, "resource_id": self.resource_id,
            "action": self.action, "event_time": self.event_time.isoformat(),
            "status": self.status, "stage": self.stage, "reason": self.reason,
            "attempts": self.attempts, "next_attempt_at": self.next_attempt_at.isoformat(),
            "last_error": self.last_error, "discard_reason": self.discard_reason,
            "received_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
        }
        if detail:
            data.update(payload=self.payload, error_log=self.error_log,
                        delivery_id=self.delivery_id)
        return data


class CatchupState(Base):
    """Where the catch-up stands (one row): what it has covered, and the scan in progress."""

    __tablename__ = "catchup_state"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer, default=0)
    # Every gateway event created at or before this has been listed.
    covered_until: Mapped[datetime] = mapped_column(UTCDateTime)
    # The scan in progress: events created after scan_since, up to scan_top (the newest on
    # its first page), read as far as scan_cursor.
    scan_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scan_top: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scan_cursor: Mapped[str | None] = mapped_column(sa.String(64))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
