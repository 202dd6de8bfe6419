"""Storing gateway events: every event of a batch in one transaction, duplicates ignored.

Nothing is applied here: the request only verifies, validates and stores, then hands ids to
jobs, so the gateway gets its answer in milliseconds even for a batch of 500 events.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app.background import PROCESS_WEBHOOK_EVENTS, WEBHOOK_QUEUE, new_job_ids
from app.clock import utcnow
from app.records.models import StatusHistory
from app.redaction import redact_value
from app.runtime import Runtime
from app.workrows.dispatch import enqueue_marked
from webhooks.models import WebhookEvent

SINGLE_EVENT_JOB = 1


def resource_id(event: dict[str, Any]) -> str | None:
    """GoCardless links an event to its resource under the singular name ("payment")."""
    links = event.get("links") or {}
    name = str(event.get("resource_type", ""))
    return links.get(name[:-1] if name.endswith("s") else name)


@dataclass(frozen=True)
class Ingested:
    stored: list[int]
    duplicates: int


def ingest(rt: Runtime, endpoint: str, raw: Sequence[dict[str, Any]],
           parsed: Sequence[dict[str, Any]]) -> Ingested:
    """Store events (raw as received, redacted; parsed for the typed columns)."""
    delivery = uuid.uuid4().hex
    now = utcnow()
    rows: dict[str, dict[str, Any]] = {}
    for original, event in zip(raw, parsed, strict=True):
        rows.setdefault(event["id"], {
            "event_id": event["id"], "endpoint": endpoint, "delivery_id": delivery,
            "resource_type": event["resource_type"], "resource_id": resource_id(event),
            "action": event["action"], "event_time": event["created_at"],
            "payload": redact_value(original), "stage": "new", "status": "pending",
            "attempts": 0, "next_attempt_at": now, "error_log": [], "created_at": now,
            "updated_at": now,
        })
    table = WebhookEvent.__table__
    with rt.db.transaction() as session:
        # An event applied (and deleted) before is remembered by the status history.
        seen = set(session.scalars(sa.select(StatusHistory.event_id).where(
            StatusHistory.event_id.in_(list(rows)))))
        fresh = [row for key, row in rows.items() if key not in seen]
        _assign_jobs(rt, fresh)
        stored: list[tuple[int, str | None]] = []
        if fresh:
            stmt = rt.db.insert(table).on_conflict_do_nothing(index_elements=["event_id"])
            stored = [(r[0], r[1]) for r in session.execute(
                stmt.returning(table.c.id, table.c.job_id), fresh)]
    assignments: dict[str, list[int]] = {}
    for row_id, job_id in stored:
        if job_id:
            assignments.setdefault(job_id, []).append(row_id)
    enqueue_marked(rt.redis, assignments, queue=WEBHOOK_QUEUE, func=PROCESS_WEBHOOK_EVENTS,
                   timeout=rt.settings.job_timeout)
    return Ingested(stored=[i for i, _ in stored], duplicates=len(raw) - len(stored))


def _assign_jobs(rt: Runtime, rows: list[dict[str, Any]]) -> None:
    """Stamp rows with their job in the same insert: no moment where the dispatcher could
    think them unassigned. Scheduled mode leaves them to the clock's sweep."""
    mode = rt.settings.webhook_mode
    size = SINGLE_EVENT_JOB if mode == "event" else max(1, len(rows))
    job_ids = new_job_ids(len(rows), size) if mode != "scheduled" else []
    now = utcnow()
    for index, row in enumerate(rows):
        row["job_id"] = job_ids[index // size] if job_ids else None
        row["dispatched_at"] = now if job_ids else None
