"""Paybridge's Salesforce client against the org emulator, over TLS: what it sends must be
what real Salesforce accepts, and what Salesforce answers must reach the queues classified.

The emulator follows Salesforce's documentation (see ``sim/salesforce``), not this client;
``test_simple_salesforce_contract.py`` holds the same emulator to simple-salesforce.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.clients.errors import PermanentError
from app.clients.salesforce import CrmWrite, SalesforceClient
from tests.salesforce_org import (
    CLIENT_ID,
    CLIENT_SECRET,
    distrust_environment,
    route_hosts,
    trusting_session,
)


@pytest.fixture(autouse=True)
def ca_bundle_env(monkeypatch: pytest.MonkeyPatch) -> None:
    distrust_environment(monkeypatch)


@pytest.fixture
def control(org: tuple[str, str]) -> Iterator[Any]:
    """Calls to the emulator's control API (records as a CRM user makes them), org reset."""
    session = trusting_session(org[1])
    session.post(f"{org[0]}/sim/reset", timeout=10).raise_for_status()

    def call(method: str, path: str, **kwargs: Any) -> Any:
        response = session.request(method, f"{org[0]}{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    yield call
    session.close()


@pytest.fixture
def crm(org: tuple[str, str]) -> SalesforceClient:
    return SalesforceClient(org[0], CLIENT_ID, CLIENT_SECRET, ca_bundle=org[1], timeout=10)


def test_a_mixed_batch_is_sent_grouped_by_type_and_answered_in_its_own_order(
        crm: SalesforceClient, control: Any) -> None:
    """Rows come in id order, so one batch can switch types on every record: more than the
    ten chunks Salesforce processes per sObject Collections request."""
    contacts = control("POST", "/sim/records/Contact/bulk", json={
        "records": [{"LastName": f"C{n}"} for n in range(8)]})["ids"]
    mandates = control("POST", "/sim/records/Mandate__c/bulk", json={
        "records": [{"Reference__c": f"M{n}"} for n in range(8)]})["ids"]
    writes = []
    for n in range(8):  # Contact, Mandate__c, Contact, ...: 16 runs of one type
        writes.append(CrmWrite("Contact", contacts[n], {"Gateway_Id__c": f"CU{n}"}))
        writes.append(CrmWrite("Mandate__c", mandates[n], {"Gateway_Id__c": f"MD{n}"}))
    results = crm.update_many(writes)
    assert [r.ok for r in results] == [True] * 16, [r.message for r in results]
    assert [r.record_id for r in results] == [w.record_id for w in writes]
    assert crm.calls == 1  # still one API call
    for write in writes:
        stored = control("GET", f"/sim/records/{write.sobject}/{write.record_id}")
        assert stored["Gateway_Id__c"] == write.fields["Gateway_Id__c"]


def test_a_failed_record_of_a_grouped_batch_is_matched_to_its_own_write(
        crm: SalesforceClient, control: Any) -> None:
    contact = control("POST", "/sim/records/Contact", json={"LastName": "Kept"})["id"]
    gone = control("POST", "/sim/records/Mandate__c", json={"Reference__c": "Gone"})["id"]
    control("DELETE", f"/sim/records/Mandate__c/{gone}")
    other = control("POST", "/sim/records/Contact", json={"LastName": "Other"})["id"]
    results = crm.update_many([
        CrmWrite("Contact", contact, {"Gateway_Id__c": "CU1"}),
        CrmWrite("Mandate__c", gone, {"Gateway_Id__c": "MD1"}),
        CrmWrite("Contact", other, {"Gateway_Id__c": "CU2"}),
    ])
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].code == "ENTITY_IS_DELETED" and not results[1].transient
    assert results[1].message == "ENTITY_IS_DELETED: entity is deleted"


def test_a_record_the_org_refuses_is_a_permanent_error_in_salesforces_words(
        crm: SalesforceClient, control: Any) -> None:
    with pytest.raises(PermanentError) as refused:
        crm.create("Contact", {"FirstName": "Ada"})
    assert refused.value.message == (
        "Salesforce: REQUIRED_FIELD_MISSING: Required fields are missing: [LastName]")
    assert refused.value.status == 400
    payment = control("POST", "/sim/records/Payment__c", json={"Amount__c": 5})["id"]
    (result,) = crm.update_many([CrmWrite("Payment__c", payment, {"Status__c": "Paid"})])
    assert (result.ok, result.transient, result.code) == (
        False, False, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    assert result.message == ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: Status: bad value for "
                              "restricted picklist field: Paid")


def test_a_locked_row_stays_transient(crm: SalesforceClient, control: Any) -> None:
    contact = control("POST", "/sim/records/Contact", json={"LastName": "Busy"})["id"]
    control("POST", "/sim/faults", json={"unable_to_lock_row": 1})
    (result,) = crm.update_many([CrmWrite("Contact", contact, {"Phone": "1"})])
    assert (result.ok, result.transient, result.code) == (False, True, "UNABLE_TO_LOCK_ROW")


def on_host(org: tuple[str, str], host: str) -> SalesforceClient:
    """Paybridge's client configured with ``https://<host>`` as SALESFORCE_LOGIN_URL."""
    crm = SalesforceClient(f"https://{host}", CLIENT_ID, CLIENT_SECRET, ca_bundle=org[1],
                           timeout=10)
    route_hosts(crm.session, org[0], host)
    return crm


def test_the_login_works_on_the_orgs_my_domain(org: tuple[str, str], control: Any) -> None:
    contact = control("POST", "/sim/records/Contact", json={"LastName": "Mine"})["id"]
    crm = on_host(org, "acme.my.salesforce.com")
    assert crm.get("Contact", contact)["LastName"] == "Mine"


@pytest.mark.parametrize("host", ["login.salesforce.com", "test.salesforce.com"])
def test_a_generic_login_host_is_refused_with_salesforces_reason_and_the_fix(
        org: tuple[str, str], host: str) -> None:
    with pytest.raises(PermanentError) as refused:
        on_host(org, host).get("Contact", "003000000000001AAA")
    message = refused.value.message
    assert "invalid_grant: request not supported on this domain" in message
    assert "SALESFORCE_LOGIN_URL must be the org's My Domain URL" in message
    assert CLIENT_SECRET not in message
