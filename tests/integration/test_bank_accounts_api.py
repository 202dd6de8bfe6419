"""POST /api/v1/bank-accounts and STORE_BANK_DETAILS, against both emulators over HTTP.

The emulators run in threads here (one pair per module); the real processes are exercised in
tests/e2e/test_bank_accounts_e2e.py. The gateway emulator keeps the details it receives in
memory, which is how these tests see exactly what was sent.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask.testing import FlaskClient
from rq import Queue
from werkzeug.serving import make_server

from app.background import API_QUEUE
from app.config import Settings
from app.errors import AppError
from app.records import service as records
from app.records.models import RecordLink
from app.runtime import Runtime
from app.web import create_app
from bankaccounts import service as bank_service
from queues import service as queue_service
from queues.models import STAGE_GATEWAY_DONE, QueueItem
from queues.processor import process_batch
from sim.gateway import GatewayConfig
from sim.gateway import create_app as gateway_app
from sim.salesforce import SimConfig, start_in_thread
from tests.conftest import fast_settings
from tests.leases import held
from workers.context import queue_context

GATEWAY_TOKEN = "bank-accounts-test-token"
# Official Vocalink test cases: valid, so they reach the gateway.
SORT_CODE, ACCOUNT = "089999", "66374958"
OTHER_SORT_CODE, OTHER_ACCOUNT = "107999", "88837491"


@dataclass
class Partners:
    gateway_url: str
    gateway: Any  # the emulator's Simulator: its store holds what was sent
    sf_url: str
    sf_ca: str
    http: requests.Session

    def gw(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.http.request(method, self.gateway_url + path, timeout=10, headers={
            "Authorization": f"Bearer {GATEWAY_TOKEN}"}, **kw)

    def sf(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.http.request(method, self.sf_url + path, verify=self.sf_ca, timeout=10, **kw)

    def sent_bank_accounts(self) -> list[dict[str, Any]]:
        return self.gw("GET", "/sim/resources/customer_bank_accounts").json()[
            "customer_bank_accounts"]

    def gateway_requests(self) -> dict[str, Any]:
        """API requests the gateway emulator answered, by "METHOD /path" (control calls aside)."""
        answered = self.gw("GET", "/sim/stats").json()["requests"]
        return {k: v for k, v in answered.items() if not k.split(" ", 1)[1].startswith("/sim")}

    def crm_records(self, sobject: str) -> list[dict[str, Any]]:
        return self.sf("GET", f"/sim/records/{sobject}").json()["records"]


@pytest.fixture(scope="module")
def partners() -> Iterator[Partners]:
    app = gateway_app(GatewayConfig(port=0, access_token=GATEWAY_TOKEN, webhook_url=""))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sf = start_in_thread(SimConfig(port=0))
    http = requests.Session()
    http.trust_env = False
    yield Partners(f"http://127.0.0.1:{server.server_port}", app.extensions["gateway_sim"],
                   sf.base_url, sf.ca_path, http)
    sf.stop()
    server.shutdown()
    app.extensions["gateway_sim"].close()


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path,
             partners: Partners) -> Settings:
    """The shared test settings, aimed at this module's emulators (overrides conftest's)."""
    partners.gw("POST", "/sim/reset").raise_for_status()
    partners.sf("POST", "/sim/reset").raise_for_status()
    return fast_settings(database_url, redis_url, tmp_path, gateway_url=partners.gateway_url,
                         gateway_access_token=GATEWAY_TOKEN, gateway_timeout=3.0,
                         salesforce_login_url=partners.sf_url, salesforce_ca_bundle=partners.sf_ca)


@dataclass(frozen=True)
class Known:
    contact_id: str
    gateway_id: str


def known_customer(rt: Runtime, partners: Partners, *, link: bool = True) -> Known:
    """A Contact in the CRM and its customer at the gateway, linked as the API Queue would."""
    contact = partners.sf("POST", "/sim/records/Contact", json={"LastName": "Payer"}).json()
    contact_id = contact.get("id") or contact.get("Id")
    customer = partners.gw("POST", "/customers", json={"customers": {
        "given_name": "Ada", "family_name": "Payer", "email": "ada@example.com",
        "metadata": {"crm_id": contact_id}}}).json()["customers"]
    if link:
        with rt.db.transaction() as session:
            records.upsert_link(session, "Customer", crm_id=contact_id,
                                gateway_id=customer["id"])
    return Known(contact_id, customer["id"])


def body(customer_id: str, **over: Any) -> dict[str, Any]:
    return {"customer_id": customer_id, "account_holder_name": "Ada Payer",
            "sort_code": SORT_CODE, "account_number": ACCOUNT, **over}


def count(rt: Runtime, model: Any, *conds: Any) -> int:
    with rt.db.transaction() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(*conds))


def bank_links(rt: Runtime) -> int:
    return count(rt, RecordLink, RecordLink.object == "BankAccount")


def run_queue(rt: Runtime) -> None:
    """What a worker does with the enqueued job, in this process."""
    with rt.db.transaction() as session:
        ids = list(session.scalars(sa.select(QueueItem.id)))
    owner = f"test-{uuid.uuid4().hex[:6]}"
    claimed = queue_service.claim(rt.db, ids, held(rt, owner, 30))
    process_batch(queue_context(rt), claimed, held(rt, owner))


# --- the happy path ---------------------------------------------------------------------------

def test_details_go_to_the_gateway_and_only_safe_fields_are_kept(
        client: FlaskClient, rt: Runtime, partners: Partners, trigger_headers: dict) -> None:
    who = known_customer(rt, partners)
    resp = client.post("/api/v1/bank-accounts", headers=trigger_headers, json=body(
        who.contact_id, sort_code="08-99-99", account_number="6637 4958"))
    assert resp.status_code == 201, resp.get_json()
    out = resp.get_json()
    assert out["account_number_ending"] == "58" and out["status"] == "Active"
    assert out["customer_gateway_id"] == who.gateway_id and out["bank_name"]
    # Spaces and dashes were removed before the details went to the gateway.
    sent = partners.gateway.store.bank_details[out["gateway_id"]]
    assert (sent.branch_code, sent.account_number) == (SORT_CODE, ACCOUNT)
    (account,) = partners.sent_bank_accounts()
    assert account["links"]["customer"] == who.gateway_id
    assert account["metadata"]["crm_id"] == out["record_id"]
    with rt.db.transaction() as session:
        item = session.get(QueueItem, out["queue_item_id"])
        assert item.stage == STAGE_GATEWAY_DONE and item.gateway_id == out["gateway_id"]
        assert set(item.result) == {"Gateway_Id__c", "Bank_Name__c", "Account_Number_Ending__c",
                                    "Status__c", "Account_Holder_Name__c", "Contact__c"}
        link = records.find_link(session, "BankAccount", crm_id=out["record_id"])
        assert link is not None and link.gateway_id == out["gateway_id"]
    (job,) = Queue(API_QUEUE, connection=rt.redis).get_jobs()
    assert job.args == ([out["queue_item_id"]],)  # ids only, never a payload

    run_queue(rt)
    (record,) = partners.crm_records("Bank_Account__c")
    assert record["Id"] == out["record_id"]
    assert record["Gateway_Id__c"] == out["gateway_id"]
    assert record["Account_Number_Ending__c"] == "58"
    assert record["Contact__c"] == who.contact_id and record["Status__c"] == "Active"
    assert not record.get("Sort_Code__c") and not record.get("Account_Number__c")
    assert count(rt, QueueItem) == 0


def test_an_existing_record_is_filled_in(client: FlaskClient, rt: Runtime, partners: Partners,
                                         trigger_headers: dict) -> None:
    who = known_customer(rt, partners)
    made = partners.sf("POST", "/sim/records/Bank_Account__c", json={
        "Contact__c": who.contact_id}).json()
    record_id = made.get("id") or made.get("Id")
    resp = client.post("/api/v1/bank-accounts", headers=trigger_headers,
                       json=body(who.gateway_id, record_id=record_id))
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["record_id"] == record_id
    run_queue(rt)
    (record,) = partners.crm_records("Bank_Account__c")
    assert record["Id"] == record_id and record["Gateway_Id__c"] == resp.get_json()["gateway_id"]


def test_a_gateway_customer_id_can_be_used_directly(
        client: FlaskClient, rt: Runtime, partners: Partners, trigger_headers: dict) -> None:
    who = known_customer(rt, partners, link=False)
    resp = client.post("/api/v1/bank-accounts", headers=trigger_headers,
                       json=body(who.gateway_id))
    assert resp.status_code == 201, resp.get_json()
    (record,) = partners.crm_records("Bank_Account__c")
    # The Contact comes from the gateway customer's metadata.
    assert record["Contact__c"] == who.contact_id


def test_non_standard_lengths_are_sent_as_given(
        client: FlaskClient, rt: Runtime, partners: Partners, trigger_headers: dict) -> None:
    who = known_customer(rt, partners)
    # A 7-digit account number is checked zero-padded; the gateway gets it as given.
    resp = client.post("/api/v1/bank-accounts", headers=trigger_headers, json=body(
        who.contact_id, sort_code="180002", account_number="0000190"))
    assert resp.status_code == 201, resp.get_json()
    sent = partners.gateway.store.bank_details[resp.get_json()["gateway_id"]]
    assert sent.branch_code == "180002" and sent.account_number.lstrip("0") == "190"


# --- invalid details: 422, nothing sent, nothing stored ----------------------------------------

@pytest.mark.parametrize(("sort_code", "account_number", "check"), [
    ("08-99-9A", ACCOUNT, "sort code must contain only digits"),
    (SORT_CODE, "6637495B", "account number must contain only digits"),
    ("08999", ACCOUNT, "sort code must be 6 digits"),
    ("0899990", ACCOUNT, "sort code must be 6 digits"),
    (SORT_CODE, "12345", "account number must be 6 to 10 digits"),
    (SORT_CODE, "12345678901", "account number must be 6 to 10 digits"),
    ("", ACCOUNT, "sort code is required"),
    (SORT_CODE, "   ", "account number is required"),
    (None, ACCOUNT, "sort code is required"),
    (SORT_CODE, 66374958, "sort code and account number must be text"),
    ("08 99 99", "6637-4959", "failed MOD10 check"),
    ("107999", "88837493", "failed MOD11 check"),
])
def test_invalid_details_are_refused_before_anything_is_looked_up(
        client: FlaskClient, rt: Runtime, partners: Partners, trigger_headers: dict,
        sort_code: Any, account_number: Any, check: str) -> None:
    # An unknown customer: the details are checked first, so the answer is still 422.
    resp = client.post("/api/v1/bank-accounts", headers=trigger_headers, json=body(
        "003UNKNOWN", sort_code=sort_code, account_number=account_number))
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "invalid_bank_details"
    assert check in error["message"] and error["details"]["check"] == check
    given = str(account_number or "").strip()
    assert not given or given not in resp.get_data(as_text=True)
    assert partners.gateway_requests() == {}
    assert partners.crm_records("Bank_Account__c") == []
    assert count(rt, QueueItem) == 0 and count(rt, RecordLink) == 0


def test_missing_fields_name_the_field(client: FlaskClient, trigger_headers: dict,
                                       partners: Partners) -> None:
    resp = client.post("/api/v1/bank-accounts", headers=trigger_headers,
                       json={"customer_id": "003X", "account_holder_name": " "})
    assert resp.status_code == 400
    fields = resp.get_json()["error"]["details"]["fields"]
    assert set(fields) == {"sort_code", "account_number", "account_holder_name"}
    assert partners.gateway_requests() == {}


# --- the gateway or the CRM failing ------------------------------------------------------------

def assert_nothing_kept(rt: Runtime, partners: Partners) -> None:
    assert partners.sent_bank_accounts() == []
    assert count(rt, QueueItem) == 0 and bank_links(rt) == 0
    assert Queue(API_QUEUE, connection=rt.redis).count == 0
    for record in partners.crm_records("Bank_Account__c"):
        assert not record.get("Gateway_Id__c") and not record.get("Account_Number__c")
        assert not record.get("Sort_Code__c") and record["Status__c"] == "Pending"


@pytest.mark.parametrize("status", [503, 500, 429])
def test_gateway_failure_answers_503_and_keeps_nothing(
        client: FlaskClient, rt: Runtime, partners: Partners, trigger_headers: dict,
        status: int) -> None:
    who = known_customer(rt, partners)
    partners.gw("POST", "/sim/faults", json={"fail_next": [
        {"status": status, "count": 1, "path_prefix": "/customer_bank_accounts"}]})
    resp = client.post("/api/v1/bank-accounts", headers=trigger_headers,
                       json=body(who.contact_id))
    assert resp.status_code == 503
    error = resp.get_json()["error"]
    assert error["code"] == "gateway_unavailable" and "again" in error["message"]
    assert ACCOUNT not in resp.get_data(as_text=True)
    assert_nothing_kept(rt, partners)
    # Trying again (with the record created for the first attempt) works.
    retry = client.post("/api/v1/bank-accounts", headers=trigger_headers, json=body(
        who.contact_id, record_id=error["details"]["created_record_id"]))
    assert retry.status_code == 201
    assert len(partners.crm_records("Bank_Account__c")) == 1


def test_unreachable_gateway_answers_503(rt: Runtime, partners: Partners,
                                         trigger_headers: dict) -> None:
    who = known_customer(rt, partners)
    down = Runtime(dataclasses.replace(rt.settings, gateway_url="http://127.0.0.1:9"))
    with create_app(runtime=down).test_client() as client:
        resp = client.post("/api/v1/bank-accounts", headers=trigger_headers,
                           json=body(who.contact_id))
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "gateway_unavailable"
    assert_nothing_kept(rt, partners)


def test_crm_down_answers_503_before_the_details_are_sent(
        rt: Runtime, partners: Partners, trigger_headers: dict) -> None:
    who = known_customer(rt, partners)
    down = Runtime(dataclasses.replace(rt.settings, salesforce_login_url="https://127.0.0.1:9"))
    with create_app(runtime=down).test_client() as client:
        resp = client.post("/api/v1/bank-accounts", headers=trigger_headers,
                           json=body(who.contact_id))
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "crm_unavailable"
    assert "POST /customer_bank_accounts" not in partners.gateway_requests()
    assert_nothing_kept(rt, partners)


def test_gateway_rejection_passes_its_message_on(
        client: FlaskClient, rt: Runtime, partners: Partners, trigger_headers: dict) -> None:
    who = known_customer(rt, partners)
    partners.gw("POST", "/sim/faults", json={"reject_next": [
        {"count": 1, "path_prefix": "/customer_bank_accounts", "field": "account_number",
         "message": "is not a real account"}]})
    resp = client.post("/api/v1/bank-accounts", headers=trigger_headers,
                       json=body(who.contact_id))
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "gateway_rejected"
    assert "account_number: is not a real account" in error["message"]
    assert count(rt, QueueItem) == 0 and bank_links(rt) == 0


def test_the_same_account_twice(client: FlaskClient, rt: Runtime, partners: Partners,
                                trigger_headers: dict) -> None:
    who = known_customer(rt, partners)
    first = client.post("/api/v1/bank-accounts", headers=trigger_headers,
                        json=body(who.contact_id)).get_json()
    # A retry for the same record (say its answer was lost) links the same account.
    again = client.post("/api/v1/bank-accounts", headers=trigger_headers,
                        json=body(who.contact_id, record_id=first["record_id"]))
    assert again.status_code == 201 and again.get_json()["gateway_id"] == first["gateway_id"]
    # A second record for the same account is a duplicate of the first.
    dup = client.post("/api/v1/bank-accounts", headers=trigger_headers,
                      json=body(who.contact_id))
    assert dup.status_code == 409
    error = dup.get_json()["error"]
    assert error["code"] == "bank_account_exists"
    assert error["details"]["existing_record_id"] == first["record_id"]
    assert first["record_id"] in error["message"]
    # The record made for this attempt holds no details; the caller may reuse or delete it.
    assert error["details"]["created_record_id"] != first["record_id"]
    assert len(partners.sent_bank_accounts()) == 1 and bank_links(rt) == 1


# --- customers and records that cannot be used -------------------------------------------------

def test_unknown_customer_is_404(client: FlaskClient, partners: Partners,
                                 trigger_headers: dict) -> None:
    for customer_id, code in (("003NOBODY", "customer_not_found"),
                              ("CU0000NOBODY", "customer_not_found")):
        resp = client.post("/api/v1/bank-accounts", headers=trigger_headers,
                           json=body(customer_id))
        assert resp.status_code == 404 and resp.get_json()["error"]["code"] == code
    assert "POST /customer_bank_accounts" not in partners.gateway_requests()


def test_customer_still_queued_is_409(client: FlaskClient, rt: Runtime,
                                      trigger_headers: dict) -> None:
    queue_service.accept_changes(rt.db, [{"object": "Customer", "record_id": "003PENDING",
                                          "operation": "insert", "fields": {"LastName": "P"}}])
    resp = client.post("/api/v1/bank-accounts", headers=trigger_headers,
                       json=body("003PENDING"))
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "customer_not_ready"


def test_record_that_does_not_exist_or_belongs_to_another_contact(
        client: FlaskClient, rt: Runtime, partners: Partners, trigger_headers: dict) -> None:
    who = known_customer(rt, partners)
    missing = client.post("/api/v1/bank-accounts", headers=trigger_headers,
                          json=body(who.contact_id, record_id="a0B000000000NONE"))
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "record_not_found"
    someone_else = partners.sf("POST", "/sim/records/Contact", json={"LastName": "Else"})
    other = partners.sf("POST", "/sim/records/Bank_Account__c",
                        json={"Contact__c": someone_else.json()["id"]}).json()
    resp = client.post("/api/v1/bank-accounts", headers=trigger_headers, json=body(
        who.contact_id, record_id=other.get("id") or other.get("Id")))
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "record_mismatch"
    assert partners.sent_bank_accounts() == []


def test_keys_are_required(client: FlaskClient) -> None:
    assert client.post("/api/v1/bank-accounts", json=body("003X")).status_code == 401
    assert client.get("/api/v1/bank-accounts/modulus").status_code == 401


# --- exceptions never carry the details --------------------------------------------------------

@pytest.mark.parametrize("fault", [
    {"fail_next": [{"status": 503, "count": 1, "path_prefix": "/customer_bank_accounts"}]},
    {"reject_next": [{"count": 1, "path_prefix": "/customer_bank_accounts",
                      "field": "branch_code", "message": "is unknown"}]},
    {"timeout_rate": 1.0, "timeout_sleep_s": 1},
])
def test_errors_and_their_tracebacks_carry_no_details(rt: Runtime, partners: Partners,
                                                      fault: dict) -> None:
    who = known_customer(rt, partners)
    impatient = Runtime(dataclasses.replace(rt.settings, gateway_timeout=0.3))
    partners.gw("POST", "/sim/faults", json=fault)
    with pytest.raises(AppError) as caught:
        bank_service.register(impatient, {**body(who.contact_id), "record_id": None})
    partners.gw("DELETE", "/sim/faults")
    time.sleep(1.2 if "timeout_rate" in fault else 0)  # the slow call finishes in the emulator
    exc = caught.value
    text = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc.to_dict())
    assert ACCOUNT not in text and f"{SORT_CODE}" not in text.replace("-", "")
    assert exc.status in (422, 503)


# --- the modulus tables in use -----------------------------------------------------------------

def test_modulus_info_names_the_version(client: FlaskClient, trigger_headers: dict) -> None:
    info = client.get("/api/v1/bank-accounts/modulus", headers=trigger_headers).get_json()
    assert info["version"] == "8.50" and info["origin"] == "shipped"
    assert info["row_count"] > 1000


def test_a_malformed_configured_table_stops_the_app(settings: Settings,
                                                    tmp_path: Path) -> None:
    from bankaccounts.modulus import TableFormatError

    bad = tmp_path / "valacdos-v9-99.txt"
    bad.write_text("089000 089999 MOD10 0 0\n")
    with pytest.raises(TableFormatError, match="line 1"):
        create_app(dataclasses.replace(settings, modulus_weights_path=str(bad)))


# --- STORE_BANK_DETAILS ------------------------------------------------------------------------

def bank_change(record_id: str, contact_id: str, **fields: Any) -> dict[str, Any]:
    return {"object": "BankAccount", "record_id": record_id, "operation": "insert",
            "fields": {"Contact__c": contact_id, "Account_Holder_Name__c": "Ada Payer",
                       **fields}}


def test_setting_off_refuses_queued_details_and_points_to_the_api(
        client: FlaskClient, rt: Runtime, trigger_headers: dict) -> None:
    for fields in ({"Sort_Code__c": SORT_CODE}, {"Account_Number__c": ACCOUNT}):
        resp = client.post("/api/v1/queue", headers=trigger_headers,
                           json={"changes": [bank_change("a0B1", "003X", **fields)]})
        assert resp.status_code == 400
        error = resp.get_json()["error"]
        assert error["code"] == "bank_details_not_allowed"
        assert "STORE_BANK_DETAILS" in error["message"]
        assert "/api/v1/bank-accounts" in error["message"]
        assert ACCOUNT not in resp.get_data(as_text=True)
    # Without details, an insert or update could only fail at the gateway (and hold back
    # the record's write-back from the bank-account API): it is not queued. A delete is.
    changes = [bank_change("a0B1", "003X"), {**bank_change("a0B1", "003X"), "operation": "update"},
               {**bank_change("a0B2", "003X"), "operation": "delete"},
               {"object": "Customer", "record_id": "003X", "operation": "update",
                "fields": {"LastName": "P"}}]
    resp = client.post("/api/v1/queue", headers=trigger_headers, json={"changes": changes})
    assert resp.status_code == 202
    assert [(i["object"], i["operation"]) for i in resp.get_json()["items"]] == [
        ("BankAccount", "delete"), ("Customer", "update")]
    assert count(rt, QueueItem) == 2


@pytest.fixture
def storing(rt: Runtime) -> Iterator[tuple[Runtime, FlaskClient]]:
    on = Runtime(dataclasses.replace(rt.settings, store_bank_details=True))
    with create_app(runtime=on).test_client() as client:
        yield on, client
    on.db.dispose()


def test_setting_on_checks_details_at_intake(storing: tuple[Runtime, FlaskClient],
                                             trigger_headers: dict) -> None:
    on, client = storing
    changes = [bank_change("a0B1", "003X", Sort_Code__c=SORT_CODE, Account_Number__c=ACCOUNT),
               bank_change("a0B2", "003X", Sort_Code__c=SORT_CODE, Account_Number__c="66374959")]
    resp = client.post("/api/v1/queue", headers=trigger_headers, json={"changes": changes})
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "invalid_bank_details"
    assert error["message"].startswith("changes[1]:") and "failed MOD10 check" in error["message"]
    assert error["details"]["fields"] == ["Sort_Code__c", "Account_Number__c"]
    assert count(on, QueueItem) == 0
    changes[1]["fields"]["Sort_Code__c"] = "12345"
    error = client.post("/api/v1/queue", headers=trigger_headers,
                        json={"changes": changes}).get_json()["error"]
    assert error["details"] == {"index": 1, "check": "sort code must be 6 digits",
                                "fields": ["Sort_Code__c"]}


def test_setting_on_sends_details_through_the_api_queue(
        storing: tuple[Runtime, FlaskClient], partners: Partners, trigger_headers: dict) -> None:
    on, client = storing
    who = known_customer(on, partners)
    made = partners.sf("POST", "/sim/records/Bank_Account__c",
                       json={"Contact__c": who.contact_id}).json()
    record_id = made.get("id") or made.get("Id")
    resp = client.post("/api/v1/queue", headers=trigger_headers, json={"changes": [bank_change(
        record_id, who.contact_id, Sort_Code__c="08-99-99", Account_Number__c="6637 4958")]})
    assert resp.status_code == 202, resp.get_json()
    with on.db.transaction() as session:
        (item,) = session.scalars(sa.select(QueueItem))
        # Stored normalised, because the customer chose to store them.
        assert (item.fields["Sort_Code__c"], item.fields["Account_Number__c"]) == (
            SORT_CODE, ACCOUNT)
    run_queue(on)
    (account,) = partners.sent_bank_accounts()
    sent = partners.gateway.store.bank_details[account["id"]]
    assert (sent.branch_code, sent.account_number) == (SORT_CODE, ACCOUNT)
    (record,) = partners.crm_records("Bank_Account__c")
    assert record["Gateway_Id__c"] == account["id"]
    assert record["Account_Number_Ending__c"] == "58"
    assert count(on, QueueItem) == 0


def test_stored_details_are_masked_wherever_a_person_reads_the_item(
        storing: tuple[Runtime, FlaskClient], trigger_headers: dict, admin_headers: dict,
        rt: Runtime) -> None:
    on, client = storing
    from tests.integration.conftest import _key
    ops = {"Authorization": f"Bearer {_key(on, 'operations')}"}
    resp = client.post("/api/v1/queue", headers=trigger_headers, json={"changes": [
        bank_change("a0B9", "003X", Sort_Code__c=SORT_CODE, Account_Number__c=ACCOUNT)]})
    assert resp.status_code == 202
    (item,) = resp.get_json()["items"]
    for headers in (ops, admin_headers):
        shown = client.get(f"/api/v1/queue-items/{item['id']}", headers=headers)
        assert shown.status_code == 200
        text = shown.get_data(as_text=True)
        assert ACCOUNT not in text and SORT_CODE not in text
        assert shown.get_json()["fields"]["Account_Number__c"] == "[REDACTED]"
    # An admin editing the Failed item's payload keeps the details it left masked.
    from tests.integration.test_queue_api import _fail
    _fail(on, item["id"])
    edited = client.patch(f"/api/v1/queue-items/{item['id']}", headers=admin_headers, json={
        "fields": {**shown.get_json()["fields"], "Account_Holder_Name__c": "Ada Lovelace"}})
    assert edited.status_code == 200, edited.get_json()
    assert ACCOUNT not in edited.get_data(as_text=True)
    with on.db.transaction() as session:
        row = session.get(QueueItem, item["id"])
        assert row.fields["Account_Number__c"] == ACCOUNT
        assert row.fields["Account_Holder_Name__c"] == "Ada Lovelace"
