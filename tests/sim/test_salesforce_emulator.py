"""The Salesforce org emulator, driven by the real simple-salesforce client over TLS."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest
import requests
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from sim.salesforce import SimConfig, start_in_thread
from sim.salesforce.__main__ import parse_args
from sim.salesforce.schema import checksum_suffix, normalize_id

CLIENT = {"client_id": "paybridge", "client_secret": "paybridge-dev-secret"}
USER = {"username": "demo@example.com", "password": "demo"}
TRIGGER_KEY = "trigger-secret"
# A public CA bundle that does not hold the emulator's CA, as on this machine's environment.
SYSTEM_BUNDLE = (
    "/etc/ssl/certs/ca-certificates.crt"
    if Path("/etc/ssl/certs/ca-certificates.crt").exists()
    else certifi.where()
)


class Receiver:
    """Stands in for Paybridge's queue endpoint; answers 503 to the first ``fail_next``."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_next = 0
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/api/v1/queue"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _app(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return Response("not up yet", status=503)(environ, start_response)
            self.calls.append(
                {"auth": request.headers.get("Authorization"), "body": request.get_json()}
            )
        return Response(json.dumps({"queued": True}), status=202)(environ, start_response)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.fail_next = 0

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.stop()


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[str, str]]:
    config = SimConfig(port=0, trigger_backoff=0.05, trigger_backoff_max=0.2)
    base_url, ca_path, stop = start_in_thread(config)
    yield base_url, ca_path
    stop()


@pytest.fixture(autouse=True)
def ca_bundle_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Like this machine: the env points requests at the system bundle, which lacks our CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_BUNDLE)
    monkeypatch.setenv("CURL_CA_BUNDLE", SYSTEM_BUNDLE)


@pytest.fixture
def http(sim: tuple[str, str], receiver: Receiver) -> Iterator[requests.Session]:
    """A session trusting the emulator's CA, with the org reset and the trigger aimed at
    the receiver."""
    session = requests.Session()
    session.trust_env = False
    session.verify = sim[1]
    base = sim[0]
    session.post(f"{base}/sim/reset").raise_for_status()
    session.post(f"{base}/sim/trigger", json={"url": receiver.url, "api_key": TRIGGER_KEY})
    receiver.reset()
    yield session
    session.close()


@pytest.fixture
def base(sim: tuple[str, str]) -> str:
    return sim[0]


def login(http: requests.Session, base: str, grant: str) -> dict[str, Any]:
    form = {"grant_type": grant, **(CLIENT if grant == "client_credentials" else USER)}
    response = http.post(f"{base}/services/oauth2/token", data=form)
    assert response.status_code == 200, response.text
    return response.json()


def client(http: requests.Session, base: str, grant: str) -> Salesforce:
    token = login(http, base, grant)
    return Salesforce(
        instance_url=token["instance_url"], session_id=token["access_token"],
        session=http, version="59.0",
    )


@pytest.fixture
def sf(http: requests.Session, base: str) -> Salesforce:
    """The integration user (client credentials): Paybridge itself."""
    return client(http, base, "client_credentials")


@pytest.fixture
def sf_user(http: requests.Session, base: str) -> Salesforce:
    """A regular user (password grant): a person working in the CRM."""
    return client(http, base, "password")


def wait_trigger(http: requests.Session, base: str) -> dict[str, Any]:
    response = http.post(f"{base}/sim/trigger/wait", json={"timeout": 10})
    assert response.status_code == 200, response.text
    return http.get(f"{base}/sim/trigger-log").json()


def error_of(exc: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    return exc.value.content[0]  # type: ignore[no-any-return]


# -- OAuth and TLS ----------------------------------------------------------------------------


def test_oauth_grants_and_bad_credentials(http: requests.Session, base: str) -> None:
    for grant in ("client_credentials", "password"):
        token = login(http, base, grant)
        assert token["instance_url"] == base
        assert token["token_type"] == "Bearer"
        assert {"access_token", "id", "issued_at", "signature"} <= token.keys()
    url = f"{base}/services/oauth2/token"
    bad = [
        {"grant_type": "client_credentials", "client_id": "paybridge", "client_secret": "x"},
        {"grant_type": "password", "username": "demo@example.com", "password": "wrong"},
        {"grant_type": "password", "username": "nobody@example.com", "password": "demo"},
    ]
    for form in bad:
        response = http.post(url, data=form)
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_grant", "error_description": "authentication failure"
        }


def test_env_ca_bundle_would_override_session_verify(sim: tuple[str, str]) -> None:
    base, ca_path = sim
    trusting_env = requests.Session()
    trusting_env.verify = ca_path
    with pytest.raises(requests.exceptions.SSLError):
        trusting_env.get(f"{base}/sim/health")
    blind = requests.Session()
    blind.trust_env = False
    blind.verify = ca_path
    assert blind.get(f"{base}/sim/health").json() == {"ok": True}


def test_data_calls_need_a_live_token(http: requests.Session, base: str) -> None:
    response = http.get(f"{base}/services/data/v59.0/limits",
                        headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    assert http.get(f"{base}/services/data/").status_code == 200  # versions need no token


# -- single records -------------------------------------------------------------------------------


def test_crud_through_simple_salesforce(sf: Salesforce) -> None:
    created = sf.Contact.create({"FirstName": "Ada", "LastName": "Lovelace", "Email": "a@x.org"})
    assert created["success"] is True and created["errors"] == []
    contact_id = created["id"]
    assert len(contact_id) == 18 and contact_id.startswith("003")
    record = sf.Contact.get(contact_id)
    assert record["attributes"]["type"] == "Contact"
    assert record["attributes"]["url"].endswith(f"/sobjects/Contact/{contact_id}")
    assert record["Name"] == "Ada Lovelace" and record["Phone"] is None
    assert record["IsDeleted"] is False and record["CreatedDate"].endswith("+0000")

    payment = sf.Payment__c.create({"Amount__c": 12.5, "Mandate__c": None})
    assert payment["id"].startswith("a0") and payment["id"][:3] != contact_id[:3]
    assert sf.Payment__c.update(payment["id"], {"Gateway_Id__c": "PM123"}) == 204
    assert sf.Payment__c.get(payment["id"])["Gateway_Id__c"] == "PM123"
    # 15-character ids are accepted too
    assert sf.Payment__c.get(payment["id"][:15])["Id"] == payment["id"]

    assert sf.Contact.delete(contact_id) == 204
    with pytest.raises(SalesforceResourceNotFound) as deleted:
        sf.Contact.get(contact_id)
    assert error_of(deleted)["errorCode"] == "ENTITY_IS_DELETED"
    assert error_of(deleted)["message"] == "entity is deleted"
    with pytest.raises(SalesforceResourceNotFound) as again:
        sf.Contact.update(contact_id, {"Phone": "1"})
    assert error_of(again)["errorCode"] == "ENTITY_IS_DELETED"


def test_not_found_and_invalid_field(sf: Salesforce) -> None:
    missing = "003" + "8d0" + "000000000"
    for call in (lambda: sf.Contact.get(missing + checksum_suffix(missing)),
                 lambda: sf.Nope__c.get("a0Z8d0000000000AAA"),
                 lambda: sf.Nope__c.create({"Name": "x"})):
        with pytest.raises(SalesforceResourceNotFound) as exc:
            call()
        assert exc.value.content == [
            {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
        ]
    with pytest.raises(SalesforceMalformedRequest) as bad:
        sf.Contact.create({"LastName": "X", "Foo__c": 1})
    assert error_of(bad)["errorCode"] == "INVALID_FIELD"
    assert error_of(bad)["message"] == "No such column 'Foo__c' on sobject of type Contact"
    with pytest.raises(SalesforceMalformedRequest) as readonly:
        sf.Contact.create({"LastName": "X", "CreatedDate": "2020-01-01T00:00:00.000+0000"})
    assert error_of(readonly)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_unable_to_lock_row_on_single_write(http: requests.Session, base: str,
                                            sf: Salesforce) -> None:
    record_id = sf.Mandate__c.create({"Reference__c": "M-1"})["id"]
    http.post(f"{base}/sim/faults", json={"unable_to_lock_row": 1})
    with pytest.raises(SalesforceMalformedRequest) as locked:
        sf.Mandate__c.update(record_id, {"Status__c": "Active"})
    assert error_of(locked)["errorCode"] == "UNABLE_TO_LOCK_ROW"
    assert error_of(locked)["message"] == (
        f"unable to obtain exclusive access to this record or 1 records: {record_id}"
    )
    assert sf.Mandate__c.update(record_id, {"Status__c": "Active"}) == 204  # fault used up


# -- sObject Collections ---------------------------------------------------------------------------


def usage(sf: Salesforce) -> int:
    return sf.api_usage["api-usage"].used  # type: ignore[union-attr,no-any-return]


def test_collections_200_records_is_one_api_call(http: requests.Session, base: str,
                                                 sf: Salesforce) -> None:
    sf.restful("limits")
    before = usage(sf)
    records = [{"attributes": {"type": "Payment__c"}, "Amount__c": i, "Reference__c": f"R{i}"}
               for i in range(200)]
    created = sf.restful("composite/sobjects", method="POST",
                         json={"allOrNone": False, "records": records})
    assert usage(sf) == before + 1
    assert len(created) == 200 and all(r["success"] for r in created)
    ids = [r["id"] for r in created]
    assert len(set(ids)) == 200

    http.post(f"{base}/sim/faults", json={"unable_to_lock_row": 1})
    updates = [{"attributes": {"type": "Payment__c"}, "id": i, "Gateway_Id__c": f"PM{n}"}
               for n, i in enumerate(ids)]
    updated = sf.restful("composite/sobjects", method="PATCH",
                         json={"allOrNone": False, "records": updates})
    assert usage(sf) == before + 2
    assert updated[0] == {
        "id": ids[0], "success": False,
        "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "fields": [],
                    "message": f"unable to obtain exclusive access to this record or 1 records: "
                               f"{ids[0]}"}],
    }
    assert all(r["success"] and r["id"] == ids[n] for n, r in enumerate(updated) if n)

    fetched = sf.restful("composite/sobjects/Payment__c",
                         params={"ids": ",".join(ids[:3]), "fields": "Gateway_Id__c"})
    assert [r["Gateway_Id__c"] for r in fetched] == [None, "PM1", "PM2"]
    stats = http.get(f"{base}/sim/stats").json()
    assert stats["api_calls"]["collections_create"] == 1
    assert stats["api_calls"]["collections_update"] == 1
    assert stats["collections_records_written"] == 399


def test_collections_per_record_errors_and_limits(sf: Salesforce) -> None:
    keep = sf.Refund__c.create({"Reference__c": "keep"})["id"]
    gone = sf.Contact.create({"LastName": "Gone"})["id"]
    sf.Contact.delete(gone)
    results = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Refund__c"}, "id": keep, "Status__c": "Paid"},
        {"attributes": {"type": "Contact"}, "id": gone, "Phone": "1"},
        {"attributes": {"type": "Refund__c"}, "id": keep, "Bogus__c": 1},
    ]})
    assert results[0]["success"] is True
    assert results[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert results[2]["errors"][0] == {
        "statusCode": "INVALID_FIELD", "fields": ["Bogus__c"],
        "message": "No such column 'Bogus__c' on sobject of type Refund__c",
    }
    too_many = [{"attributes": {"type": "Contact"}, "LastName": "x"}] * 201
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.restful("composite/sobjects", method="POST", json={"records": too_many})
    assert error_of(exc)["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_collections_take_at_most_ten_chunks_of_one_type(http: requests.Session, base: str,
                                                         sf: Salesforce) -> None:
    """A new chunk starts each time the type changes; ten are processed, eleven refused."""
    kinds = ["Payment__c", "Mandate__c"]

    def interleaved(runs: int) -> list[dict[str, Any]]:
        return [{"attributes": {"type": kinds[n % 2]}, "Reference__c": f"R{n}"}
                for n in range(runs)]

    created = sf.restful("composite/sobjects", method="POST",
                         json={"allOrNone": False, "records": interleaved(10)})
    assert [r["success"] for r in created] == [True] * 10
    assert [r["id"][:3] for r in created] == ["a0C", "a0B"] * 5  # results in request order
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.restful("composite/sobjects", method="POST",
                   json={"allOrNone": False, "records": interleaved(11)})
    assert error_of(refused) == {
        "errorCode": "INVALID_BATCH_REQUEST",
        "message": "Cannot have more than 10 chunks in a single operation. Please rearrange "
                   "the data to reduce chunking.",
    }
    updates = [{"attributes": {"type": kinds[n % 2]}, "id": r["id"], "Status__c": "Submitted"}
               for n, r in enumerate(created)] + [
        {"attributes": {"type": "Payment__c"}, "id": created[0]["id"], "Reference__c": "x"}]
    with pytest.raises(SalesforceMalformedRequest) as refused_update:
        sf.restful("composite/sobjects", method="PATCH", json={"records": updates})
    assert error_of(refused_update)["errorCode"] == "INVALID_BATCH_REQUEST"
    # Nothing of a refused request was written; grouped by type, the same records go through.
    assert http.get(f"{base}/sim/records/Payment__c").json()["totalSize"] == 5
    grouped = sorted(updates, key=lambda r: r["attributes"]["type"])
    results = sf.restful("composite/sobjects", method="PATCH", json={"records": grouped})
    assert all(r["success"] for r in results)


def test_collections_all_or_none_rolls_back(http: requests.Session, base: str,
                                            sf: Salesforce) -> None:
    records = [{"attributes": {"type": "Contact"}, "LastName": "A"},
               {"attributes": {"type": "Payment__c"}, "Nope__c": 1},
               {"attributes": {"type": "Contact"}, "LastName": "C"}]
    results = sf.restful("composite/sobjects", method="POST",
                         json={"allOrNone": True, "records": records})
    assert [r["success"] for r in results] == [False, False, False]
    codes = [r["errors"][0]["statusCode"] for r in results]
    assert codes == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "INVALID_FIELD",
                     "ALL_OR_NONE_OPERATION_ROLLED_BACK"]
    assert http.get(f"{base}/sim/records/Contact").json()["totalSize"] == 0


# -- SOQL ------------------------------------------------------------------------------------------


def test_query_subset(http: requests.Session, base: str, sf: Salesforce) -> None:
    ids = [sf.Contact.create({"LastName": name, "Email": f"{name.lower()}@x.org"})["id"]
           for name in ("Ann", "Bob", "Cy")]
    sf.Contact.update(ids[2], {"Gateway_Id__c": "CU3"})
    by_id = sf.query(format_soql("SELECT Id, Email FROM Contact WHERE Id = {}", ids[1]))
    assert by_id["totalSize"] == 1 and by_id["done"] is True
    assert by_id["records"][0] == {
        "attributes": {"type": "Contact", "url": f"/services/data/v59.0/sobjects/Contact/{ids[1]}"},
        "Id": ids[1], "Email": "bob@x.org",
    }
    by_field = sf.query("SELECT Id FROM Contact WHERE Email = 'ANN@x.org' AND LastName = 'Ann'")
    assert [r["Id"] for r in by_field["records"]] == [ids[0]]
    in_list = sf.query(format_soql("SELECT Id FROM Contact WHERE Id IN {} LIMIT 5",
                                   [ids[0], ids[2]]))
    assert {r["Id"] for r in in_list["records"]} == {ids[0], ids[2]}
    not_null = sf.query("SELECT Id, Gateway_Id__c FROM Contact WHERE Gateway_Id__c != null")
    assert [r["Gateway_Id__c"] for r in not_null["records"]] == ["CU3"]
    assert sf.query("SELECT COUNT() FROM Contact WHERE LastName LIKE 'B%'")["totalSize"] == 1
    assert sf.query("SELECT Id FROM Contact LIMIT 2")["totalSize"] == 2

    with pytest.raises(SalesforceMalformedRequest) as malformed:
        sf.query("SELECT FROM Contact WHERE")
    assert error_of(malformed)["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as column:
        sf.query("SELECT Foo__c FROM Contact")
    assert error_of(column)["errorCode"] == "INVALID_FIELD"

    # Past one 2000-record batch the rest comes through nextRecordsUrl.
    http.post(f"{base}/sim/trigger", json={"url": None})
    bulk = http.post(f"{base}/sim/records/Payout__c/bulk",
                     json={"records": [{"Reference__c": str(i)} for i in range(2100)]})
    assert bulk.status_code == 201
    first = sf.query("SELECT Id FROM Payout__c")
    assert first["done"] is False and len(first["records"]) == 2000
    assert len(sf.query_all("SELECT Id FROM Payout__c")["records"]) == 2100


# -- sessions and the API allocation --------------------------------------------------------------


def test_expired_sessions(http: requests.Session, base: str, sf: Salesforce) -> None:
    sf.restful("limits")
    answer = http.post(f"{base}/sim/faults", json={"expire_sessions": True}).json()
    assert answer["sessions_expired"] >= 1
    with pytest.raises(SalesforceExpiredSession) as exc:
        sf.Contact.create({"LastName": "Late"})
    assert exc.value.status == 401
    assert error_of(exc)["errorCode"] == "INVALID_SESSION_ID"
    fresh = client(http, base, "client_credentials")
    assert fresh.restful("limits")["DailyApiRequests"]["Max"] == 100_000


def test_request_limit_exceeded(http: requests.Session, base: str, sf: Salesforce) -> None:
    http.post(f"{base}/sim/faults", json={"request_limit_exceeded": True})
    with pytest.raises(SalesforceRefusedRequest) as by_fault:
        sf.query("SELECT Id FROM Contact")
    assert by_fault.value.status == 403
    assert by_fault.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    http.delete(f"{base}/sim/faults")
    http.post(f"{base}/sim/stats/reset")
    http.post(f"{base}/sim/faults", json={"daily_limit": 3})
    assert sf.restful("limits") == {"DailyApiRequests": {"Max": 3, "Remaining": 2}}
    sf.restful("limits")
    assert sf.restful("limits")["DailyApiRequests"]["Remaining"] == 0
    assert usage(sf) == 3 and sf.api_usage["api-usage"].total == 3  # type: ignore[union-attr]
    with pytest.raises(SalesforceRefusedRequest) as by_limit:
        sf.restful("limits")
    assert error_of(by_limit)["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert by_limit.value.status == 403


# -- the trigger -----------------------------------------------------------------------------------


def test_trigger_reports_regular_user_changes(http: requests.Session, base: str,
                                              sf_user: Salesforce, receiver: Receiver) -> None:
    payment_id = sf_user.Payment__c.create({"Amount__c": 10, "Currency__c": "GBP"})["id"]
    sf_user.Payment__c.update(payment_id, {"Description__c": "Gym"})
    sf_user.Payment__c.delete(payment_id)
    log = wait_trigger(http, base)
    assert [c["count"] for c in log["calls"]] == [1, 1, 1]
    assert all(c["state"] == "sent" and c["status"] == 202 for c in log["calls"])
    assert [c["auth"] for c in receiver.calls] == [f"Bearer {TRIGGER_KEY}"] * 3
    insert, update, delete = (c["body"]["changes"][0] for c in receiver.calls)
    assert insert["object"] == "Payment" and insert["record_id"] == payment_id
    assert insert["operation"] == "insert" and "previous_fields" not in insert
    assert insert["fields"]["Amount__c"] == 10 and "Description__c" not in insert["fields"]
    assert "attributes" not in insert["fields"]
    assert update["operation"] == "update"
    assert update["fields"]["Description__c"] == "Gym"
    assert "Description__c" not in update["previous_fields"]
    assert delete["operation"] == "delete" and delete["fields"]["IsDeleted"] is True
    assert delete["previous_fields"]["Description__c"] == "Gym"


def test_trigger_batches_of_200(http: requests.Session, base: str, sf_user: Salesforce,
                                receiver: Receiver) -> None:
    http.post(f"{base}/sim/records/Contact/bulk",
              json={"records": [{"LastName": f"L{i}"} for i in range(250)]})
    records = [{"attributes": {"type": "Mandate__c"}, "Reference__c": str(i)} for i in range(150)]
    sf_user.restful("composite/sobjects", method="POST", json={"records": records})
    wait_trigger(http, base)
    assert [len(c["body"]["changes"]) for c in receiver.calls] == [200, 50, 150]
    assert {c["object"] for c in receiver.calls[2]["body"]["changes"]} == {"Mandate"}


def test_bulk_update_writes_each_record_as_the_user(http: requests.Session, base: str,
                                                   sf: Salesforce) -> None:
    http.post(f"{base}/sim/trigger", json={"url": None})
    ids = http.post(f"{base}/sim/records/Payout__c/bulk",
                    json={"records": [{"Reference__c": str(i)} for i in range(3)]}).json()["ids"]
    answer = http.patch(f"{base}/sim/records/Payout__c/bulk", json={"records": [
        {"Id": ids[0], "Reference__c": "A"}, {"Id": ids[1], "Reference__c": "B"}]})
    assert answer.status_code == 200, answer.text
    assert [sf.Payout__c.get(i)["Reference__c"] for i in ids] == ["A", "B", "2"]
    refused = http.patch(f"{base}/sim/records/Payout__c/bulk", json={"records": [
        {"Id": ids[2], "Reference__c": "C"}, {"Id": ids[2], "No_Such_Field__c": 1}]})
    assert refused.status_code == 207
    assert [r["success"] for r in refused.json()["results"]] == [True, False]
    assert http.patch(f"{base}/sim/records/Payout__c/bulk",
                      json={"records": [{"Reference__c": "no id"}]}).status_code == 400


def test_integration_user_writes_fire_nothing(http: requests.Session, base: str,
                                              sf: Salesforce, receiver: Receiver) -> None:
    record_id = sf.Subscription__c.create({"Name": "Gym"})["id"]
    sf.Subscription__c.update(record_id, {"Gateway_Id__c": "SB1"})
    sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Subscription__c"}, "id": record_id, "Status__c": "Active"}]})
    sf.Subscription__c.delete(record_id)
    log = wait_trigger(http, base)
    assert log["calls"] == [] and receiver.calls == []


def test_trigger_retries_when_receiver_is_not_up(http: requests.Session, base: str,
                                                 receiver: Receiver) -> None:
    receiver.fail_next = 2
    created = http.post(f"{base}/sim/records/Bank_Account__c",
                        json={"Account_Holder_Name__c": "A Smith"})
    assert created.status_code == 201
    log = wait_trigger(http, base)
    (call,) = log["calls"]
    assert call["attempts"] == 3 and call["state"] == "sent" and call["error"] is None
    assert receiver.calls[0]["body"]["changes"][0]["object"] == "BankAccount"
    assert http.get(f"{base}/sim/stats").json()["trigger_calls_sent"] == 1


# -- control API, ids and CLI ----------------------------------------------------------------------


def test_control_api_records_faults_stats(http: requests.Session, base: str) -> None:
    created = http.post(f"{base}/sim/records/Contact", json={"LastName": "Ctl"}).json()
    record_id = created["id"]
    assert created["record"]["Name"] == "Ctl"
    patched = http.patch(f"{base}/sim/records/Contact/{record_id}", json={"Phone": "07"})
    assert patched.json()["Phone"] == "07"
    assert http.get(f"{base}/sim/records/Contact").json()["totalSize"] == 1
    assert http.delete(f"{base}/sim/records/Contact/{record_id}").status_code == 204
    assert http.get(f"{base}/sim/records/Contact/{record_id}").json()["IsDeleted"] is True
    assert http.get(f"{base}/sim/records/Contact").json()["totalSize"] == 0
    bad = http.post(f"{base}/sim/records/Contact", json={"Nope__c": 1})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"

    faults = http.post(f"{base}/sim/faults", json={"unable_to_lock_row": 2, "latency_ms": 1})
    assert faults.json()["unable_to_lock_row"] == 2
    assert http.post(f"{base}/sim/faults", json={"latency_ms": -1}).status_code == 400
    cleared = http.delete(f"{base}/sim/faults").json()
    assert cleared == {"request_limit_exceeded": False, "unable_to_lock_row": 0,
                       "latency_ms": 0, "daily_limit": 100_000, "bulk_query_ms": 0}
    stats = http.get(f"{base}/sim/stats").json()
    assert stats["api_usage"]["used"] == 0  # control calls use no allocation
    assert http.post(f"{base}/sim/stats/reset").json() == {"ok": True}


def test_ids_have_a_valid_checksum() -> None:
    assert normalize_id("001000000000001") == "001000000000001AAA"
    assert normalize_id("00300000000000A") == "00300000000000AAAQ"
    assert normalize_id("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    assert normalize_id("not-an-id") is None


def test_cli_options_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESFORCE_SIM_DAILY_LIMIT", "50")
    monkeypatch.setenv("SALESFORCE_SIM_TRIGGER_URL", "http://127.0.0.1:9/q")
    config, verbose = parse_args(["--port", "9443", "--client-secret", "s3"])
    assert (config.port, config.daily_limit, config.client_secret) == (9443, 50, "s3")
    assert config.trigger_url == "http://127.0.0.1:9/q" and verbose is False


def test_command_line_server(tmp_path: Path) -> None:
    cert_dir = tmp_path / "certs"
    process = subprocess.Popen(
        [sys.executable, "-m", "sim.salesforce", "--port", "0", "--cert-dir", str(cert_dir),
         "--daily-limit", "7"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"listening on (https://\S+) \(CA certificate: (.+)\)", line)
        assert match, line
        assert Path(match[2]) == (cert_dir / "ca.pem").resolve()
        session = requests.Session()
        session.trust_env = False
        session.verify = match[2]
        token = session.post(f"{match[1]}/services/oauth2/token",
                             data={"grant_type": "client_credentials", **CLIENT}).json()
        limits = session.get(f"{match[1]}/services/data/v59.0/limits",
                             headers={"Authorization": f"Bearer {token['access_token']}"})
        assert limits.json() == {"DailyApiRequests": {"Max": 7, "Remaining": 6}}
        assert limits.headers["Sforce-Limit-Info"] == "api-usage=1/7"
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0  # SIGTERM shuts down cleanly
