"""The admin actions, through the JSON API and the console pages: same services, same audit
log, both roles."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient
from rq import SimpleWorker

from app.audit import AuditEntry
from app.background import ADMIN_QUEUE
from app.runtime import Runtime
from queues.models import QueueItem
from tests.integration.console.support import (
    Console,
    failed_event,
    failed_item,
    key,
)
from webhooks.models import WebhookEvent
from workers.context import set_runtime


def audit_rows(rt: Runtime, **where: Any) -> list[AuditEntry]:
    with rt.db.transaction() as session:
        query = sa.select(AuditEntry).order_by(AuditEntry.id)
        for name, value in where.items():
            query = query.where(getattr(AuditEntry, name) == value)
        return list(session.scalars(query))


def status_of(rt: Runtime, model: Any, row_id: int) -> str:
    with rt.db.transaction() as session:
        return str(session.get(model, row_id).status)


def test_operations_keys_read_and_cannot_act(client: FlaskClient, rt: Runtime) -> None:
    item_id, event_id = failed_item(rt), failed_event(rt)
    ops = key(rt, "operations")
    for path in ("/api/v1/queue-items?status=failed", f"/api/v1/queue-items/{item_id}",
                 "/api/v1/webhook-events?status=failed", f"/api/v1/webhook-events/{event_id}",
                 "/api/v1/dashboard", "/api/v1/audit-log", "/api/v1/bulk-operations",
                 "/api/v1/history?q=x", "/api/v1/alerts"):
        assert client.get(path, headers=ops).status_code == 200, path
    for method, path, body in (
            ("POST", f"/api/v1/queue-items/{item_id}/reprocess", None),
            ("POST", f"/api/v1/queue-items/{item_id}/discard", {"reason": "x"}),
            ("PATCH", f"/api/v1/queue-items/{item_id}", {"fields": {}}),
            ("POST", "/api/v1/queue-items/reprocess", {}),
            ("POST", f"/api/v1/webhook-events/{event_id}/reprocess", None),
            ("POST", f"/api/v1/webhook-events/{event_id}/discard", {"reason": "x"}),
            ("POST", "/api/v1/bulk-operations", {"queue": "api", "action": "reprocess"}),
            ("POST", "/api/v1/api-keys", {"name": "x", "role": "admin"}),
            ("POST", "/api/v1/api-keys/1/revoke", None),
            ("GET", "/api/v1/api-keys", None), ("GET", "/api/v1/webhook-secrets", None)):
        resp = client.open(path, method=method, json=body, headers=ops)
        assert resp.status_code == 403, (method, path, resp.status_code)
    assert status_of(rt, QueueItem, item_id) == "failed"
    assert audit_rows(rt) == []


def test_api_reprocess_and_discard_are_audited_with_the_key_name(client: FlaskClient,
                                                                 rt: Runtime) -> None:
    admin = key(rt, "admin", "ops-script")
    first, second = failed_item(rt, 1), failed_item(rt, 2)
    event_id = failed_event(rt)
    assert client.post(f"/api/v1/queue-items/{first}/reprocess", headers=admin).status_code == 200
    resp = client.post(f"/api/v1/queue-items/{second}/discard", json={"reason": "duplicate"},
                       headers=admin)
    assert resp.status_code == 200 and resp.get_json()["status"] == "discarded"
    assert client.post(f"/api/v1/webhook-events/{event_id}/reprocess",
                       headers=admin).status_code == 200
    entries = [(e.actor, e.action, e.target_type, e.target_id, e.before, e.after, e.note)
               for e in audit_rows(rt)]
    assert entries == [
        ("ops-script", "reprocess", "queue_item", str(first), {"status": "failed"},
         {"status": "pending"}, None),
        ("ops-script", "discard", "queue_item", str(second), {"status": "failed"},
         {"status": "discarded"}, "duplicate"),
        ("ops-script", "reprocess", "webhook_event", str(event_id), {"status": "failed"},
         {"status": "pending"}, None)]
    listed = client.get(f"/api/v1/audit-log?target_type=queue_item&target_id={second}",
                        headers=admin).get_json()["items"]
    assert [e["action"] for e in listed] == ["discard"]


def test_api_edit_validates_like_intake_and_audits_before_and_after(client: FlaskClient,
                                                                   rt: Runtime) -> None:
    admin = key(rt, "admin", "fixer")
    item_id = failed_item(rt, obj="Payment", fields={"Mandate__c": "a0M1", "Amount__c": "ten"})
    bad = client.patch(f"/api/v1/queue-items/{item_id}", headers=admin,
                       json={"fields": {"Mandate__c": "a0M1", "Amount__c": "ten"}})
    assert bad.status_code == 400
    assert "fields.Amount__c" in bad.get_json()["error"]["message"]
    good = client.patch(f"/api/v1/queue-items/{item_id}", headers=admin,
                        json={"fields": {"Mandate__c": "a0M1", "Amount__c": "10.50"}})
    assert good.status_code == 200 and good.get_json()["status"] == "pending"
    edit = audit_rows(rt, action="edit")[0]
    assert edit.actor == "fixer" and edit.before["fields"]["Amount__c"] == "ten"
    assert edit.after["fields"]["Amount__c"] == "10.50"
    again = client.patch(f"/api/v1/queue-items/{item_id}", headers=admin,
                         json={"fields": {"Mandate__c": "a0M1", "Amount__c": "11"}})
    assert again.status_code == 400 and again.get_json()["error"]["code"] == "invalid_state"


def test_an_edit_cannot_smuggle_bank_details_in(client: FlaskClient, rt: Runtime) -> None:
    admin = key(rt, "admin")
    item_id = failed_item(rt, obj="BankAccount", fields={"Contact__c": "003A",
                                                         "Account_Holder_Name__c": "A"})
    resp = client.patch(f"/api/v1/queue-items/{item_id}", headers=admin, json={"fields": {
        "Contact__c": "003A", "Account_Holder_Name__c": "A", "Sort_Code__c": "200000",
        "Account_Number__c": "55779911"}})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "bank_details_not_allowed"
    with rt.db.transaction() as session:
        assert "Sort_Code__c" not in session.get(QueueItem, item_id).fields


def test_console_edit_reprocess_and_discard(admin_console: Console, rt: Runtime) -> None:
    item_id = failed_item(rt)
    page = admin_console.get(f"/items/{item_id}").get_data(as_text=True)
    assert "ada.example.com" in page and "is not a valid email" in page
    broken = admin_console.post(f"/items/{item_id}/edit", {"fields": "{not json"})
    assert broken.status_code == 400 and b"not valid JSON" in broken.data
    fixed = {"FirstName": "Ada", "LastName": "L1", "Email": "ada@example.com"}
    resp = admin_console.post(f"/items/{item_id}/edit", {"fields": json.dumps(fixed)})
    assert resp.status_code == 302
    with rt.db.transaction() as session:
        item = session.get(QueueItem, item_id)
        assert item.status == "pending" and item.fields["Email"] == "ada@example.com"
    assert [e.actor for e in audit_rows(rt, action="edit")] == ["alice"]
    other = failed_item(rt, 2)
    assert admin_console.post(f"/items/{other}/discard", {"reason": ""}).status_code == 302
    assert status_of(rt, QueueItem, other) == "failed"
    admin_console.post(f"/items/{other}/discard", {"reason": "customer left"})
    assert status_of(rt, QueueItem, other) == "discarded"
    event_id = failed_event(rt)
    admin_console.post(f"/events/{event_id}/discard", {"reason": "test event"})
    assert status_of(rt, WebhookEvent, event_id) == "discarded"
    log = admin_console.get("/audit?actor=alice").get_data(as_text=True)
    assert "customer left" in log and "edit" in log


def run_admin_jobs(rt: Runtime) -> None:
    from rq import Queue

    set_runtime(rt)
    SimpleWorker([Queue(ADMIN_QUEUE, connection=rt.redis)], connection=rt.redis).work(
        burst=True)


def test_bulk_reprocess_through_the_api_runs_as_a_job_with_progress(client: FlaskClient,
                                                                    rt: Runtime) -> None:
    admin = key(rt, "admin", "bulk-script")
    matching = [failed_item(rt, n, error="timeout talking to the gateway") for n in range(1, 31)]
    other = failed_item(rt, 99, error="validation failed")
    resp = client.post("/api/v1/bulk-operations", headers=admin, json={
        "queue": "api", "action": "reprocess", "filter": {"error": "TIMEOUT"}})
    assert resp.status_code == 202
    op = resp.get_json()
    assert op["total"] == 30 and op["status"] == "queued"
    run_admin_jobs(rt)
    done = client.get(f"/api/v1/bulk-operations/{op['id']}", headers=admin).get_json()
    assert (done["status"], done["processed"], done["changed"]) == ("done", 30, 30)
    assert {status_of(rt, QueueItem, i) for i in matching} == {"pending"}
    assert status_of(rt, QueueItem, other) == "failed"
    actors = {e.actor for e in audit_rows(rt, action="reprocess")}
    assert actors == {f"bulk-script (bulk #{op['id']})"}
    assert len(audit_rows(rt, action="reprocess")) == 30
    assert len(audit_rows(rt, action="bulk_reprocess")) == 1


def test_bulk_discard_needs_a_reason_and_works_from_the_console(admin_console: Console,
                                                                rt: Runtime) -> None:
    events = [failed_event(rt, n) for n in range(1, 6)]
    refused = admin_console.post("/bulk", {"queue": "webhook", "action": "discard"})
    assert refused.status_code == 302
    listing = admin_console.get("/bulk").get_data(as_text=True)
    assert "a discard needs a reason" in listing and "None yet." in listing
    resp = admin_console.post("/bulk", {"queue": "webhook", "action": "discard",
                                        "reason": "test events", "kind": "payments"})
    assert resp.status_code == 302 and "/bulk/" in resp.headers["Location"]
    run_admin_jobs(rt)
    progress = admin_console.get(resp.headers["Location"] + "/progress").get_json()
    assert (progress["status"], progress["changed"]) == ("done", 5)
    assert {status_of(rt, WebhookEvent, e) for e in events} == {"discarded"}


def test_api_keys_are_shown_once_revoked_and_audited(client: FlaskClient,
                                                     admin_console: Console,
                                                     rt: Runtime) -> None:
    admin = key(rt, "admin", "root-script")
    made = client.post("/api/v1/api-keys", headers=admin, json={"name": "crm", "role": "trigger"})
    assert made.status_code == 201
    secret = made.get_json()["key"]
    listed = client.get("/api/v1/api-keys", headers=admin).get_data(as_text=True)
    assert secret not in listed and "crm" in listed
    page = admin_console.post("/keys", {"name": "console-made", "role": "operations"})
    text = page.get_data(as_text=True)
    assert "not shown again" in text and "pb_operations_" in text
    assert "pb_operations_" not in admin_console.get("/keys").get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    revoked = client.post(f"/api/v1/api-keys/{made.get_json()['id']}/revoke", headers=admin)
    assert revoked.status_code == 200
    assert client.post("/api/v1/queue", json={"changes": []},
                       headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    actions = [(e.actor, e.action) for e in audit_rows(rt, target_type="api_key")]
    assert actions == [("root-script", "create_api_key"), ("alice", "create_api_key"),
                       ("root-script", "revoke_api_key")]


def test_webhook_secrets_say_configured_never_their_value(client: FlaskClient,
                                                         admin_console: Console,
                                                         rt: Runtime) -> None:
    body = client.get("/api/v1/webhook-secrets", headers=key(rt, "admin")).get_data(as_text=True)
    page = admin_console.get("/keys").get_data(as_text=True)
    for text in (body, page):
        assert rt.settings.webhook_secret not in text
        assert "GOCARDLESS_WEBHOOK_SECRET_PREVIOUS" in text
    assert json.loads(body)["items"][0]["configured"] is True
