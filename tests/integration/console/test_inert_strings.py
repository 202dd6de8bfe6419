"""SQL-like and script-like strings are stored as data and shown as text, never run."""

from __future__ import annotations

import sqlalchemy as sa
from flask.testing import FlaskClient

from app.runtime import Runtime
from app.workrows.states import record_failure
from queues import service
from queues.models import QueueItem
from tests.integration.console.support import Console
from tests.leases import held

HOSTILE = {
    "LastName": "Robert'); DROP TABLE api_queue_items;--",
    "FirstName": "<script>alert('x')</script>",
    "Email": "\" onmouseover=\"alert(1)@example.com",
}


def test_hostile_strings_round_trip_exactly_and_render_escaped(
        admin_console: Console, client: FlaskClient, rt: Runtime,
        trigger_headers: dict[str, str], admin_headers: dict[str, str]) -> None:
    resp = client.post("/api/v1/queue", headers=trigger_headers, json={"changes": [{
        "object": "Customer", "record_id": "003HOSTILE", "operation": "insert",
        "fields": HOSTILE}]})
    assert resp.status_code == 202
    item_id = resp.get_json()["items"][0]["id"]
    assert service.claim(rt.db, [item_id], held(rt, "w", 30)) == [item_id]
    with rt.db.transaction() as session:
        item = service.load_owned(session, item_id, held(rt, "w"))
        record_failure(item, stage="gateway", transient=False, schedule=(),
                               jitter=0, error=f"rejected {HOSTILE['FirstName']}")

    detail = client.get(f"/api/v1/queue-items/{item_id}", headers=admin_headers).get_json()
    assert detail["fields"] == HOSTILE  # stored and returned exactly, as data
    with rt.db.transaction() as session:  # the table is still there, the row intact
        assert session.scalar(sa.select(sa.func.count()).select_from(QueueItem)) == 1

    page = admin_console.get(f"/items/{item_id}").get_data(as_text=True)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page
    listing = admin_console.get("/items", query_string={
        "status": "failed", "q": "'; DROP TABLE api_queue_items;--"})
    assert listing.status_code == 200
    filtered = client.get("/api/v1/queue-items", headers=admin_headers, query_string={
        "record_id": "003HOSTILE' OR '1'='1"}).get_json()
    assert filtered["items"] == []  # a filter value is a value, not SQL
