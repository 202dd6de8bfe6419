import logging

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.logs import ContextFilter, log_context
from app.redaction import (
    MASK,
    _mask,
    bank_detail_fields,
    redact,
    redact_value,
    sensitive_key,
)


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


# Pieces that make up bank details, ids and timestamps, so that random text often comes close.
_PIECES = st.sampled_from([
    "1", "12", "123456", "31926819", "20201555555555", "-", " ", "/", ":", "=", '"', "\\\"",
    "GB", "GB33", "BUKB", "EV", "PM0001ABC", "T", "Z", ".", "+00:00", "2026-11-22T10:00:00",
    "sort", "Sort", "SORT", "code", "_", "account", "Account", "acct", "a/c", "A/C", "no.",
    "number", "iban", "IBAN", "branch", "Number__c", "\u017f", "\u0130", "K", "x", "\n",
])


@settings(max_examples=3000, deadline=None)
@given(st.lists(_PIECES, max_size=14).map("".join))
@example("sort code 12-34-56 account 31926819")
@example("\u017fort code is 123456")
@example("\u017fort_code=12")
@example("\u0130BAN: 12")
@example("a/c 12 34 56")
@example("Acct no. 12-34-56-78")
@example("branch code 12 34 56")
@example("GB33 BUKB 2020 1555 5555 55")
def test_the_shortcut_masks_what_the_four_passes_mask(text: str) -> None:
    assert redact(text) == _mask(text)


@pytest.mark.parametrize("value", [
    "GB33BUKB20201555555555", "12-34-56 31926819", "account 31926819", "a/c 12345678",
    "acct: 31926819", "iban=GB33BUKB20201555555555", "\u017fort code 123456",
    "\u017fort_code=12", "a/c 12 34 56",
    "2026-11-22T10:00:00Z sort code 12-34-56 account 31926819",
])
def test_bank_details_in_an_id_or_a_timestamp_are_still_masked(value: str) -> None:
    out = redact_value({"id": value, "created_at": value, "links": {"payment": value}})
    assert all(MASK in v for v in (out["id"], out["created_at"], out["links"]["payment"]))


@pytest.mark.parametrize("value", ["EV0001ABC2DEFG", "2026-11-22T10:00:00.123Z",
                                   "PMB900F47316000000000", "payment_confirmed"])
def test_ids_and_timestamps_are_left_as_they_are(value: str) -> None:
    assert redact(value) == value
