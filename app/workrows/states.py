"""The statuses of each row kind, the moves between them, and the one way to make a move.

Every status change of a work row goes through ``transition``: it checks the move against
``TRANSITIONS``, gives up the lease (the row is due again at ``at``), and appends the attempt
log. Admin moves also go through ``admin_transition``, which writes the audit entries.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app import audit
from app.clock import iso, utcnow
from app.redaction import redact
from app.retry import next_delay
from app.workrows.rows import (
    APPLIED,
    DISCARDED,
    DONE,
    FAILED,
    PARKED,
    PENDING,
    STALE,
    WorkRow,
)

MAX_LOG_ENTRIES = 50
MAX_ERROR_CHARS = 2000

# from -> the statuses it may move to. A row is born pending; DONE means deleted.
# pending -> pending is a retry, a wait or a release: the row stays queued.
TRANSITIONS: dict[str, dict[str, frozenset[str]]] = {
    "api": {
        PENDING: frozenset({PENDING, FAILED, DONE}),
        FAILED: frozenset({PENDING, DISCARDED}),  # reprocess (or edit), discard
        DISCARDED: frozenset(),
    },
    "webhook": {
        PENDING: frozenset({PENDING, PARKED, STALE, FAILED, APPLIED, DONE}),
        # A parked event is looked at again; healed, it is pending again.
        PARKED: frozenset({PENDING, PARKED, STALE, FAILED, APPLIED, DONE}),
        FAILED: frozenset({PENDING, DISCARDED}),
        STALE: frozenset(),  # kept visible, never applied
        APPLIED: frozenset({DONE}),  # kept for WEBHOOK_KEEP_APPLIED, then pruned
        DISCARDED: frozenset(),
    },
}
INITIAL = PENDING
# What an admin action is called in a row's attempt log.
ADMIN_OUTCOMES = {"discard": "discarded"}


class IllegalTransition(ValueError):
    """A move the row kind's table does not declare (a bug, or an admin acting on a row
    that is not in the state the action needs)."""


def allowed(kind: str, frm: str, to: str) -> bool:
    return to in TRANSITIONS[kind].get(frm, frozenset())


def check(row: WorkRow, to: str) -> None:
    if not allowed(row.kind, row.status, to):
        raise IllegalTransition(f"a {row.kind} row cannot move from {row.status} to {to}")


def transition(row: WorkRow, to: str, *, at: datetime | None = None,
               entry: dict[str, Any] | None = None, hold: bool = False) -> None:
    """Move ``row`` to ``to`` (checked), due again at ``at`` (now), lease given up; with
    ``hold`` the job keeps the row (it works on it again in the same run)."""
    check(row, to)
    if to != DONE:
        row.status = to
    if not hold:
        row.next_attempt_at = at or utcnow()
        row.lease_owner = row.lease_until = row.dispatched_at = row.job_id = None
    if entry is not None:
        log_attempt(row, entry)


def log_attempt(row: WorkRow, entry: dict[str, Any]) -> None:
    entry = {"at": iso(utcnow()), "attempt": row.attempts, **entry}
    if entry.get("error"):
        entry["error"] = redact(str(entry["error"]))[:MAX_ERROR_CHARS]
    row.error_log = [*(row.error_log or []), entry][-MAX_LOG_ENTRIES:]


def record_failure(row: WorkRow, *, stage: str, error: str, transient: bool,
                   schedule: Sequence[float], jitter: float, retry_after: float | None = None,
                   status: int | None = None, trace: str | None = None) -> str:
    """Count an attempt; schedule the retry or make the row Failed. Returns the outcome."""
    row.attempts += 1
    delay = next_delay(row.attempts, schedule, jitter=jitter,
                       retry_after=retry_after) if transient else None
    outcome = "retry" if delay is not None else "failed"
    entry: dict[str, Any] = {"stage": stage, "outcome": outcome, "error": error,
                             "status": status}
    if delay is not None:
        entry["retry_in_s"] = round(delay, 3)
    if trace:
        entry["traceback"] = redact(trace)[-MAX_ERROR_CHARS:]
    row.last_error = redact(error)[:MAX_ERROR_CHARS]
    if delay is None:
        transition(row, FAILED, entry=entry)
    else:
        transition(row, PENDING, at=utcnow() + timedelta(seconds=delay), entry=entry)
    return outcome


def record_exception(row: WorkRow, exc: BaseException, *, stage: str,
                     schedule: Sequence[float], jitter: float) -> str:
    """An unexpected exception at the job boundary: its type, message and traceback go on
    the row (redacted), the attempt counts, and the row retries until it is Failed."""
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return record_failure(row, stage=stage, error=f"internal error: {type(exc).__name__}: "
                          f"{exc}", transient=True, schedule=schedule, jitter=jitter,
                          trace=trace)


def record_wait(row: WorkRow, *, stage: str, reason: str, seconds: float) -> None:
    """Postpone without spending an attempt: the cause is elsewhere (a parent, a pause)."""
    last = (row.error_log or [{}])[-1]
    repeated = last.get("outcome") == "waiting" and last.get("error") == reason
    transition(row, row.status, at=utcnow() + timedelta(seconds=seconds),
               entry=None if repeated else {"stage": stage, "outcome": "waiting",
                                            "error": reason})


def admin_transition(session: Session, rows: Sequence[WorkRow], to: str, *, actor: str,
                     action: str, target_type: str, note: str | None = None) -> list[int]:
    """An admin's move of many rows: checked, logged on each row, audited in one insert.
    Rows not in a state the move starts from are left alone (not in the returned ids)."""
    moved: list[WorkRow] = []
    before = sorted({row.status for row in rows if allowed(row.kind, row.status, to)})
    outcome = ADMIN_OUTCOMES.get(action, action)
    for row in rows:
        if not allowed(row.kind, row.status, to):
            continue
        if to == PENDING:
            row.attempts = 0  # a fresh set of retries
        if to == DISCARDED:
            row.discard_reason = redact(note or "")[:MAX_ERROR_CHARS]
        transition(row, to, entry={"stage": "admin", "outcome": outcome, "error": None,
                                   "by": actor})
        moved.append(row)
    ids = [row.id for row in moved]  # type: ignore[attr-defined]
    audit.record_many(session, actor=actor, action=action, target_type=target_type,
                      target_ids=ids, before={"status": ", ".join(before)},
                      after={"status": to}, note=note)
    return ids
