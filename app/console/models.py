"""Tables of the operations console: bulk operations and alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.db import Base, BigId, JSONType, UTCDateTime

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


class BulkOperation(Base):
    """Reprocess or discard everything matching a filter, worked through in chunks by a job.

    ``cursor`` is the last item id handled: a job that dies is resumed from there by the
    clock, and every chunk commits its items, its progress and its audit entries together.
    """

    __tablename__ = "bulk_operations"
    __table_args__ = (sa.Index("ix_bulk_operations_status", "status", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(sa.String(16))  # api | webhook
    action: Mapped[str] = mapped_column(sa.String(16))  # reprocess | discard
    filter: Mapped[dict[str, Any]] = mapped_column(JSONType)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    actor: Mapped[str] = mapped_column(sa.String(120))
    status: Mapped[str] = mapped_column(sa.String(16), default=QUEUED)
    total: Mapped[int] = mapped_column(sa.Integer, default=0)
    processed: Mapped[int] = mapped_column(sa.Integer, default=0)
    changed: Mapped[int] = mapped_column(sa.Integer, default=0)
    cursor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "queue": self.queue, "action": self.action,
                "filter": self.filter, "reason": self.reason, "actor": self.actor,
                "status": self.status, "total": self.total, "processed": self.processed,
                "changed": self.changed, "error": self.error,
                "created_at": self.created_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None}


class Alert(Base):
    """One notification sent (or attempted): a group of failures or a condition."""

    __tablename__ = "alerts"
    __table_args__ = (sa.Index("ix_alerts_kind", "kind", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    subject: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    count: Mapped[int] = mapped_column(sa.Integer, default=0)
    delivery: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "subject": self.subject, "body": self.body,
                "count": self.count, "delivery": self.delivery,
                "created_at": self.created_at.isoformat()}


class AlertState(Base):
    """Per alert kind: what has been looked at and when it last notified (for grouping)."""

    __tablename__ = "alert_state"

    kind: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    watermark: Mapped[datetime] = mapped_column(UTCDateTime)
    pending: Mapped[int] = mapped_column(sa.Integer, default=0)
    pending_detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
