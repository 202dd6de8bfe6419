"""Helpers of the console tests: users, a client that signs in like a person, seed rows."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.auth import create_key
from app.clock import utcnow
from app.runtime import Runtime
from app.users import User, create_user
from queues.models import FAILED, QueueItem
from webhooks.models import WebhookEvent

PASSWORD = "correct horse battery"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Console:
    """A test client that signs in like a person and sends the form's CSRF token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token = ""

    def sign_in(self, name: str, password: str = PASSWORD) -> TestResponse:
        page = self.client.get("/login")
        self.token = TOKEN.search(page.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
        resp = self.client.post("/login", data={"name": name, "password": password,
                                                "csrf_token": self.token})
        if resp.status_code == 302:
            home = self.client.get("/")
            self.token = TOKEN.search(home.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
        return resp

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> TestResponse:
        return self.client.post(path, data={**(data or {}), "csrf_token": self.token}, **kw)


def users(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        if session.scalar(sa.select(User.id).where(User.name == "alice")) is None:
            create_user(session, "alice", "admin", PASSWORD)
            create_user(session, "otto", "operations", PASSWORD)


def key(rt: Runtime, role: str, name: str | None = None) -> dict[str, str]:
    with rt.db.transaction() as session:
        secret = create_key(session, name or f"key-{role}", role)[1]
    return {"Authorization": f"Bearer {secret}"}


def failed_item(rt: Runtime, n: int = 1, *, obj: str = "Customer",
                error: str = "POST /customers: Validation failed; email: is not a valid email",
                fields: dict[str, Any] | None = None, age_days: float = 0) -> int:
    created = utcnow() - timedelta(days=age_days)
    with rt.db.transaction() as session:
        item = QueueItem(object=obj, record_id=f"003FAIL{n:010d}", operation="insert",
                         fields=fields or {"FirstName": "Ada", "LastName": f"L{n}",
                                           "Email": "ada.example.com"},
                         previous_fields=None, status=FAILED, idempotency_key=f"pb-test-{n}",
                         attempts=1, error_log=[{"at": "2026-01-01T00:00:00Z", "attempt": 1,
                                                 "stage": "gateway", "outcome": "failed",
                                                 "error": error, "status": 422}],
                         last_error=error, created_at=created, next_attempt_at=created)
        session.add(item)
        session.flush()
        return item.id


def failed_event(rt: Runtime, n: int = 1, *, resource_type: str = "payments",
                 error: str = "illegal transition") -> int:
    now = utcnow()
    with rt.db.transaction() as session:
        row = WebhookEvent(event_id=f"EV{n:08d}", endpoint="gocardless", delivery_id="d1",
                           resource_type=resource_type, resource_id=f"PM{n:06d}",
                           action="confirmed", event_time=now, payload={"id": f"EV{n:08d}"},
                           status=FAILED, attempts=1, error_log=[], last_error=error,
                           next_attempt_at=now)
        session.add(row)
        session.flush()
        return row.id
