"""The job boundary: an exception nobody expected is recorded on the rows it hit.

Its type, message and traceback (redacted) go on each row the job still holds, the attempt
counts, and the row is retried on the schedule until it ends Failed for an admin. Without
this a bug or a malformed payload would be re-dispatched forever and never surface.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from app.db import Database
from app.workrows.leases import Lease, owned
from app.workrows.states import record_exception

log = logging.getLogger(__name__)


def fail_held(db: Database, model: Any, lease: Lease, exc: BaseException, *, stage: str,
              schedule: Sequence[float], jitter: float,
              ids: Sequence[int] | None = None,
              where: sa.ColumnElement[bool] | None = None) -> list[Any]:
    """Record ``exc`` on the rows of ``model`` still held under ``lease`` (only ``ids``, or
    those matching ``where``, when given). Returns the rows that became Failed. Never
    raises: when even this cannot be written (the database is down) the rows' leases
    expire and they are handed out again."""
    log.error("unexpected error at the job boundary", exc_info=exc,
              extra={"stage": stage, "token": lease.token})
    failed = []
    try:
        with db.transaction() as session:
            query = sa.select(model).where(owned(model.__table__, lease))
            if ids is not None:
                query = query.where(model.id.in_(list(ids)))
            if where is not None:
                query = query.where(where)
            for row in session.scalars(query):
                if record_exception(row, exc, stage=stage, schedule=schedule,
                                    jitter=jitter) == "failed":
                    failed.append(row)
    except Exception as again:  # noqa: BLE001 - the boundary itself must not throw
        log.error("could not record the error on the rows", extra={"error": str(again)})
    return failed
