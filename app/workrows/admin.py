"""Admin actions shared by both queues: reprocess, discard, counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from app.db import Database
from app.workrows.rows import DISCARDED, FAILED, PENDING, WorkRow
from app.workrows.states import IllegalTransition, admin_transition, check

R = TypeVar("R", bound=WorkRow)


def reprocess(db: Database, query: sa.Select[Any], *, actor: str, target_type: str) -> list[int]:
    """Failed rows (selected by ``query``) become due now, with a fresh set of retries."""
    with db.transaction() as session:
        rows = list(session.scalars(query.with_for_update()))
        return admin_transition(session, rows, PENDING, actor=actor, action="reprocess",
                                target_type=target_type)


def discard_one(db: Database, model: type[R], row_id: int, reason: str, actor: str,
                target_type: str) -> R | None:
    """Discard one Failed row, audited. Raises ``IllegalTransition`` when it is not Failed."""
    with db.transaction() as session:
        row = session.get(model, row_id, with_for_update=True)
        if row is not None:
            try:
                check(row, DISCARDED)
            except IllegalTransition as exc:
                raise IllegalTransition(
                    f"only Failed items can be discarded; this one is {row.status}") from exc
            admin_transition(session, [row], DISCARDED, actor=actor, action="discard",
                             target_type=target_type, note=reason)
        return row


def discard_many(db: Database, model: type[WorkRow], ids: Sequence[int], reason: str,
                 actor: str, target_type: str) -> list[int]:
    """Discard those of ``ids`` that are Failed, in one transaction (bulk operations)."""
    with db.transaction() as session:
        rows = list(session.scalars(sa.select(model).where(
            model.id.in_(list(ids)), model.status == FAILED)  # type: ignore[attr-defined]
            .with_for_update()))
        return admin_transition(session, rows, DISCARDED, actor=actor, action="discard",
                                target_type=target_type, note=reason)


def counts_by_status(db: Database, model: type[WorkRow]) -> dict[str, int]:
    with db.transaction() as session:
        rows = session.execute(sa.select(model.status, sa.func.count()).group_by(model.status))
        return {status: count for status, count in rows}
