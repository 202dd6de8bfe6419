"""UK bank account modulus checking (Vocalink / Pay.UK "Validating account numbers – UK modulus
checking").

Typical use::

    from bankaccounts.modulus import check

    result = check("08-99-99", "66374958")
    if not result.valid:
        print(result.reason)

A passing check only means the sort code and account number *could* form a real account;
it says nothing about whether the account exists. Sort codes missing from the weight table
cannot be checked and are reported valid, as the specification requires.

Confidentiality: sort codes and account numbers never appear in a reason, an exception
message or a repr produced by this package, so results can be logged as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bankaccounts.modulus_rules import all_reasons, evaluate
from bankaccounts.modulus_tables import (
    ModulusTables,
    TableFormatError,
    WeightRow,
    default_tables,
    load_tables,
    tables_info,
)

__all__ = [
    "REASONS",
    "InvalidBankDetails",
    "ModulusResult",
    "ModulusTables",
    "TableFormatError",
    "WeightRow",
    "check",
    "default_tables",
    "load_tables",
    "normalise",
    "tables_info",
]

SORT_CODE_REQUIRED = "sort code is required"
ACCOUNT_NUMBER_REQUIRED = "account number is required"
SORT_CODE_NOT_DIGITS = "sort code must contain only digits"
ACCOUNT_NUMBER_NOT_DIGITS = "account number must contain only digits"
SORT_CODE_LENGTH = "sort code must be 6 digits"
ACCOUNT_NUMBER_LENGTH = "account number must be 6 to 10 digits"
NOT_TEXT = "sort code and account number must be text"

FORMAT_REASONS = frozenset(
    {
        SORT_CODE_REQUIRED,
        ACCOUNT_NUMBER_REQUIRED,
        SORT_CODE_NOT_DIGITS,
        ACCOUNT_NUMBER_NOT_DIGITS,
        SORT_CODE_LENGTH,
        ACCOUNT_NUMBER_LENGTH,
        NOT_TEXT,
    }
)
#: Every reason :func:`check` can return. The set is fixed, which is what guarantees that no
#: reason can carry a sort code or account number.
REASONS: frozenset[str] = FORMAT_REASONS | all_reasons()

# Only ASCII digits count: str.isdigit() and \d also accept e.g. Arabic-Indic digits.
_DIGITS = re.compile(r"[0-9]+")
# Separators people type inside sort codes and account numbers.
_SEPARATORS = re.compile(r"[ \-]")
# Anything longer than this cannot become a valid value once separators are removed
# ("12 - 34 - 56" style input stays well below it); rejecting early bounds the work done.
_MAX_RAW_LENGTH = 64
# The Co-operative Bank's sort codes start with 08 (see normalise).
_CO_OPERATIVE_PREFIX = "08"


class InvalidBankDetails(ValueError):
    """The sort code or account number is not in an acceptable format.

    ``reason`` says which rule was broken; it never contains the input.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class ModulusResult:
    """The outcome of :func:`check`.

    ``valid`` is the verdict, ``reason`` a short digit-free explanation ("passed", "failed
    MOD11 check", ...), and ``checks`` labels the checks that ran, in order (empty when none
    could be run).
    """

    valid: bool
    reason: str
    checks: tuple[str, ...] = ()


def _clean(value: object, required: str, not_digits: str, wrong_length: str) -> str:
    """Strip separators from one field and require ASCII digits; length is checked later."""
    if not isinstance(value, str):
        raise InvalidBankDetails(NOT_TEXT)
    if len(value) > _MAX_RAW_LENGTH:
        raise InvalidBankDetails(wrong_length)
    cleaned = _SEPARATORS.sub("", value.strip())
    if not cleaned:
        raise InvalidBankDetails(required)
    if not _DIGITS.fullmatch(cleaned):
        raise InvalidBankDetails(not_digits)
    return cleaned


def normalise(sort_code: str, account_number: str) -> tuple[str, str]:
    """Return the 6-digit sort code and 8-digit account number the checks operate on.

    Surrounding whitespace and inner spaces and dashes are removed ("12-34-56", "12 34 56");
    what remains must be ASCII
    digits, 6 of them for the sort code and 6 to 10 for the account number. Non-standard
    lengths are brought to 8 digits as the specification describes:

    * 6 or 7 digits: padded with leading zeros.
    * 9 digits (Santander): the last digit of the sort code is replaced by the first digit of
      the account number, and the last 8 digits of the account number are used. The returned
      sort code therefore differs from the one given.
    * 10 digits: the specification names two formats without saying how to tell them apart
      from the sort code, so the bank is recognised by its sort code range. Sort codes
      starting 08 belong to the Co-operative Bank, whose 10-digit numbers are checked on
      their first 8 digits; every other sort code follows the National Westminster rule and
      is checked on the last 8 digits.

    Raises InvalidBankDetails (whose message names the rule broken, never the input).
    """
    sort_code = _clean(sort_code, SORT_CODE_REQUIRED, SORT_CODE_NOT_DIGITS, SORT_CODE_LENGTH)
    if len(sort_code) != 6:
        raise InvalidBankDetails(SORT_CODE_LENGTH)
    account = _clean(
        account_number, ACCOUNT_NUMBER_REQUIRED, ACCOUNT_NUMBER_NOT_DIGITS, ACCOUNT_NUMBER_LENGTH
    )
    length = len(account)
    if length in (6, 7, 8):
        return sort_code, account.zfill(8)
    if length == 9:
        return sort_code[:5] + account[0], account[1:]
    if length == 10:
        if sort_code.startswith(_CO_OPERATIVE_PREFIX):
            return sort_code, account[:8]
        return sort_code, account[2:]
    raise InvalidBankDetails(ACCOUNT_NUMBER_LENGTH)


def check(
    sort_code: str, account_number: str, tables: ModulusTables | None = None
) -> ModulusResult:
    """Modulus check a sort code and account number.

    ``tables`` defaults to the shipped tables (see :func:`default_tables`). Input that fails
    :func:`normalise` gives ``valid=False`` with the format reason. This function does not
    raise for any input; a sort code absent from the weight table gives ``valid=True`` with a
    reason saying it could not be checked.
    """
    try:
        sort_code, account = normalise(sort_code, account_number)
    except InvalidBankDetails as exc:
        return ModulusResult(valid=False, reason=exc.reason)
    if tables is None:
        tables = default_tables()
    outcome = evaluate(tables.rows_for(sort_code), sort_code, account, tables.substitutions)
    return ModulusResult(valid=outcome.valid, reason=outcome.reason, checks=outcome.checks)
