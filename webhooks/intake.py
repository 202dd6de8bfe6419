"""Storing gateway events: every event of a batch in one transaction, duplicates ignored.

Nothing is applied here: the request only verifies, validates and stores, then hands ids to
jobs, so the gateway gets its answer in milliseconds even for a batch of 500 events.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.background import PROCESS_WEBHOOK_EVENTS, WEBHOOK_QUEUE, new_job_ids
from app.clock import utcnow
from app.db import Database
from app.records.models import StatusHistory
from app.redaction import redact_value
from app.runtime import Runtime
from app.workrows.dispatch import enqueue_marked
from webhooks.models import WebhookEvent


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
    """Store events (raw as received, redacted; parsed for the typed columns) with one
    statement, then hand the stored ones to jobs with one pipeline (after commit)."""
    delivery = uuid.uuid4().hex
    now = utcnow()
    rows: dict[str, dict[str, Any]] = {}
    for original, event in zip(raw, parsed, strict=True):
        if event["id"] not in rows:  # the first of repeated ids is kept, redacted once
            rows[event["id"]] = {
                "event_id": event["id"], "endpoint": endpoint, "delivery_id": delivery,
                "resource_type": event["resource_type"], "resource_id": resource_id(event),
                "action": event["action"], "event_time": event["created_at"],
                "payload": redact_value(original),
            }
    fresh = list(rows.values())
    _assign_jobs(rt, fresh)
    with rt.db.transaction() as session:
        stored = _store(session, rt.db, fresh, now)
    assignments: dict[str, list[int]] = {}
    for row_id, job_id in stored:
        if job_id:
            assignments.setdefault(job_id, []).append(row_id)
    enqueue_marked(rt.redis, assignments, queue=WEBHOOK_QUEUE, func=PROCESS_WEBHOOK_EVENTS,
                   timeout=rt.settings.job_timeout)
    return Ingested(stored=[i for i, _ in stored], duplicates=len(raw) - len(stored))


# PostgreSQL: the whole delivery is one short statement with one JSON parameter, so the
# driver parses and prepares it once per connection (a 100-row VALUES list is re-parsed by
# psycopg on every request: it was most of the insert's cost). Events applied before (and
# deleted: the status history remembers them) and events already stored are skipped.
_PG_STORE = sa.text("""
INSERT INTO webhook_events (event_id, endpoint, delivery_id, resource_type, resource_id,
    action, event_time, payload, stage, status, attempts, next_attempt_at, error_log,
    created_at, updated_at, job_id, dispatched_at)
SELECT r.event_id, r.endpoint, r.delivery_id, r.resource_type, r.resource_id, r.action,
    r.event_time, r.payload, 'new', 'pending', 0, :now, '[]'::jsonb, :now, :now, r.job_id,
    r.dispatched_at
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(event_id text, endpoint text,
    delivery_id text, resource_type text, resource_id text, action text,
    event_time timestamptz, payload jsonb, job_id text, dispatched_at timestamptz)
WHERE NOT EXISTS (SELECT 1 FROM status_history h WHERE h.event_id = r.event_id)
ON CONFLICT (event_id) DO NOTHING
RETURNING id, job_id
""")


def _store(session: Session, db: Database, rows: list[dict[str, Any]],
           now: datetime) -> list[tuple[int, str | None]]:
    """Insert the delivery's new events in the caller's transaction; (id, job id) of each
    row stored."""
    if not rows:
        return []
    if db.dialect == "postgresql":
        document = _ENCODER.encode([_json_row(r) for r in rows]).decode()
        return [(r[0], r[1]) for r in session.execute(_PG_STORE,
                                                       {"rows": document, "now": now})]
    # SQLite (the embedded default): the same rule in two statements.
    seen = set(session.scalars(sa.select(StatusHistory.event_id).where(
        StatusHistory.event_id.in_([r["event_id"] for r in rows]))))
    fresh = [{**r, "stage": "new", "status": "pending", "attempts": 0, "next_attempt_at": now,
              "error_log": [], "created_at": now, "updated_at": now}
             for r in rows if r["event_id"] not in seen]
    if not fresh:
        return []
    table = WebhookEvent.__table__
    stmt = db.insert(table).on_conflict_do_nothing(index_elements=["event_id"])
    return [(r[0], r[1]) for r in session.execute(stmt.returning(table.c.id, table.c.job_id),
                                                  fresh)]


# msgspec writes the delivery's document ~10x faster than json.dumps (0.07 against 0.7 ms
# for 100 events).
_ENCODER = msgspec.json.Encoder()


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its times as ISO text: msgspec's own datetime form drops the seconds of
    a UTC offset ("+01:00:30"), which would move an event in time."""
    sent = row["dispatched_at"]
    return {**row, "event_time": row["event_time"].isoformat(),
            "dispatched_at": sent.isoformat() if sent is not None else None}


def _assign_jobs(rt: Runtime, rows: list[dict[str, Any]]) -> None:
    """Stamp rows with their job in the same insert: no moment where the dispatcher could
    think them unassigned. Scheduled mode leaves them to the clock's sweep."""
    mode = rt.settings.webhook_mode
    if mode == "scheduled":
        for row in rows:
            row["job_id"] = row["dispatched_at"] = None
        return
    groups = ([[row] for row in rows] if mode == "event"
              else _jobs_by_resource(rows, rt.settings.batch_size))
    now = utcnow()
    for job_id, group in zip(new_job_ids(len(groups), 1), groups, strict=True):
        for row in group:
            row["job_id"] = job_id
            row["dispatched_at"] = now


def _jobs_by_resource(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    """Rows packed into jobs of at most ``size`` rows, every resource's rows in one job:
    two jobs of one delivery would otherwise contend for that resource's lease, and the
    loser would wait out the winner. A resource with more than ``size`` events of its own
    still gets a single job (its events are applied in order by one holder anyway)."""
    by_resource: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for row in rows:
        by_resource.setdefault((row["resource_type"], row["resource_id"]), []).append(row)
    jobs: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for group in by_resource.values():
        if current and len(current) + len(group) > size:
            jobs.append(current)
            current = []
        current.extend(group)
    if current:
        jobs.append(current)
    return jobs
