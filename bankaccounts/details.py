"""Bank details in transit: checked, normalised and never shown.

A ``BankDetails`` holds a sort code and account number only for as long as it takes to send
them to the gateway. Its repr and str are masked, so a traceback, a debugger or a log line
that prints it shows nothing sensitive. Every reason a check can give comes from the closed
vocabulary of ``bankaccounts.modulus`` and never contains the input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.mapping import OBJECTS
from app.redaction import MASK
from bankaccounts.modulus import (
    ACCOUNT_NUMBER_LENGTH,
    ACCOUNT_NUMBER_NOT_DIGITS,
    ACCOUNT_NUMBER_REQUIRED,
    FORMAT_REASONS,
    SORT_CODE_LENGTH,
    SORT_CODE_NOT_DIGITS,
    SORT_CODE_REQUIRED,
    InvalidBankDetails,
    ModulusTables,
    check,
)

_SEPARATORS = re.compile(r"[ \-]")
_SORT_CODE_REASONS = frozenset({SORT_CODE_REQUIRED, SORT_CODE_NOT_DIGITS, SORT_CODE_LENGTH})
_ACCOUNT_REASONS = frozenset(
    {ACCOUNT_NUMBER_REQUIRED, ACCOUNT_NUMBER_NOT_DIGITS, ACCOUNT_NUMBER_LENGTH})

# The CRM fields of a Bank Account that hold raw details (sent only with STORE_BANK_DETAILS).
_BANK_ACCOUNT = OBJECTS["BankAccount"]
CRM_SORT_CODE = next(f.crm for f in _BANK_ACCOUNT.fields if f.gateway == "branch_code")
CRM_ACCOUNT_NUMBER = next(f.crm for f in _BANK_ACCOUNT.fields if f.gateway == "account_number")


@dataclass(frozen=True, eq=False, repr=False)
class BankDetails:
    """A sort code (6 digits) and account number (6-10 digits), separators removed.

    They are kept as the customer gave them: the substitutions modulus checking makes for
    9- and 10-digit account numbers are for the check only, the gateway gets the real ones.
    """

    sort_code: str
    account_number: str

    @property
    def ending(self) -> str:
        """The last two digits: the only part that may be stored or shown."""
        return self.account_number[-2:]

    def gateway_fields(self) -> dict[str, str]:
        return {"branch_code": self.sort_code, "account_number": self.account_number}

    def __repr__(self) -> str:
        return f"BankDetails(sort_code={MASK}, account_number={MASK}, ending={self.ending!r})"

    __str__ = __repr__


def validate(sort_code: object, account_number: object, tables: ModulusTables) -> BankDetails:
    """Normalise and modulus-check; raises InvalidBankDetails naming the check that failed."""
    result = check("" if sort_code is None else sort_code,  # type: ignore[arg-type]
                   "" if account_number is None else account_number,  # type: ignore[arg-type]
                   tables)
    if not result.valid:
        raise InvalidBankDetails(result.reason)
    # A valid result means both were text of digits and separators.
    return BankDetails(_digits(str(sort_code)), _digits(str(account_number)))


def _digits(value: str) -> str:
    return _SEPARATORS.sub("", value.strip())


def fields_at_fault(reason: str) -> list[str]:
    if reason in _SORT_CODE_REASONS:
        return ["sort_code"]
    if reason in _ACCOUNT_REASONS:
        return ["account_number"]
    return ["sort_code", "account_number"]


def describe(reason: str) -> str:
    """A sentence for a caller: the format rule broken, or the modulus check that failed."""
    if reason in FORMAT_REASONS:
        return reason
    return f"the sort code and account number are not a valid UK account: {reason}"
