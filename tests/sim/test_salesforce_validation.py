"""The emulated org checks every write against its declared schema, as Salesforce does.

Driven by simple-salesforce: each refusal must come back in Salesforce's error shape, which
simple-salesforce turns into its own exception (400 -> SalesforceMalformedRequest) for the
single-record resource, and as ``success: false`` with ``errors`` per record in sObject
Collections. The sources of every rule and message are cited in sim/salesforce/validation.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.salesforce_org import (
    distrust_environment,
    error_of,
    integration_sf,
    trusting_session,
)


@pytest.fixture
def sf(org: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Salesforce]:
    distrust_environment(monkeypatch)
    session = trusting_session(org[1])
    session.post(f"{org[0]}/sim/reset", timeout=10).raise_for_status()
    yield integration_sf(session, org[0])
    session.close()


def collection(sf: Salesforce, method: str, *records: dict[str, Any],
               all_or_none: bool = False) -> list[dict[str, Any]]:
    return sf.restful("composite/sobjects", method=method,  # type: ignore[no-any-return]
                      json={"allOrNone": all_or_none, "records": list(records)})


def refused(call: Any) -> dict[str, Any]:
    """The error body of a single-record call simple-salesforce raised as malformed."""
    with pytest.raises(SalesforceMalformedRequest) as exc:
        call()
    assert len(exc.value.content) == 1
    return error_of(exc)


def count(sf: Salesforce, sobject: str) -> int:
    return int(sf.query(f"SELECT COUNT() FROM {sobject}")["totalSize"])  # noqa: S608


REQUIRED = {"message": "Required fields are missing: [LastName]",
            "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName"]}


def test_a_required_field_must_be_given_and_cannot_be_emptied(sf: Salesforce) -> None:
    assert refused(lambda: sf.Contact.create({"FirstName": "Ada"})) == REQUIRED
    assert refused(lambda: sf.Contact.create({"LastName": ""})) == REQUIRED  # "" is null
    contact = sf.Contact.create({"LastName": "Lovelace"})["id"]
    assert refused(lambda: sf.Contact.update(contact, {"LastName": None})) == REQUIRED
    assert sf.Contact.update(contact, {"FirstName": "Ada"}) == 204  # not touching it is fine
    results = collection(sf, "POST", {"attributes": {"type": "Contact"}, "FirstName": "X"},
                         {"attributes": {"type": "Contact"}, "LastName": "Kept"})
    assert results[0] == {"id": None, "success": False, "errors": [
        {"statusCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName"],
         "message": "Required fields are missing: [LastName]"}]}
    assert results[1]["success"] is True
    assert count(sf, "Contact") == 2


def test_a_restricted_picklist_takes_only_its_values(sf: Salesforce) -> None:
    assert refused(lambda: sf.Payment__c.create({"Status__c": "Pending"})) == {
        "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["Status__c"],
        "message": "Status: bad value for restricted picklist field: Pending"}
    payment = sf.Payment__c.create({"Status__c": "Pending Submission"})["id"]
    (result,) = collection(sf, "PATCH", {"attributes": {"type": "Payment__c"}, "id": payment,
                                         "Currency__c": "EUR"})
    assert result["errors"] == [{
        "statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["Currency__c"],
        "message": "Currency: bad value for restricted picklist field: EUR"}]


def test_text_longer_than_its_field_is_refused(sf: Salesforce) -> None:
    postcode = "SW1A 1AA-0000000000X"  # 20 characters: the field's length
    assert sf.Contact.create({"LastName": "L", "MailingPostalCode": postcode})["success"]
    assert refused(lambda: sf.Contact.create(
        {"LastName": "L", "MailingPostalCode": postcode + "Y"})) == {
        "errorCode": "STRING_TOO_LONG", "fields": ["MailingPostalCode"],
        "message": f"Mailing Zip/Postal Code: data value too large: {postcode}Y "
                   "(max length=20)"}
    (result,) = collection(sf, "POST", {"attributes": {"type": "Contact"}, "LastName": "L" * 81})
    assert result["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert result["errors"][0]["message"].endswith("(max length=80)")


def test_an_email_field_takes_only_an_address(sf: Salesforce) -> None:
    assert refused(lambda: sf.Contact.create({"LastName": "L", "Email": "not an address"})) == {
        "errorCode": "INVALID_EMAIL_ADDRESS", "fields": ["Email"],
        "message": "Email: invalid email address: not an address"}


def test_a_value_of_the_wrong_type_fails_the_whole_request(sf: Salesforce) -> None:
    assert refused(lambda: sf.Payment__c.create({"Amount__c": "abc"})) == {
        "errorCode": "JSON_PARSER_ERROR",
        "message": "Cannot deserialize instance of currency from VALUE_STRING value abc or "
                   "request may be missing a required field"}
    date_error = refused(lambda: sf.Payment__c.create({"Charge_Date__c": "01/05/2026"}))
    assert date_error["message"].startswith(
        "Cannot deserialize instance of date from VALUE_STRING value 01/05/2026")
    array_error = refused(lambda: sf.Contact.create({"LastName": ["L"]}))
    assert array_error["message"].startswith("Cannot deserialize instance of string from "
                                             "START_ARRAY value or")
    # In Collections the body is parsed before any record is written: nothing is.
    with pytest.raises(SalesforceMalformedRequest) as exc:
        collection(sf, "POST", {"attributes": {"type": "Payment__c"}, "Amount__c": 1},
                   {"attributes": {"type": "Payment__c"}, "Interval__c": 1},
                   {"attributes": {"type": "Payment__c"}, "Amount__c": True})
    assert error_of(exc)["errorCode"] == "JSON_PARSER_ERROR"
    assert "from VALUE_TRUE value True" in error_of(exc)["message"]
    assert count(sf, "Payment__c") == 0
    # A number given as text is still a number, and is kept as one.
    made = sf.Payment__c.create({"Amount__c": "12.50", "Charge_Date__c": "2026-05-01"})["id"]
    assert sf.Payment__c.get(made)["Amount__c"] == 12.5


def test_a_lookup_must_name_a_live_record_of_its_object(sf: Salesforce) -> None:
    def mandate_on(value: str) -> dict[str, Any]:
        return refused(lambda: sf.Mandate__c.create({"Bank_Account__c": value}))

    assert mandate_on("not-an-id") == {
        "errorCode": "MALFORMED_ID", "fields": ["Bank_Account__c"],
        "message": "Bank Account: id value of incorrect type: not-an-id"}
    contact = sf.Contact.create({"LastName": "Owner"})["id"]
    assert mandate_on(contact)["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    account = sf.Bank_Account__c.create({"Contact__c": contact})["id"]
    missing = account[:9] + ("A" if account[9] != "A" else "B") + account[10:15]
    assert mandate_on(missing) == {"errorCode": "INVALID_CROSS_REFERENCE_KEY",
                                   "fields": ["Bank_Account__c"],
                                   "message": "invalid cross reference id"}
    made = sf.Mandate__c.create({"Bank_Account__c": account[:15]})["id"]
    assert sf.Mandate__c.get(made)["Bank_Account__c"] == account  # kept as the 18-char id
    sf.Bank_Account__c.delete(account)
    assert mandate_on(account)["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"


def test_all_or_none_rolls_back_a_batch_with_one_invalid_record(sf: Salesforce) -> None:
    results = collection(sf, "POST",
                         {"attributes": {"type": "Contact"}, "LastName": "A"},
                         {"attributes": {"type": "Contact"}, "Email": "b@example.com"},
                         {"attributes": {"type": "Contact"}, "LastName": "C"},
                         all_or_none=True)
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK", "REQUIRED_FIELD_MISSING",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"]
    assert count(sf, "Contact") == 0


def test_describe_reports_what_the_org_enforces(sf: Salesforce) -> None:
    fields = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    assert (fields["LastName"]["nillable"], fields["LastName"]["length"]) == (False, 80)
    assert fields["FirstName"]["nillable"] is True
    assert fields["Name"]["createable"] is False
    status = {f["name"]: f for f in sf.Payment__c.describe()["fields"]}["Status__c"]
    assert status["type"] == "picklist" and status["restrictedPicklist"] is True
    assert "Pending Submission" in [v["value"] for v in status["picklistValues"]]
    mandate = {f["name"]: f for f in sf.Payment__c.describe()["fields"]}["Mandate__c"]
    assert mandate["referenceTo"] == ["Mandate__c"]


def test_the_control_api_is_held_to_the_same_rules(org: tuple[str, str],
                                                    sf: Salesforce) -> None:
    """Records a test makes "as a CRM user" must be records a real org could hold."""
    session: requests.Session = trusting_session(org[1])
    answer = session.post(f"{org[0]}/sim/records/Contact", json={"FirstName": "X"}, timeout=10)
    assert answer.status_code == 400 and answer.json() == [REQUIRED]
