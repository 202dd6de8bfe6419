"""What change capture remembers, in the database so a Redis flush or a restart loses nothing.

``CaptureWatermark``: per object, the newest SystemModstamp a poll has taken in.
``CaptureSnapshot``: per record, its mapped fields (never bank details) as last seen, and
the SystemModstamp they were seen at: where ``previous_fields`` come from, and the
(record id, SystemModstamp) key polls with an overlap deduplicate by.
``OutboundNotification``: Outbound Message notification ids already stored (Salesforce
resends one until it is acknowledged, for up to 24 hours).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime


class CaptureWatermark(Base):
    __tablename__ = "capture_watermarks"

    object: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    modstamp: Mapped[datetime] = mapped_column(UTCDateTime)
    polled_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CaptureSnapshot(Base):
    __tablename__ = "capture_snapshots"

    object: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    record_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    modstamp: Mapped[datetime] = mapped_column(UTCDateTime)
    fields: Mapped[dict[str, Any]] = mapped_column(JSONType)
    deleted: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class OutboundNotification(Base):
    __tablename__ = "outbound_notifications"

    notification_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
