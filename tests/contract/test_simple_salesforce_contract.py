"""simple-salesforce, Salesforce's most used Python client, drives the org emulator through
every call Paybridge makes (app/clients/salesforce.py): the client-credentials login, sObject
create and get, a SOQL query, and sObject Collections updates, with the error bodies the
client turns into its own exception classes. The client, not our code, judges the shapes.

The org is reached under Salesforce host names (``route_hosts``): simple-salesforce builds
``https://<domain>.salesforce.com`` itself, and the emulator tells an org's My Domain host
from login.salesforce.com by the name it was called by.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from tests.salesforce_org import (
    CLIENT_ID,
    CLIENT_SECRET,
    distrust_environment,
    error_of,
    route_hosts,
    trusting_session,
)

MY_DOMAIN = "acme.my.salesforce.com"
LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")
NOT_ON_THIS_DOMAIN = {"error": "invalid_grant",
                      "error_description": "request not supported on this domain"}



@pytest.fixture
def http(org: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[requests.Session]:
    """A session that reaches the org under its My Domain host and the generic login hosts;
    the org is reset."""
    distrust_environment(monkeypatch)
    session = route_hosts(trusting_session(org[1]), org[0], MY_DOMAIN, *LOGIN_HOSTS)
    session.post(f"{org[0]}/sim/reset", timeout=10).raise_for_status()
    yield session
    session.close()


@pytest.fixture
def sf(http: requests.Session) -> Salesforce:
    """simple-salesforce's own client-credentials login (HTTP Basic) on the My Domain host."""
    return Salesforce(consumer_key=CLIENT_ID, consumer_secret=CLIENT_SECRET,
                      domain=MY_DOMAIN.removesuffix(".salesforce.com"), session=http,
                      version="59.0")


def token(http: requests.Session, host: str, **form: str) -> requests.Response:
    return http.post(f"https://{host}/services/oauth2/token", data=form, timeout=10)


# -- login ----------------------------------------------------------------------------------------


def test_the_native_client_credentials_login_works_on_my_domain(sf: Salesforce) -> None:
    assert sf.auth_type == "client-credentials"
    assert sf.sf_instance == MY_DOMAIN  # the token answer's instance_url
    assert sf.query("SELECT Id FROM Contact")["totalSize"] == 0


def test_client_credentials_may_come_in_the_form_or_as_basic(http: requests.Session) -> None:
    in_form = token(http, MY_DOMAIN, grant_type="client_credentials", client_id=CLIENT_ID,
                    client_secret=CLIENT_SECRET)
    assert in_form.status_code == 200 and in_form.json()["instance_url"] == f"https://{MY_DOMAIN}"
    as_basic = http.post(f"https://{MY_DOMAIN}/services/oauth2/token", timeout=10,
                         data={"grant_type": "client_credentials"},
                         auth=(CLIENT_ID, CLIENT_SECRET))
    assert as_basic.status_code == 200 and as_basic.json()["access_token"]
    wrong = http.post(f"https://{MY_DOMAIN}/services/oauth2/token", timeout=10,
                      data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, "nope"))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("host", LOGIN_HOSTS)
def test_the_generic_login_hosts_refuse_client_credentials(http: requests.Session,
                                                           host: str) -> None:
    in_form = token(http, host, grant_type="client_credentials", client_id=CLIENT_ID,
                    client_secret=CLIENT_SECRET)
    assert (in_form.status_code, in_form.json()) == (400, NOT_ON_THIS_DOMAIN)
    as_basic = http.post(f"https://{host}/services/oauth2/token", timeout=10,
                         data={"grant_type": "client_credentials"},
                         auth=(CLIENT_ID, CLIENT_SECRET))
    assert (as_basic.status_code, as_basic.json()) == (400, NOT_ON_THIS_DOMAIN)
    # A person's password login is still taken there.
    person = token(http, host, grant_type="password", username="demo@example.com",
                   password="demo")
    assert person.status_code == 200


def test_a_refused_native_login_raises_the_clients_own_exception(
        http: requests.Session) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as refused:
        Salesforce(consumer_key=CLIENT_ID, consumer_secret="wrong", domain="acme.my",
                   session=http)
    assert refused.value.code == "invalid_grant"


# -- the calls Paybridge makes ------------------------------------------------------------------


def test_create_and_get_a_record(sf: Salesforce) -> None:
    created = sf.Contact.create({"FirstName": "Ada", "LastName": "Lovelace"})
    assert created == {"id": created["id"], "success": True, "errors": []}
    record = sf.Contact.get(created["id"])
    assert (record["Id"], record["Name"]) == (created["id"], "Ada Lovelace")
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Contact.create({"FirstName": "Ada"})
    assert error_of(refused)["errorCode"] == "REQUIRED_FIELD_MISSING"
    sf.Contact.delete(created["id"])
    with pytest.raises(SalesforceResourceNotFound) as deleted:
        sf.Contact.get(created["id"])
    assert error_of(deleted)["errorCode"] == "ENTITY_IS_DELETED"


def test_find_a_record_by_a_field_with_soql(sf: Salesforce) -> None:
    """Paybridge's find_id: one ``SELECT Id ... WHERE field = '<escaped>' LIMIT 1``."""
    made = sf.Contact.create({"LastName": "O'Brien", "Gateway_Id__c": "CU'1\\x"})["id"]
    quoted = "CU\\'1\\\\x"  # the value as Paybridge escapes it
    found = sf.query(f"SELECT Id FROM Contact WHERE Gateway_Id__c = '{quoted}' LIMIT 1")  # noqa: S608
    assert [r["Id"] for r in found["records"]] == [made]
    assert sf.query(format_soql("SELECT Id FROM Contact WHERE Gateway_Id__c = {} LIMIT 1",
                                "CU'1\\x"))["totalSize"] == 1
    with pytest.raises(SalesforceMalformedRequest) as bad:
        sf.query("SELECT Id FROM Contact WHERE Nope__c = 'x'")
    assert error_of(bad)["errorCode"] == "INVALID_FIELD"


def test_update_records_with_sobject_collections(sf: Salesforce) -> None:
    contact = sf.Contact.create({"LastName": "A"})["id"]
    mandate = sf.Mandate__c.create({"Reference__c": "M"})["id"]
    results = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False,
                         "records": [
        {"attributes": {"type": "Contact"}, "id": contact, "Gateway_Id__c": "CU1"},
        {"attributes": {"type": "Mandate__c"}, "id": mandate, "Status__c": "Activ"},
    ]})
    assert results[0] == {"id": contact, "success": True, "errors": []}
    assert results[1]["success"] is False
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert sf.api_usage["api-usage"].used > 0  # Sforce-Limit-Info, parsed by the client
    chunks = [{"attributes": {"type": "Contact" if n % 2 else "Mandate__c"},
               "id": contact if n % 2 else mandate} for n in range(11)]
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.restful("composite/sobjects", method="PATCH", json={"records": chunks})
    assert error_of(refused)["errorCode"] == "INVALID_BATCH_REQUEST"


def test_session_and_allocation_errors_reach_the_client_as_its_exceptions(
        org: tuple[str, str], http: requests.Session, sf: Salesforce) -> None:
    def control(**faults: Any) -> None:
        http.post(f"{org[0]}/sim/faults", json=faults, timeout=10).raise_for_status()

    control(request_limit_exceeded=True)
    with pytest.raises(SalesforceRefusedRequest) as limited:
        sf.Contact.create({"LastName": "L"})
    assert error_of(limited)["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    http.delete(f"{org[0]}/sim/faults", timeout=10).raise_for_status()
    # An expired session is a 401 INVALID_SESSION_ID: with a token it was handed (as
    # Paybridge hands it one) the client raises; with its own login it logs in again.
    handed = Salesforce(instance_url=f"https://{MY_DOMAIN}", session_id=sf.session_id,
                        session=http, version="59.0")
    control(expire_sessions=True)
    with pytest.raises(SalesforceExpiredSession) as expired:
        handed.Contact.create({"LastName": "L"})
    assert error_of(expired)["errorCode"] == "INVALID_SESSION_ID"
    logins = http.get(f"{org[0]}/sim/stats", timeout=10).json()["api_calls"]["oauth"]
    assert sf.Contact.create({"LastName": "L"})["success"]
    assert http.get(f"{org[0]}/sim/stats", timeout=10).json()["api_calls"]["oauth"] == logins + 1
