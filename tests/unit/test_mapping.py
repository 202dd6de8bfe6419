import pytest

from app.mapping import (
    GATEWAY_ID_FIELD,
    OBJECTS,
    QUEUEABLE_OBJECTS,
    STATUS_FIELD,
    MappingError,
    pounds_to_pence,
    status_label,
    to_gateway,
    writeback_fields,
)

LINKS = {("Mandate", "a0C000000000001AAA"): "MD123", ("Customer", "003000000000001AAA"): "CU1"}


def resolve(obj: str, crm_id: str) -> str:
    return LINKS[(obj, crm_id)]


def test_payment_maps_pounds_to_pence_and_resolves_the_mandate() -> None:
    body = to_gateway(OBJECTS["Payment"], {
        "Mandate__c": "a0C000000000001AAA", "Amount__c": "12.34", "Reference__c": "INV-1",
        "Charge_Date__c": "2026-12-01", "Name": "ignored: not mapped",
    }, resolve)
    assert body == {"amount": 1234, "currency": "GBP", "charge_date": "2026-12-01",
                    "reference": "INV-1", "links": {"mandate": "MD123"}}


def test_update_sends_only_updatable_changed_fields() -> None:
    obj = OBJECTS["Customer"]
    fields = {"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@example.com"}
    assert to_gateway(obj, fields, resolve, for_update=True, only=["Email"]) == {
        "email": "ada@example.com"}
    # Payment fields cannot change after creation at the gateway: nothing to send.
    assert to_gateway(OBJECTS["Payment"], {"Amount__c": 5}, resolve, for_update=True) == {}


@pytest.mark.parametrize(("value", "error"), [
    ("abc", "is not a number"), ("1.234", "more than two decimal places"),
    ("NaN", "is not a number"),
])
def test_bad_amounts_name_the_crm_field(value: str, error: str) -> None:
    with pytest.raises(MappingError) as exc:
        to_gateway(OBJECTS["Payment"], {"Amount__c": value}, resolve)
    assert exc.value.crm_field == "Amount__c"
    assert error in exc.value.message


def test_pence_conversion_is_exact() -> None:
    assert pounds_to_pence("0.1") == 10
    assert pounds_to_pence(19.99) == 1999
    assert pounds_to_pence(100) == 10000


def test_writeback_maps_status_to_picklist_label_and_gateway_id() -> None:
    fields = writeback_fields(OBJECTS["Payment"], {
        "id": "PM1", "status": "pending_submission", "charge_date": "2026-12-01",
        "reference": "R", "amount": 100})
    assert fields == {GATEWAY_ID_FIELD: "PM1", STATUS_FIELD: "Pending Submission",
                      "Charge_Date__c": "2026-12-01", "Reference__c": "R"}
    assert status_label("paid_out", {"paid_out": "Paid"}) == "Paid"


def test_every_queueable_object_has_a_crm_object_and_gateway_resource() -> None:
    assert set(QUEUEABLE_OBJECTS) == {"Customer", "BankAccount", "Mandate", "Payment",
                                      "Subscription", "Refund"}
    for name in QUEUEABLE_OBJECTS:
        obj = OBJECTS[name]
        assert obj.sobject and obj.resource
        assert GATEWAY_ID_FIELD in obj.crm_fields
        for fm in obj.fields:
            if fm.link:
                assert fm.link in OBJECTS


def test_only_bank_account_number_and_sort_code_are_sensitive() -> None:
    sensitive = {name: obj.sensitive_crm_fields for name, obj in OBJECTS.items()
                 if obj.sensitive_crm_fields}
    assert sensitive == {"BankAccount": frozenset({"Sort_Code__c", "Account_Number__c"})}


@pytest.mark.parametrize(("crm", "expected"), [
    ({"MailingCountry": "United Kingdom"}, "GB"),
    ({"MailingCountry": "germany"}, "DE"),
    ({"MailingCountry": "GBR"}, "GB"),
    ({"MailingCountryCode": "ie"}, "IE"),
    # The org's ISO code wins over a free-text name that disagrees with it.
    ({"MailingCountry": "Great Britain (old)", "MailingCountryCode": "GB"}, "GB"),
])
def test_country_reaches_the_gateway_as_iso_3166_alpha_2(crm: dict, expected: str) -> None:
    # GoCardless: customers.country_code is "ISO 3166-1 alpha-2 code"
    # (https://developer.gocardless.com/api-reference/#core-endpoints-customers).
    body = to_gateway(OBJECTS["Customer"], {"LastName": "L", **crm}, resolve)
    assert body["country_code"] == expected


def test_a_country_gocardless_cannot_know_is_refused_by_field_name() -> None:
    with pytest.raises(MappingError) as caught:
        to_gateway(OBJECTS["Customer"], {"LastName": "L", "MailingCountry": "Narnia"}, resolve)
    assert caught.value.crm_field == "MailingCountry" and "ISO 3166-1" in str(caught.value)
