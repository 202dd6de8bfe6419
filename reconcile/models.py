"""What a reconciliation or backfill run remembers, in the database so a crash loses nothing.

``ReconcileRun``: one run (``kind`` reconcile or backfill) with its objects, flags, state,
per-object progress and the resume cursor saved as it goes.
``ReconcileDifference``: one way the CRM and the gateway disagree, both sides' values
(masked: never a bank detail), the suggested repair and how the repair went. ``key`` makes
a difference found twice (a batch compared again after a resume) one row.
``ReconcileStaging``: the gateway side of one object of one run, streamed page by page, so
the CRM stream is compared against it in batches of ids and memory stays flat.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.db import Base, BigId, JSONType, UTCDateTime

RUN_STATES = ("queued", "running", "done", "failed", "stopped")
# "repairing": claimed by one repair (see ``reconcile.repairs.claim``), so a repair of one
# difference and a repair of all of its kind never both act on it.
REPAIR_STATES = ("pending", "repairing", "applied", "failed", "manual")
OPEN = ("pending", "failed")  # what a repair may take up


class ReconcileRun(Base):
    __tablename__ = "reconcile_runs"
    __table_args__ = (sa.Index("ix_reconcile_runs_kind_started_at", "kind", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(16), default="reconcile")  # or backfill
    objects: Mapped[list[str]] = mapped_column(JSONType)
    repair: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    dry_run: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    soql_where: Mapped[str | None] = mapped_column(sa.Text)  # backfill's SOQL condition
    state: Mapped[str] = mapped_column(sa.String(16), default="running")
    started_by: Mapped[str] = mapped_column(sa.String(16), default="cli")  # cli | clock | console
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # object -> {"phase", "gateway_seen", "crm_seen", "differences", "queued", "done"}
    progress: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # object -> {"phase", "after"}: where a resumed run starts again
    cursor: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # kind -> count
    error: Mapped[str | None] = mapped_column(sa.Text)


class ReconcileDifference(Base):
    __tablename__ = "reconcile_differences"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "key", name="uq_reconcile_differences_run_id_key"),
        sa.Index("ix_reconcile_differences_run_id_kind", "run_id", "kind", "id"),
        sa.Index("ix_reconcile_differences_run_id_object", "run_id", "object", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("reconcile_runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(200))
    object: Mapped[str] = mapped_column(sa.String(32))
    kind: Mapped[str] = mapped_column(sa.String(32))
    crm_id: Mapped[str | None] = mapped_column(sa.String(64))
    gateway_id: Mapped[str | None] = mapped_column(sa.String(64))
    field: Mapped[str | None] = mapped_column(sa.String(64))
    crm_value: Mapped[str | None] = mapped_column(sa.Text)
    gateway_value: Mapped[str | None] = mapped_column(sa.Text)
    repair: Mapped[str] = mapped_column(sa.String(32))  # the suggested repair's action
    safe: Mapped[bool] = mapped_column(sa.Boolean, default=False)  # --repair applies it
    repair_state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    note: Mapped[str | None] = mapped_column(sa.Text)
    found_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    repaired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReconcileStaging(Base):
    __tablename__ = "reconcile_staging"
    __table_args__ = (
        sa.Index("ix_reconcile_staging_run_id_object_crm_id", "run_id", "object", "crm_id"),
        sa.Index("ix_reconcile_staging_run_id_object_match_key", "run_id", "object",
                 "match_key"),
    )

    run_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("reconcile_runs.id", ondelete="CASCADE"),
        primary_key=True)
    object: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    crm_id: Mapped[str | None] = mapped_column(sa.String(64))  # its metadata.crm_id
    match_key: Mapped[str | None] = mapped_column(sa.String(320))  # e.g. a customer's e-mail
    # The mapped fields in gateway form (masked), the status, the parents' gateway ids.
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    seen: Mapped[bool] = mapped_column(sa.Boolean, default=False)  # a CRM record claimed it
