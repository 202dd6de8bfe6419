"""The storage ceiling for webhook intake: a bare WSGI app that checks a batch's signature
(the same function and secrets Paybridge uses) and stores every event with one multi-row
insert, duplicates ignored, then answers 204 — no framework, no ORM, no schema validation,
no redaction, no Redis. It runs under the same gunicorn settings as Paybridge's web process
(``gunicorn bench.store_app:app``) and writes to ``bench_intake``, a copy of
``webhook_events`` with the same columns, indexes and unique event id (``create_table``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import psycopg
import sqlalchemy as sa

from app.config import Settings
from webhooks.signature import verify

TABLE = "bench_intake"
COLUMNS = ("event_id", "endpoint", "delivery_id", "resource_type", "resource_id", "action",
           "event_time", "payload", "stage", "status", "attempts", "next_attempt_at",
           "error_log", "created_at", "updated_at", "job_id", "dispatched_at")
_settings = Settings.from_env()
_secrets = [_settings.webhook_secret, _settings.webhook_secret_previous]
_connection: psycopg.Connection[Any] | None = None  # one per gunicorn worker, made after fork


def create_table(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
        conn.execute(sa.text(f"CREATE TABLE {TABLE} (LIKE webhook_events INCLUDING ALL)"))


def drop_table(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))


def _db() -> psycopg.Connection[Any]:
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(os.environ["DATABASE_URL"])
    return _connection


# The cheapest durable store we know: the body's events array is the statement's one
# parameter and PostgreSQL unpacks it (a short statement the driver parses and prepares
# once; a VALUES list of 100 rows would be re-parsed on every request).
_SQL = f"""
INSERT INTO {TABLE} ({", ".join(COLUMNS)})
SELECT e->>'id', 'gocardless', %(delivery)s, e->>'resource_type',
    e->'links'->>rtrim(e->>'resource_type', 's'), e->>'action',
    (e->>'created_at')::timestamptz, e, 'new', 'pending', 0, %(now)s, '[]'::jsonb,
    %(now)s, %(now)s, %(job)s, %(now)s
FROM jsonb_array_elements(%(body)s::jsonb -> 'events') AS e
ON CONFLICT (event_id) DO NOTHING
"""  # noqa: S608 - fixed names; every value is a parameter


def _store(body: bytes) -> None:
    now = datetime.now(UTC)
    conn = _db()
    with conn.transaction():
        conn.execute(_SQL, {"body": body.decode(), "now": now, "delivery": uuid.uuid4().hex,
                            "job": f"pb-{uuid.uuid4().hex}"})


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    if environ.get("PATH_INFO") == "/":
        start_response("200 OK", [])
        return [b""]
    if not verify(body, environ.get("HTTP_WEBHOOK_SIGNATURE"), _secrets):
        start_response("498 Invalid Signature", [("Content-Type", "text/plain")])
        return [b""]
    _store(body)  # PostgreSQL parses it
    start_response("204 No Content", [])
    return [b""]
