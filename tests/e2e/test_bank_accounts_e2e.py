"""Bank accounts end to end over the real processes, and the proof that no details are kept.

Salesforce emulator (Contact, Mandate__c) -> trigger -> Paybridge -> gateway emulator, with
POST /api/v1/bank-accounts in the middle. STORE_BANK_DETAILS is off (the default) for the
whole module, so afterwards not one account number may be found anywhere: not in the
database, Redis (RQ job payloads included), the CRM, or any log file.
"""

from __future__ import annotations

import threading
import zlib
from typing import Any

import pytest
import sqlalchemy as sa

from bench.leak_sweep import Needles, hits, redis_text, sweep
from tests.e2e.conftest import Stack, wait_until

pytestmark = pytest.mark.e2e

# Official Vocalink test cases (they pass the modulus checks) used only by this module.
HAPPY = ("871427", "46238510")
LEAK_ACCOUNTS = [("134020", "63849203"), ("772798", "99345694"), ("086090", "06774744")]
DOWN = ("827101", "28748352")
INVALID = ("203099", "66831036")  # fails the double alternate check
TOGETHER = ("938611", "07806039")
REPLACED, REPLACEMENT = ("938600", "42368003"), ("938063", "55065200")
USED = [HAPPY, *LEAK_ACCOUNTS, DOWN, INVALID, TOGETHER, REPLACED, REPLACEMENT]
IBAN = "GB82 WEST 1234 5698 7654 32"  # the standard example IBAN, offered under other names


def new_contact(stack: Stack, name: str) -> tuple[str, str]:
    """A Contact created by a CRM user; returns (CRM id, gateway id) once it has synced."""
    made = stack.sf_call("POST", "/sim/records/Contact",
                         json={"FirstName": "Ada", "LastName": name,
                               "Email": f"{name.lower()}@example.com"})
    made.raise_for_status()
    crm_id = made.json()["id"]
    gateway_id = wait_until(lambda: record(stack, "Contact", crm_id).get("Gateway_Id__c"), 60,
                            f"contact {name} to reach the gateway", stack)
    return crm_id, gateway_id


def record(stack: Stack, sobject: str, record_id: str) -> dict[str, Any]:
    resp = stack.sf_call("GET", f"/sim/records/{sobject}/{record_id}")
    return resp.json() if resp.status_code == 200 else {}


def register(stack: Stack, customer_id: str, sort_code: str, account: str,
             key: str | None = None, **extra: Any) -> Any:
    return stack.api("POST", "/api/v1/bank-accounts", json={
        "customer_id": customer_id, "account_holder_name": "Ada Payer",
        "sort_code": sort_code, "account_number": account, **extra},
        headers={"Idempotency-Key": key} if key else {})


def gateway_bank_accounts(stack: Stack) -> list[dict[str, Any]]:
    return stack.http.get(f"{stack.gw}/sim/resources/customer_bank_accounts",
                          timeout=10).json()["customer_bank_accounts"]


def queue_empty(stack: Stack) -> bool:
    return not stack.api("GET", "/api/v1/queue-items?limit=1").json()["items"]


def mandate_for(stack: Stack, bank_record_id: str) -> tuple[str, str]:
    """A Mandate__c created by a CRM user on the bank account; (CRM id, gateway id)."""
    made = stack.sf_call("POST", "/sim/records/Mandate__c",
                         json={"Bank_Account__c": bank_record_id})
    made.raise_for_status()
    crm_id = made.json()["id"]
    gateway_id = wait_until(lambda: record(stack, "Mandate__c", crm_id).get("Gateway_Id__c"),
                            60, "the mandate to reach the gateway", stack)
    return crm_id, gateway_id


def test_bank_account_then_mandate_end_to_end(fresh: Stack) -> None:
    stack = fresh
    contact_id, customer_gw = new_contact(stack, "Happy")
    resp = register(stack, contact_id, f"{HAPPY[0][:2]}-{HAPPY[0][2:4]}-{HAPPY[0][4:]}",
                    HAPPY[1])
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert out["customer_gateway_id"] == customer_gw
    assert out["account_number_ending"] == HAPPY[1][-2:]
    bank = wait_until(lambda: (r := record(stack, "Bank_Account__c", out["record_id"]))
                      .get("Gateway_Id__c") and r, 60, "the bank account write-back", stack)
    assert bank["Gateway_Id__c"] == out["gateway_id"]
    assert bank["Account_Number_Ending__c"] == HAPPY[1][-2:]
    assert bank["Contact__c"] == contact_id and bank["Status__c"] == "Active"
    assert bank["Bank_Name__c"] == out["bank_name"]
    assert not bank.get("Sort_Code__c") and not bank.get("Account_Number__c")

    _, mandate_gw = mandate_for(stack, out["record_id"])
    mandate = stack.http.get(f"{stack.gw}/sim/resources/mandates/{mandate_gw}",
                             timeout=10).json()["mandate"]
    assert mandate["links"]["customer_bank_account"] == out["gateway_id"]
    wait_until(lambda: queue_empty(stack), 60, "the queue to drain", stack)


def test_gateway_down_answers_503_and_nothing_is_stored(fresh: Stack) -> None:
    stack = fresh
    contact_id, _ = new_contact(stack, "Down")
    stack.http.post(f"{stack.gw}/sim/faults", json={"fail_next": [
        {"status": 503, "count": 1, "path_prefix": "/customer_bank_accounts"}]},
        timeout=10).raise_for_status()
    resp = register(stack, contact_id, *DOWN)
    assert resp.status_code == 503, resp.text
    error = resp.json()["error"]
    assert error["code"] == "gateway_unavailable" and "again" in error["message"]
    assert gateway_bank_accounts(stack) == []
    with stack.rt.db.transaction() as session:
        for table in ("api_queue_items", "api_queue_archive", "record_links"):
            assert session.scalar(sa.text(
                f"SELECT COUNT(*) FROM {table} WHERE object = 'BankAccount'")) == 0  # noqa: S608
    placeholder = record(stack, "Bank_Account__c", error["details"]["created_record_id"])
    assert placeholder["Status__c"] == "Pending" and not placeholder.get("Gateway_Id__c")
    assert DOWN[1] not in str(placeholder)
    assert hits(redis_text(stack.rt.redis), [DOWN[1]]) == []
    # Trying again, on the record made the first time, goes through.
    again = register(stack, contact_id, *DOWN, record_id=error["details"]["created_record_id"])
    assert again.status_code == 201, again.text


def test_simultaneous_retries_through_gunicorn_make_one_account(fresh: Stack) -> None:
    """A client that fires its retry before the first answer came: both web workers get one
    request each with the same Idempotency-Key."""
    stack = fresh
    contact_id, _ = new_contact(stack, "Together")
    stack.http.post(f"{stack.gw}/sim/faults", json={"latency_ms": 800},
                    timeout=10).raise_for_status()
    start = threading.Barrier(4)
    answers: list[Any] = []

    def send() -> None:
        start.wait()
        answers.append(register(stack, contact_id, *TOGETHER, key="e2e-together"))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stack.http.delete(f"{stack.gw}/sim/faults", timeout=10).raise_for_status()
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [
        a.text for a in answers]
    done = next(a for a in answers if a.status_code == 201).json()
    replay = register(stack, contact_id, *TOGETHER, key="e2e-together")
    assert replay.status_code == 201 and replay.json() == done
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert len(gateway_bank_accounts(stack)) == 1
    crm = stack.sf_call("GET", "/sim/records/Bank_Account__c").json()["records"]
    assert [r["Id"] for r in crm] == [done["record_id"]]


def test_new_details_disable_the_replaced_account(fresh: Stack) -> None:
    stack = fresh
    contact_id, _ = new_contact(stack, "Replaced")
    first = register(stack, contact_id, *REPLACED)
    assert first.status_code == 201, first.text
    record_id, old = first.json()["record_id"], first.json()["gateway_id"]
    wait_until(lambda: record(stack, "Bank_Account__c", record_id).get("Gateway_Id__c") == old,
               60, "the first write-back", stack)
    second = register(stack, contact_id, *REPLACEMENT, record_id=record_id)
    assert second.status_code == 201, second.text
    new = second.json()["gateway_id"]

    def disabled() -> bool:
        return stack.http.get(f"{stack.gw}/sim/resources/customer_bank_accounts/{old}",
                              timeout=10).json()["customer_bank_account"]["enabled"] is False

    wait_until(disabled, 60, "the replaced account to be disabled", stack)
    wait_until(lambda: queue_empty(stack), 60, "the queue to drain", stack)
    bank = record(stack, "Bank_Account__c", record_id)
    assert bank["Gateway_Id__c"] == new and bank["Status__c"] == "Active"
    causes = [e["cause"] for e in stack.api(
        "GET", f"/api/v1/records/BankAccount/{record_id}/history").json()["history"]]
    assert f"replaced customer_bank_accounts {old} disabled at the gateway" in causes


# --- the leak test ----------------------------------------------------------------------------

def test_no_account_number_is_kept_anywhere(fresh: Stack) -> None:
    stack = fresh
    assert stack.rt.settings.store_bank_details is False
    contacts = [new_contact(stack, f"Leak{n}") for n in range(len(LEAK_ACCOUNTS))]
    # The first account goes onto a record a CRM Flow made, and its write-back fails twice
    # (row lock) before it succeeds: error logs get written on the way.
    flow_record = stack.sf_call("POST", "/sim/records/Bank_Account__c", json={
        "Contact__c": contacts[0][0]}).json()["id"]
    stack.sf_call("POST", "/sim/faults", json={"unable_to_lock_row": 2}).raise_for_status()
    bank_records = []
    for n, ((contact_id, customer_gw), (sort_code, account)) in enumerate(
            zip(contacts, LEAK_ACCOUNTS, strict=True)):
        resp = register(stack, customer_gw if n % 2 else contact_id,
                        f"{sort_code[:2]} {sort_code[2:4]} {sort_code[4:]}",
                        f"{account[:4]} {account[4:]}", key=f"leak-{n}",
                        **({"record_id": flow_record} if n == 0 else {}))
        assert resp.status_code == 201, resp.text
        record_id = resp.json()["record_id"]
        bank_records.append(record_id)
        wait_until(lambda r=record_id: record(stack, "Bank_Account__c", r).get(
            "Gateway_Id__c"), 60, "the bank account write-back", stack)
        # The same details again, on a new record: the gateway's duplicate answer, passed on.
        dup = register(stack, contact_id, sort_code, account)
        assert dup.status_code == 409, dup.text
    invalid = register(stack, contacts[0][0], *INVALID)
    assert invalid.status_code == 422, invalid.text
    stack.http.post(f"{stack.gw}/sim/faults", json={"fail_next": [
        {"status": 503, "count": 1, "path_prefix": "/customer_bank_accounts"}]}, timeout=10)
    down = register(stack, contacts[0][0], *DOWN, key="leak-down")
    assert down.status_code == 503, down.text
    # Raw details through the API Queue are refused while the setting is off.
    queued = stack.api("POST", "/api/v1/queue", json={"changes": [{
        "object": "BankAccount", "record_id": bank_records[0], "operation": "insert",
        "fields": {"Sort_Code__c": LEAK_ACCOUNTS[0][0],
                   "Account_Number__c": LEAK_ACCOUNTS[0][1]}}]})
    assert queued.status_code == 400
    # ... and under any other name: a field named like one, free text, an IBAN.
    sort_code, account = LEAK_ACCOUNTS[1]
    for fields in ({"LastName": "Leak", "accountNumber": account},
                   {"LastName": "Leak", "Description": f"{sort_code} {account}"},
                   {"LastName": "Leak", "Notes__c": f"pay from {IBAN}"},
                   {"LastName": "Leak", "Ref1__c": sort_code, "Ref2__c": account}):
        sneaked = stack.api("POST", "/api/v1/queue", json={"changes": [{
            "object": "Customer", "record_id": contacts[1][0], "operation": "update",
            "fields": fields}]})
        assert sneaked.status_code == 400, sneaked.text
        assert sneaked.json()["error"]["code"] == "bank_details_not_allowed"
    for record_id in bank_records:
        mandate_for(stack, record_id)
    wait_until(lambda: queue_empty(stack), 60, "the queue to drain", stack)
    with stack.rt.db.transaction() as session:
        retried = session.scalar(sa.text(
            "SELECT MAX(attempts) FROM api_queue_archive WHERE object = 'BankAccount'"))
    assert retried == 2  # two failed write-backs were logged on the row

    def swept() -> list[str]:
        return sweep(Needles.of(USED, ibans=[IBAN]), engine=stack.rt.db.engine,
                     redis_conn=stack.rt.redis, crm_get=lambda path: stack.sf_call("GET", path)
                     .json(), log_dir=stack.home / "log")

    assert swept() == []
    # The sweep would see a leak: one planted in an RQ-like compressed value is found.
    stack.rt.redis.set("probe", zlib.compress(f"notes: {IBAN}".encode()))
    try:
        assert any(hit.startswith("probe:") for hit in swept())
    finally:
        stack.rt.redis.delete("probe")
    # The details did reach the gateway (only it may know them): the search is not vacuous.
    endings = {a["account_number_ending"] for a in gateway_bank_accounts(stack)}
    assert {account[-2:] for _, account in LEAK_ACCOUNTS} <= endings
