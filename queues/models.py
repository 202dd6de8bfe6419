"""The API Queue row: one CRM record change on its way to the gateway.

A row is committed before anything else happens and deleted once its effect is complete
(gateway call made, CRM written back). Its ``stage`` remembers how far it got, so a gateway
call that succeeded is never repeated because the write-back failed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.db import Base, BigId, JSONType, UTCDateTime
from app.redaction import redact_value
from app.workrows.rows import DISCARDED, FAILED, PENDING, WorkRow

STATUSES = (PENDING, FAILED, DISCARDED)
# Rows in these statuses hold back later rows of the same record (strict per-record order).
BLOCKING = (PENDING, FAILED)

STAGE_NEW, STAGE_GATEWAY_DONE = "new", "gateway_done"
OPERATIONS = ("insert", "update", "delete")


class QueueItem(WorkRow, Base):
    __tablename__ = "api_queue_items"
    kind = "api"
    __table_args__ = (
        sa.Index("ix_api_queue_items_due", "status", "next_attempt_at"),
        sa.Index("ix_api_queue_items_record", "object", "record_id", "id"),
        sa.Index("ix_api_queue_items_created", "created_at"),
        # The console's lists: newest first within a status (and an object), keyset-paged.
        sa.Index("ix_api_queue_items_status_id", "status", "id"),
        sa.Index("ix_api_queue_items_status_object", "status", "object", "id"),
        # The dispatcher's pass (app.workrows.dispatch.dispatchable): due rows by index,
        # so a pass over a backlog every live job holds costs the same at any size.
        sa.Index("ix_api_queue_items_dispatched", "dispatched_at"),
        sa.Index("ix_api_queue_items_leased", "lease_until",
                 postgresql_where=sa.text("lease_owner IS NOT NULL"),
                 sqlite_where=sa.text("lease_owner IS NOT NULL")),
        # Ids are never reused once rows are deleted: archive entries and log lines keep
        # naming one row each (SQLite would otherwise hand out a deleted row's id again).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    object: Mapped[str] = mapped_column(sa.String(32))
    record_id: Mapped[str] = mapped_column(sa.String(64))
    operation: Mapped[str] = mapped_column(sa.String(16))
    fields: Mapped[dict[str, Any]] = mapped_column(JSONType)
    previous_fields: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    stage: Mapped[str] = mapped_column(sa.String(16), default=STAGE_NEW)
    idempotency_key: Mapped[str] = mapped_column(sa.String(80))
    gateway_id: Mapped[str | None] = mapped_column(sa.String(64))
    # CRM fields to write back (gateway id, status, reference...): never bank details.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    @property
    def retires(self) -> bool:
        """A delete aimed at a gateway resource its record was re-pointed away from
        (``queues.service.accept_retirement``): the only kind of row whose gateway id is
        known before its gateway step."""
        return self.operation == "delete" and self.stage == STAGE_NEW and bool(self.gateway_id)

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id, "object": self.object, "record_id": self.record_id,
            "operation": self.operation, "status": self.status, "stage": self.stage,
            "gateway_id": self.gateway_id, "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "last_error": self.last_error, "discard_reason": self.discard_reason,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }
        if detail:
            # Stored details (STORE_BANK_DETAILS on) are for the gateway, never for a reader.
            data.update(fields=redact_value(self.fields),
                        previous_fields=redact_value(self.previous_fields),
                        result=redact_value(self.result), error_log=self.error_log,
                        leased_until=self.lease_until.isoformat() if self.lease_until else None)
        return data


class ArchivedItem(Base):
    """A finished row's compact record: what happened to a change after its row is deleted.

    Kept for ARCHIVE_RETENTION (the clock prunes older ones); holds the same non-sensitive
    data as the row had.
    """

    __tablename__ = "api_queue_archive"
    __table_args__ = (
        sa.Index("ix_api_queue_archive_record", "object", "record_id"),
        sa.Index("ix_api_queue_archive_completed", "completed_at"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    object: Mapped[str] = mapped_column(sa.String(32))
    record_id: Mapped[str] = mapped_column(sa.String(64))
    operation: Mapped[str] = mapped_column(sa.String(16))
    gateway_id: Mapped[str | None] = mapped_column(sa.String(64))
    attempts: Mapped[int] = mapped_column(sa.Integer)
    error_log: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id, "object": self.object, "record_id": self.record_id,
            "operation": self.operation, "status": "done", "stage": "done",
            "gateway_id": self.gateway_id, "attempts": self.attempts,
            "next_attempt_at": self.completed_at.isoformat(), "last_error": None,
            "discard_reason": None, "created_at": self.created_at.isoformat(),
            "updated_at": self.completed_at.isoformat(),
        }
        if detail:
            data.update(error_log=self.error_log, fields={}, previous_fields=None,
                        result=None, leased_until=None)
        return data
