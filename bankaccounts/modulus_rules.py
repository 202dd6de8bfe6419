"""The modulus checks and exceptions 1 to 14 of "Validating account numbers – UK modulus checking".

Everything here works on an already normalised 6-digit sort code and 8-digit account number.
The 14 digits are named as in the specification::

    u v w x y z   a b c d e f g h
    (sort code)   (account number)

Reasons and check labels produced here are built only from method names and exception
numbers, never from the digits being checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bankaccounts.modulus_tables import EXCEPTION_PAIRS, KNOWN_EXCEPTIONS, METHODS, WeightRow

# Positions of the account number digits inside the 14-digit string.
A, B, C, G, H = 6, 7, 8, 12, 13

METHOD_NAMES = {"MOD10": "MOD10", "MOD11": "MOD11", "DBLAL": "double alternate"}

PASSED = "passed"
NOT_IN_TABLE = "sort code is not in the modulus table: cannot be checked, treated as valid"
FOREIGN_CURRENCY = "foreign currency account (exception 6): cannot be checked, treated as valid"

# Exception 2 replaces the table's weights when a <> 0, depending on whether g = 9.
_EXCEPTION_2_WEIGHTS = (0, 0, 1, 2, 5, 3, 6, 4, 8, 7, 10, 9, 3, 1)
_EXCEPTION_2_WEIGHTS_G9 = (0, 0, 0, 0, 0, 0, 0, 0, 8, 7, 10, 9, 3, 1)
# Sort codes the specification substitutes "for check purposes only".
_EXCEPTION_8_SORT_CODE = "090126"
_EXCEPTION_9_SORT_CODE = "309634"
# Exception 1 adds this to the double alternate total before dividing by 10.
_EXCEPTION_1_ADDEND = 27


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of running the rows for one sort code: validity, reason and checks run."""

    valid: bool
    reason: str
    checks: tuple[str, ...]


def check_label(method: str, exception: int | None, *, retry: bool = False) -> str:
    """A label naming only the method and exception of one check.

    For example ``"MOD11 (exception 14, second check)"``.
    """
    if exception is None:
        return method
    return f"{method} (exception {exception}{', second check' if retry else ''})"


def failure_reason(method: str, exception: int | None) -> str:
    """The reason given when a single check decides that the account number is invalid."""
    suffix = f" (exception {exception})" if exception is not None else ""
    return f"failed {METHOD_NAMES[method]} check{suffix}"


def pair_failure_reason(first: int, second: int) -> str:
    """The reason given when both checks of an either-may-pass pair fail."""
    return f"failed both checks (exceptions {first} and {second})"


def all_reasons() -> frozenset[str]:
    """Every reason :func:`evaluate` can return (the vocabulary is closed)."""
    reasons = {PASSED, NOT_IN_TABLE, FOREIGN_CURRENCY}
    for method in METHODS:
        for exception in (None, *KNOWN_EXCEPTIONS):
            reasons.add(failure_reason(method, exception))
    reasons.update(pair_failure_reason(a, b) for a, b in EXCEPTION_PAIRS.items())
    return frozenset(reasons)


def evaluate(
    rows: tuple[WeightRow, ...],
    sort_code: str,
    account: str,
    substitutions: Mapping[str, str],
) -> Outcome:
    """Apply the rows found for a sort code to an 8-digit account number.

    ``rows`` holds one or two rows in table order (only the first two are used; the table
    loader rejects more). With no rows the sort code cannot be checked and the specification
    says to treat the account number as valid.
    """
    if not rows:
        return Outcome(True, NOT_IN_TABLE, ())
    digits = [int(ch) for ch in sort_code + account]
    # Exception 6: such accounts may be foreign currency accounts, which cannot be checked.
    if any(row.exception == 6 for row in rows) and 4 <= digits[A] <= 8 and digits[G] == digits[H]:
        return Outcome(True, FOREIGN_CURRENCY, ())

    first = rows[0]
    first_passed, checks = _run(first, sort_code, account, substitutions)
    if len(rows) == 1:
        return _decide(first_passed, first, checks)
    second = rows[1]

    partner = EXCEPTION_PAIRS.get(first.exception) if first.exception is not None else None
    if first.exception is not None and partner is not None and second.exception == partner:
        # Exceptions 2 & 9, 10 & 11 and 12 & 13: the account number is valid if either check
        # passes, and the second is only needed when the first fails.
        if first_passed:
            return Outcome(True, PASSED, checks)
        second_passed, more = _run(second, sort_code, account, substitutions)
        checks += more
        if second_passed:
            return Outcome(True, PASSED, checks)
        return Outcome(False, pair_failure_reason(first.exception, partner), checks)

    if not first_passed:
        return _decide(False, first, checks)
    # Exception 3: when c = 6 or 9 the (double alternate) second check is not carried out.
    if second.exception == 3 and digits[C] in (6, 9):
        return Outcome(True, PASSED, checks)
    # Otherwise (standard rows, exceptions 5 and 6 included) both checks must pass.
    second_passed, more = _run(second, sort_code, account, substitutions)
    return _decide(second_passed, second, checks + more)


def _decide(passed: bool, row: WeightRow, checks: tuple[str, ...]) -> Outcome:
    if passed:
        return Outcome(True, PASSED, checks)
    return Outcome(False, failure_reason(row.method, row.exception), checks)


def _run(
    row: WeightRow, sort_code: str, account: str, substitutions: Mapping[str, str]
) -> tuple[bool, tuple[str, ...]]:
    """Run one row, including exception 14's retry; returns (passed, labels of checks run)."""
    label = check_label(row.method, row.exception)
    sort_code = _substitute_sort_code(row.exception, sort_code, substitutions)
    if _passes(row, sort_code, account):
        return True, (label,)
    if row.exception != 14:
        return False, (label,)
    # Exception 14 (Coutts): if h is 0, 1 or 9, drop it, shift the account number right by
    # inserting a leading 0, and run the same MOD11 check again.
    retry = check_label(row.method, row.exception, retry=True)
    if account[7] not in "019":
        return False, (label,)
    return _passes(row, sort_code, "0" + account[:7]), (label, retry)


def _substitute_sort_code(
    exception: int | None, sort_code: str, substitutions: Mapping[str, str]
) -> str:
    if exception == 5:
        return substitutions.get(sort_code, sort_code)
    if exception == 8:
        return _EXCEPTION_8_SORT_CODE
    if exception == 9:
        return _EXCEPTION_9_SORT_CODE
    return sort_code


def _weights(row: WeightRow, digits: list[int]) -> tuple[int, ...]:
    """The row's weights after the weight-changing exceptions 2, 7 and 10."""
    weights = row.weights
    a, b, g = digits[A], digits[B], digits[G]
    if row.exception == 2 and a != 0:
        weights = _EXCEPTION_2_WEIGHTS_G9 if g == 9 else _EXCEPTION_2_WEIGHTS
    elif (row.exception == 7 and g == 9) or (
        row.exception == 10 and (a, b) in ((0, 9), (9, 9)) and g == 9
    ):
        # Zeroise the weights of u to b.
        weights = (0,) * 8 + weights[8:]
    return weights


def _passes(row: WeightRow, sort_code: str, account: str) -> bool:
    digits = [int(ch) for ch in sort_code + account]
    weights = _weights(row, digits)
    products = [digit * weight for digit, weight in zip(digits, weights, strict=True)]
    if row.method == "DBLAL":
        total = sum(_digit_sum(product) for product in products)
        if row.exception == 1:
            total += _EXCEPTION_1_ADDEND
        if row.exception == 5:
            # Exception 5: the check digit is h; remainder 0 needs h = 0, otherwise
            # 10 - remainder must equal h.
            remainder = total % 10
            return digits[H] == (0 if remainder == 0 else 10 - remainder)
        return total % 10 == 0
    total = sum(products)
    if row.method == "MOD10":
        return total % 10 == 0
    remainder = total % 11
    if row.exception == 4:
        # Exception 4: the remainder must equal the two-digit check digit gh.
        return remainder == digits[G] * 10 + digits[H]
    if row.exception == 5:
        # Exception 5: the check digit is g; remainder 0 needs g = 0, remainder 1 is always
        # invalid, otherwise 11 - remainder must equal g.
        if remainder == 1:
            return False
        return digits[G] == (0 if remainder == 0 else 11 - remainder)
    return remainder == 0


def _digit_sum(product: int) -> int:
    """Sum of the decimal digits of a product, as the double alternate method adds them."""
    return sum(int(ch) for ch in str(abs(product)))
