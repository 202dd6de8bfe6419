"""What Paybridge knows about each synchronised record, and every status it went through."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.db import Base, BigId, JSONType, UTCDateTime


class RecordLink(Base):
    """One CRM record <-> one gateway resource, with the watermark of the last event applied."""

    __tablename__ = "record_links"
    __table_args__ = (
        sa.UniqueConstraint("object", "crm_id", name="uq_record_links_object_crm_id"),
        sa.UniqueConstraint("object", "gateway_id", name="uq_record_links_object_gateway_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    object: Mapped[str] = mapped_column(sa.String(32))
    crm_id: Mapped[str | None] = mapped_column(sa.String(64))
    gateway_id: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str | None] = mapped_column(sa.String(48))
    last_event_id: Mapped[str | None] = mapped_column(sa.String(64))
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Held while one job applies this resource's events and writes the CRM: no two workers
    # ever apply events of one resource at once.
    lease_owner: Mapped[str | None] = mapped_column(sa.String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_token: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    # CRM field -> digest of the value last sent to the gateway successfully: an update sends
    # every field whose value differs, so one lost or discarded update is never left behind.
    # Digests, not values: nothing of the record is copied here.
    sent_digests: Mapped[dict[str, str] | None] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class StatusHistory(Base):
    """An append-only log of status transitions: what payment operations read."""

    __tablename__ = "status_history"
    __table_args__ = (
        sa.Index("ix_status_history_object_crm_id", "object", "crm_id", "id"),
        sa.Index("ix_status_history_object_gateway_id", "object", "gateway_id", "id"),
        sa.Index("ix_status_history_event_id", "event_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    object: Mapped[str] = mapped_column(sa.String(32))
    crm_id: Mapped[str | None] = mapped_column(sa.String(64))
    gateway_id: Mapped[str | None] = mapped_column(sa.String(64))
    from_status: Mapped[str | None] = mapped_column(sa.String(48))
    to_status: Mapped[str | None] = mapped_column(sa.String(48))
    cause: Mapped[str | None] = mapped_column(sa.String(200))
    event_id: Mapped[str | None] = mapped_column(sa.String(64))
    event_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(sa.String(16))  # webhook | api | admin
    queue_item_id: Mapped[int | None] = mapped_column(sa.BigInteger)
