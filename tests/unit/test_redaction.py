import logging

import pytest

from app.logs import ContextFilter, log_context
from app.redaction import MASK, bank_detail_fields, redact, redact_value, sensitive_key


@pytest.mark.parametrize("text", [
    "sort code 12-34-56 account 31926819",
    "details: 123456 31926819",
    "12 34 56, 31926819",
    '{"account_number": "31926819", "branch_code": "123456"}',
    "account_number=31926819",
    "IBAN GB33BUKB20201555555555",
    "iban: GB33 BUKB 2020 1555 5555 55",
])
def test_bank_details_are_masked(text: str) -> None:
    out = redact(text)
    assert "31926819" not in out and "20201555555555" not in out.replace(" ", "")
    assert MASK in out


def test_ordinary_numbers_survive() -> None:
    text = "payment PM123 of 1234 pence, item 42, retry in 300s"
    assert redact(text) == text


def test_nested_values_are_masked_by_key_and_content() -> None:
    data = {"fields": {"Account_Number__c": "31926819", "Name": "x"},
            "note": ["sort code 12-34-56 account 31926819"]}
    out = redact_value(data)
    assert out["fields"] == {"Account_Number__c": MASK, "Name": "x"}
    assert "31926819" not in str(out)


def test_log_lines_carry_ids_and_never_details(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("paybridge.test")
    handler_filter = ContextFilter("test")
    caplog.handler.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO), log_context(item_id=42, job_id="pb-1"):
            logger.info("sending %s", "sort code 12-34-56 account 31926819")
    finally:
        caplog.handler.removeFilter(handler_filter)
    record = caplog.records[-1]
    assert record.item_id == 42 and record.job_id == "pb-1"
    assert "31926819" not in caplog.text


@pytest.mark.parametrize("name", ["Bank_Sort_Code", "accountNumber", "IBAN__c", "iban",
                                  "Account_Number__c", "branch_code", "Payer_Acct_No__c"])
def test_a_field_name_saying_bank_details_is_sensitive_however_spelled(name: str) -> None:
    assert sensitive_key(name)


@pytest.mark.parametrize("name", ["Sibanda__c", "Account_Number_Ending__c", "Bank_Name__c",
                                  "Account_Holder_Name__c", "Contact__c", "AccountName"])
def test_names_that_only_resemble_bank_details_are_not(name: str) -> None:
    assert not sensitive_key(name)


def test_bank_detail_fields_names_each_field_and_pairs_split_values() -> None:
    assert bank_detail_fields({"A": "200000", "B": "55779911", "C": "x"}) == ["A", "B"]
    assert bank_detail_fields({"A": "200000", "Amount": "12.50"}) == []
    assert bank_detail_fields({"Sort_Code__c": "200000"},
                              allowed=frozenset({"Sort_Code__c"})) == []
