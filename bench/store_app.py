"""The storage ceiling for webhook intake: a bare WSGI app that checks a batch's signature
(the same function and secrets Paybridge uses), parses it and stores every event with one
multi-row insert, duplicates ignored, then answers 204 — no framework, no ORM, no schema
validation, no Redis. It runs under the same gunicorn settings as Paybridge's web process
(``gunicorn bench.store_app:app``) and writes to ``bench_intake``, a copy of
``webhook_events`` with the same columns, indexes and unique event id (``create_table``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.types.json import Jsonb

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


def _store(events: list[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    delivery, job = uuid.uuid4().hex, f"pb-{uuid.uuid4().hex}"
    params: list[Any] = []
    for e in events:
        kind = str(e["resource_type"])
        links = e.get("links") or {}
        params += [e["id"], "gocardless", delivery, kind, links.get(kind.rstrip("s")),
                   e["action"], e["created_at"], Jsonb(e), "new", "pending", 0, now,
                   Jsonb([]), now, now, job, now]
    row = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
    sql = (f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES "  # noqa: S608 - fixed names
           + ", ".join([row] * len(events)) + " ON CONFLICT (event_id) DO NOTHING")
    conn = _db()
    with conn.transaction():
        conn.execute(sql, params)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    if environ.get("PATH_INFO") == "/":
        start_response("200 OK", [])
        return [b""]
    if not verify(body, environ.get("HTTP_WEBHOOK_SIGNATURE"), _secrets):
        start_response("498 Invalid Signature", [("Content-Type", "text/plain")])
        return [b""]
    _store(json.loads(body)["events"])
    start_response("204 No Content", [])
    return [b""]
