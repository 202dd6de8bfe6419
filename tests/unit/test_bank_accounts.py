"""Bank details in transit, the modulus tables in use, the `paybridge modulus` commands, and
the redaction rules that keep details out of everything written."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from app.cli import cli
from app.config import Settings
from app.logs import RedactingJsonFormatter, TextFormatter
from app.redaction import MASK, redact, redact_value
from bankaccounts import details
from bankaccounts.modulus import REASONS, InvalidBankDetails, TableFormatError, default_tables
from bankaccounts.modulus_tables import DEFAULT_WEIGHTS_FILE
from bankaccounts.schemas import BankAccountRequestSchema
from bankaccounts.tables import info, tables_for

ACCOUNT = "66374958"


# --- bank details -----------------------------------------------------------------------------

def test_details_never_show_in_repr_or_str() -> None:
    checked = details.validate("08-99-99", "6637 4958", default_tables())
    assert (checked.sort_code, checked.account_number, checked.ending) == (
        "089999", ACCOUNT, "58")
    for text in (repr(checked), str(checked), f"{checked}", repr([checked])):
        assert ACCOUNT not in text and "089999" not in text and MASK in text


def test_details_are_sent_as_given_not_as_checked() -> None:
    # Santander (9 digits) and NatWest (10 digits) numbers are rewritten for the check only.
    assert details.validate("202959", "0063748472",
                            default_tables()).account_number == "0063748472"
    assert details.validate("089999", "6637495800",
                            default_tables()).account_number == "6637495800"
    assert details.validate("180002", "0000190", default_tables()).account_number == "0000190"


@pytest.mark.parametrize(("sort_code", "account_number", "reason", "fields"), [
    ("", ACCOUNT, "sort code is required", ["sort_code"]),
    (None, ACCOUNT, "sort code is required", ["sort_code"]),
    ("08-99-9x", ACCOUNT, "sort code must contain only digits", ["sort_code"]),
    ("0899", ACCOUNT, "sort code must be 6 digits", ["sort_code"]),
    ("089999", "12345", "account number must be 6 to 10 digits", ["account_number"]),
    ("089999", "66 37 49 5O", "account number must contain only digits", ["account_number"]),
    ("089999", 66374958, "sort code and account number must be text",
     ["sort_code", "account_number"]),
    ("089999", "66374959", "failed MOD10 check", ["sort_code", "account_number"]),
])
def test_invalid_details_name_the_check(sort_code: object, account_number: object, reason: str,
                                        fields: list[str]) -> None:
    with pytest.raises(InvalidBankDetails) as caught:
        details.validate(sort_code, account_number, default_tables())
    assert caught.value.reason == reason
    assert details.fields_at_fault(reason) == fields
    assert reason in details.describe(reason)
    assert "66374959" not in "".join(traceback.format_exception(caught.value))


@given(st.one_of(st.none(), st.integers(), st.text(max_size=80)),
       st.one_of(st.none(), st.integers(), st.text(max_size=80)))
def test_validation_only_ever_says_valid_or_names_a_known_check(sort_code: object,
                                                                account: object) -> None:
    try:
        checked = details.validate(sort_code, account, default_tables())
    except InvalidBankDetails as exc:
        assert exc.reason in REASONS
    else:
        assert checked.sort_code.isdigit() and len(checked.sort_code) == 6
        assert 6 <= len(checked.account_number) <= 10


def test_request_schema_hands_details_on_untouched() -> None:
    loaded = BankAccountRequestSchema().load({
        "customer_id": "003A", "account_holder_name": "Ada", "sort_code": 89999,
        "account_number": None})
    assert loaded["sort_code"] == 89999 and loaded["account_number"] is None
    assert loaded["record_id"] is None


# --- the tables in use ------------------------------------------------------------------------

def test_shipped_tables_by_default() -> None:
    shown = info(Settings.from_env(environ={}))
    assert shown["version"] == "8.50" and shown["origin"] == "shipped"
    assert shown["row_count"] == len(default_tables().rows)


def test_newer_tables_by_configuration(tmp_path: Path) -> None:
    newer = tmp_path / "valacdos-v9-10.txt"
    shutil.copy(DEFAULT_WEIGHTS_FILE, newer)
    settings = Settings.from_env(environ={"MODULUS_WEIGHTS_PATH": str(newer)})
    assert tables_for(settings).version == "9.10"
    shown = info(settings)
    assert shown["origin"] == "configured" and shown["source"] == str(newer)


def test_a_malformed_configured_table_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "valacdos-v9-11.txt"
    bad.write_text(DEFAULT_WEIGHTS_FILE.read_text() + "090000 090099 MOD12 1 2 3\n")
    with pytest.raises(TableFormatError) as caught:
        tables_for(Settings.from_env(environ={"MODULUS_WEIGHTS_PATH": str(bad)}))
    assert caught.value.line == len(DEFAULT_WEIGHTS_FILE.read_text().splitlines()) + 1


# --- `paybridge modulus` ----------------------------------------------------------------------

def test_cli_info_shows_the_version_in_use() -> None:
    result = CliRunner().invoke(cli, ["modulus", "info"], env={"MODULUS_WEIGHTS_PATH": ""})
    assert result.exit_code == 0, result.output
    assert "version: 8.50" in result.output and "origin: shipped" in result.output


def test_cli_check_table_accepts_a_good_table(tmp_path: Path) -> None:
    newer = tmp_path / "valacdos-v9-20.txt"
    shutil.copy(DEFAULT_WEIGHTS_FILE, newer)
    result = CliRunner().invoke(cli, ["modulus", "check-table", str(newer)])
    assert result.exit_code == 0, result.output
    assert "ok: version 9.20" in result.output
    assert f"MODULUS_WEIGHTS_PATH={newer}" in result.output


def test_cli_check_table_reports_the_line_at_fault(tmp_path: Path) -> None:
    bad = tmp_path / "valacdos-v9-21.txt"
    bad.write_text("010004 016714 MOD11 0 0 0 0 0 0 8 7 6 5 4 3 2 1\n"
                   "089000 089999 MOD10 0 0 0 0 0 0 7 1 3 7 1 3 7\n")
    subs = tmp_path / "scsubtab.txt"
    subs.write_text("938173 938017\n938289\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["modulus", "check-table", str(bad)])
    assert result.exit_code == 1
    assert "line 2: expected 17 or 18 columns, found 16" in result.output
    good = tmp_path / "valacdos-v9-22.txt"
    shutil.copy(DEFAULT_WEIGHTS_FILE, good)
    result = runner.invoke(cli, ["modulus", "check-table", str(good), "--substitutions",
                                  str(subs)])
    assert result.exit_code == 1 and "scsubtab.txt: line 2" in result.output
    result = runner.invoke(cli, ["modulus", "check-table", str(tmp_path / "missing.txt")])
    assert result.exit_code == 1 and "cannot read" in result.output


# --- redaction --------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "account 66374958 was refused",
    "Account number is 66374958",
    "a/c 66374958",
    "acct: 66374958",
    'accountNumber: "66374958"',
    "{'account_number': '66374958'}",
    json.dumps({"message": json.dumps({"account_number": "66374958"})}),
    "sort code 08-99-99 account number 66374958",
])
def test_more_spellings_are_masked(text: str) -> None:
    assert ACCOUNT not in redact(text)


@pytest.mark.parametrize("text", [
    # Gateway ids look like short IBANs ("BA" + two digits + ...): they must survive, since
    # callers read them back out of redacted gateway errors.
    "GET /customer_bank_accounts/BA12ABCDEFGHIJ: Resource not found",
    "bank account BA0123456789XY was disabled",
    "account number must be 6 to 10 digits",
    "POST /customer_bank_accounts: Validation failed; account_number: is invalid",
    "Account_Number_Ending__c: 58",
    "queue item 12345678 done in 250ms",
])
def test_messages_about_details_survive(text: str) -> None:
    assert redact(text) == text


def test_keys_are_matched_whatever_their_spelling() -> None:
    out = redact_value({"sortCode": "089999", "Account-Number": "66374958",
                        "account_number_ending": "58", "bank_name": "X"})
    assert out == {"sortCode": MASK, "Account-Number": MASK, "account_number_ending": "58",
                   "bank_name": "X"}


@pytest.mark.parametrize("formatter", [TextFormatter(), RedactingJsonFormatter()])
def test_tracebacks_in_log_lines_are_masked(formatter: logging.Formatter) -> None:
    try:
        raise ValueError(f"bad body {json.dumps({'account_number': ACCOUNT})}")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None,
                                   exc_info=sys.exc_info())
    assert ACCOUNT not in formatter.format(record)


def test_the_existing_account_is_read_from_the_gateways_redacted_conflict() -> None:
    from app.clients.errors import InvalidStateError
    from app.clients.gateway import _error_message
    from bankaccounts.partners import _existing_account

    body = {"error": {"type": "invalid_state", "message": "exists", "errors": [
        {"reason": "bank_account_exists", "message": "exists",
         "links": {"customer_bank_account": "BA12ABCDEFGHIJ"}}]}}
    message, redacted = _error_message(body, 409)
    exc = InvalidStateError(message, status=409, reason="bank_account_exists", details=redacted)
    assert _existing_account(exc) == "BA12ABCDEFGHIJ"
