"""The audit log: every admin action, by whom, when, on which item, with before and after.

Written by the same service functions the console, the JSON API and the CLI call, inside the
service's own transaction: an action that rolls back leaves no audit entry, and an action
that commits always has one. Values pass through the bank-detail redaction first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.clock import utcnow
from app.db import Base, BigId, Database, JSONType, UTCDateTime
from app.redaction import redact, redact_value


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_target", "target_type", "target_id", "id"),
        sa.Index("ix_audit_log_actor", "actor", "id"),
        sa.Index("ix_audit_log_action", "action", "id"),
        sa.Index("ix_audit_log_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(120))
    action: Mapped[str] = mapped_column(sa.String(40))
    target_type: Mapped[str] = mapped_column(sa.String(40))
    target_id: Mapped[str | None] = mapped_column(sa.String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    note: Mapped[str | None] = mapped_column(sa.Text)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "actor": self.actor,
                "action": self.action, "target_type": self.target_type,
                "target_id": self.target_id, "before": self.before, "after": self.after,
                "note": self.note}


def _clean(value: dict[str, Any] | None) -> dict[str, Any] | None:
    return redact_value(value) if value is not None else None


def record(session: Session, *, actor: str, action: str, target_type: str,
           target_id: str | int | None = None, before: dict[str, Any] | None = None,
           after: dict[str, Any] | None = None, note: str | None = None) -> None:
    record_many(session, actor=actor, action=action, target_type=target_type,
                target_ids=[target_id], before=before, after=after, note=note)


def record_many(session: Session, *, actor: str, action: str, target_type: str,
                target_ids: Sequence[str | int | None], before: dict[str, Any] | None = None,
                after: dict[str, Any] | None = None, note: str | None = None) -> None:
    """One entry per item, in one multi-row insert (a bulk action of 500 items is one call)."""
    if not target_ids:
        return
    now = utcnow()
    rows = [{"at": now, "actor": actor[:120], "action": action, "target_type": target_type,
             "target_id": None if target_id is None else str(target_id),
             "before": _clean(before), "after": _clean(after),
             "note": redact(note)[:2000] if note else None} for target_id in target_ids]
    session.execute(sa.insert(AuditEntry), rows)


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def search(db: Database, flt: AuditFilter, *, limit: int = 50,
           before_id: int | None = None) -> list[AuditEntry]:
    """Newest first; keyset paging on id."""
    query = sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    for column, value in ((AuditEntry.actor, flt.actor), (AuditEntry.action, flt.action),
                          (AuditEntry.target_type, flt.target_type),
                          (AuditEntry.target_id, flt.target_id)):
        if value:
            query = query.where(column == value)
    if flt.since:
        query = query.where(AuditEntry.at >= flt.since)
    if flt.until:
        query = query.where(AuditEntry.at < flt.until)
    if before_id:
        query = query.where(AuditEntry.id < before_id)
    with db.transaction() as session:
        return list(session.scalars(query))


def actions(db: Database) -> list[str]:
    with db.transaction() as session:
        return sorted(session.scalars(sa.select(AuditEntry.action).distinct()))
