"""POST /api/v1/queue and the admin queue-item endpoints, on the real database and Redis."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from rq import Queue

from app.background import API_QUEUE
from app.runtime import Runtime
from app.workrows.states import record_failure
from queues import service
from queues.models import FAILED, QueueItem
from tests.leases import held


def change(n: int = 1, **over: Any) -> dict[str, Any]:
    base = {"object": "Customer", "record_id": f"003TEST{n:011d}", "operation": "insert",
            "fields": {"FirstName": "Ada", "LastName": f"Test{n}", "Email": f"a{n}@example.com"}}
    base.update(over)
    return base


def row_count(rt: Runtime) -> int:
    with rt.db.transaction() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(QueueItem))


def test_accepts_a_batch_and_enqueues_ids_after_commit(client: FlaskClient, rt: Runtime,
                                                      trigger_headers: dict) -> None:
    rt.settings = replace(rt.settings, batch_size=50)  # JOB_BATCH_SIZE=50: several jobs
    resp = client.post("/api/v1/queue", json={"changes": [change(n) for n in range(120)]},
                       headers=trigger_headers)
    assert resp.status_code == 202
    items = resp.get_json()["items"]
    assert len(items) == 120 and len({i["id"] for i in items}) == 120
    assert row_count(rt) == 120
    jobs = Queue(API_QUEUE, connection=rt.redis).get_jobs()
    # 120 rows in jobs of 50 ids: three jobs, carrying ids only.
    assert sorted(len(j.args[0]) for j in jobs) == [20, 50, 50]
    assert {i for j in jobs for i in j.args[0]} == {i["id"] for i in items}


def test_bad_change_names_its_index_and_field_and_nothing_is_stored(
        client: FlaskClient, rt: Runtime, trigger_headers: dict) -> None:
    changes = [change(1), change(2, operation="upsert"), change(3)]
    resp = client.post("/api/v1/queue", json={"changes": changes}, headers=trigger_headers)
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert "changes[1].operation" in error["message"]
    assert "changes[1].operation" in error["details"]["fields"]
    assert row_count(rt) == 0


def test_a_nul_character_anywhere_is_refused_by_name_and_nothing_is_stored(
        client: FlaskClient, rt: Runtime, trigger_headers: dict, admin_headers: dict) -> None:
    # PostgreSQL cannot store NUL in text or JSONB: it must be a 400 naming the field, never
    # a 500 (the fuzzer found one in the console's bulk filters).
    changes = [change(1), change(2, fields={"FirstName": "A\x00a", "LastName": "B"})]
    resp = client.post("/api/v1/queue", json={"changes": changes}, headers=trigger_headers)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["message"].startswith("changes[1].fields.FirstName:")
    assert row_count(rt) == 0
    resp = client.get("/api/v1/queue?status=fail\x00ed", headers=admin_headers)
    assert resp.status_code == 400 and "status" in resp.get_json()["error"]["message"]
    resp = client.post("/api/v1/bulk-operations", headers=admin_headers,
                       json={"queue": "api", "action": "reprocess",
                             "filter": {"error": "time\x00out"}})
    assert resp.status_code == 400
    assert "filter.error" in resp.get_json()["error"]["details"]["fields"]


def test_unconvertible_values_are_refused_at_intake(client: FlaskClient, rt: Runtime,
                                                   trigger_headers: dict) -> None:
    bad = change(1, object="Payment", fields={"Mandate__c": "a0C1", "Amount__c": "ten"})
    resp = client.post("/api/v1/queue", json={"changes": [bad]}, headers=trigger_headers)
    assert resp.status_code == 400
    assert "changes[0].fields.Amount__c" in resp.get_json()["error"]["message"]


def test_batch_limits_and_malformed_bodies(client: FlaskClient, trigger_headers: dict) -> None:
    too_many = {"changes": [change(n) for n in range(201)]}
    assert client.post("/api/v1/queue", json=too_many, headers=trigger_headers).status_code == 400
    assert client.post("/api/v1/queue", json={"changes": []},
                       headers=trigger_headers).status_code == 400
    resp = client.post("/api/v1/queue", data="{not json", headers={
        **trigger_headers, "Content-Type": "application/json"})
    assert resp.status_code == 400 and "error" in resp.get_json()


def test_keys_are_required_and_roles_enforced(client: FlaskClient,
                                             trigger_headers: dict) -> None:
    body = {"changes": [change()]}
    assert client.post("/api/v1/queue", json=body).status_code == 401
    assert client.post("/api/v1/queue", json=body,
                       headers={"Authorization": "Bearer nope"}).status_code == 401
    resp = client.get("/api/v1/queue-items", headers=trigger_headers)
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "forbidden"


def test_bank_details_are_refused_while_the_setting_is_off(
        client: FlaskClient, rt: Runtime, trigger_headers: dict) -> None:
    bad = change(1, object="BankAccount", fields={
        "Contact__c": "003X", "Account_Holder_Name__c": "A", "Sort_Code__c": "200000",
        "Account_Number__c": "55779911"})
    resp = client.post("/api/v1/queue", json={"changes": [bad]}, headers=trigger_headers)
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "bank_details_not_allowed"
    assert "/api/v1/bank-accounts" in error["message"]
    assert "55779911" not in resp.get_data(as_text=True)
    assert row_count(rt) == 0


@pytest.mark.parametrize(("fields", "named"), [
    # Under another object's field whose name says bank details.
    ({"LastName": "L", "accountNumber": "55779911"}, "accountNumber"),
    ({"LastName": "L", "Bank_Sort_Code": "20-00-00"}, "Bank_Sort_Code"),
    # In free text: a sort code beside an account number, an IBAN, a keyed value.
    ({"LastName": "L", "Description": "pay from 20-00-00 55779911"}, "Description"),
    ({"LastName": "L", "Notes__c": "IBAN GB33 BUKB 2020 1555 5555 55"}, "Notes__c"),
    ({"LastName": "L", "Notes__c": "account_number=55779911"}, "Notes__c"),
    # Split over two fields of one change: a sort-code-like value and an account number.
    ({"LastName": "L", "Ref1__c": "200000", "Ref2__c": "55779911"}, "Ref1__c"),
])
def test_bank_details_under_any_name_are_refused_naming_the_field(
        client: FlaskClient, rt: Runtime, trigger_headers: dict, fields: dict,
        named: str) -> None:
    resp = client.post("/api/v1/queue", json={"changes": [change(1, fields=fields)]},
                       headers=trigger_headers)
    assert resp.status_code == 400, resp.get_json()
    error = resp.get_json()["error"]
    assert error["code"] == "bank_details_not_allowed"
    assert named in error["message"]
    body = resp.get_data(as_text=True)
    assert "55779911" not in body and "1555" not in body
    assert row_count(rt) == 0


def test_ordinary_values_that_contain_digits_are_not_bank_details(
        client: FlaskClient, rt: Runtime, trigger_headers: dict) -> None:
    fields = {"LastName": "L", "Phone": "+44 20 7946 0958", "MailingPostalCode": "SW1A 1AA",
              "MailingStreet": "10 Downing Street", "Email": "a1234567@example.com"}
    resp = client.post("/api/v1/queue", json={"changes": [change(1, fields=fields)]},
                       headers=trigger_headers)
    assert resp.status_code == 202, resp.get_json()


def _fail(rt: Runtime, item_id: int, error: str = "payments: amount must be positive") -> None:
    owner = "test-owner"
    assert service.claim(rt.db, [item_id], held(rt, owner, 30)) == [item_id]
    with rt.db.transaction() as session:
        item = service.load_owned(session, item_id, held(rt, owner))
        record_failure(item, stage="gateway", error=error, transient=False,
                               schedule=(1.0,), jitter=0)


def test_admin_lists_shows_reprocesses_and_discards(client: FlaskClient, rt: Runtime,
                                                   trigger_headers: dict,
                                                   admin_headers: dict) -> None:
    ids = [i["id"] for i in client.post("/api/v1/queue", json={
        "changes": [change(1), change(2)]}, headers=trigger_headers).get_json()["items"]]
    _fail(rt, ids[0])
    _fail(rt, ids[1])
    listed = client.get("/api/v1/queue-items?status=failed", headers=admin_headers).get_json()
    assert {i["id"] for i in listed["items"]} == set(ids)
    detail = client.get(f"/api/v1/queue-items/{ids[0]}", headers=admin_headers).get_json()
    assert detail["status"] == FAILED
    assert detail["error_log"][-1]["outcome"] == "failed"
    assert "amount must be positive" in detail["error_log"][-1]["error"]
    assert detail["fields"]["LastName"] == "Test1"

    resp = client.post(f"/api/v1/queue-items/{ids[0]}/reprocess", headers=admin_headers)
    assert resp.status_code == 200 and resp.get_json()["reprocessed"] == [ids[0]]
    assert service.get_item(rt.db, ids[0]).status == "pending"
    assert client.post(f"/api/v1/queue-items/{ids[0]}/reprocess",
                       headers=admin_headers).status_code == 404

    resp = client.post(f"/api/v1/queue-items/{ids[1]}/discard", json={"reason": ""},
                       headers=admin_headers)
    assert resp.status_code == 400 and "reason" in resp.get_json()["error"]["message"]
    resp = client.post(f"/api/v1/queue-items/{ids[1]}/discard",
                       json={"reason": "duplicate contact"}, headers=admin_headers)
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "discarded"
    assert resp.get_json()["discard_reason"] == "duplicate contact"


def test_bulk_reprocess_by_object(client: FlaskClient, rt: Runtime, trigger_headers: dict,
                                  admin_headers: dict) -> None:
    ids = [i["id"] for i in client.post("/api/v1/queue", json={
        "changes": [change(n) for n in range(5)]}, headers=trigger_headers).get_json()["items"]]
    for item_id in ids:
        _fail(rt, item_id)
    resp = client.post("/api/v1/queue-items/reprocess", json={"object": "Customer"},
                       headers=admin_headers)
    assert sorted(resp.get_json()["reprocessed"]) == sorted(ids)
    assert service.counts_by_status(rt.db) == {"pending": 5}


def test_openapi_document_lists_the_queue_endpoints(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/queue" in spec["paths"]
    assert "/api/v1/queue-items/{item_id}/reprocess" in spec["paths"]
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz").get_json()
    assert ready["checks"] == {"database": "ok", "redis": "ok"}


def test_api_answers_are_never_cached(client: FlaskClient, trigger_headers: dict) -> None:
    accepted = client.post("/api/v1/queue", json={"changes": [change(1)]},
                           headers=trigger_headers)
    refused = client.post("/api/v1/queue", json={"changes": [change(2, operation="upsert")]},
                          headers=trigger_headers)
    unauthenticated = client.post("/api/v1/queue", json={"changes": [change(3)]})
    for resp in (accepted, refused, unauthenticated):
        assert resp.headers["Cache-Control"] == "no-store", resp.status_code
    assert accepted.status_code == 202
    assert refused.status_code == 400 and unauthenticated.status_code == 401
