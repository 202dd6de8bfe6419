"""Masks bank details before anything is written: logs, error logs, stored payloads.

What counts: a sort code followed by an account number (in any common spelling), an IBAN,
and the value of any field whose name says it holds bank details.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "[REDACTED]"

SENSITIVE_KEYS = frozenset(
    k.lower()
    for k in (
        "account_number", "branch_code", "sort_code", "iban", "bank_code",
        "Account_Number__c", "Sort_Code__c", "IBAN__c", "accountnumber", "sortcode",
    )
)

_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b")
# "12-34-56 12345678", "123456/12345678", "sort code 12 34 56, account 12345678"
_PAIR = re.compile(
    r"\b\d{2}[- ]?\d{2}[- ]?\d{2}\b(?P<gap>[^\d\n]{0,40}?)\b\d{6,10}\b"
)
_KEYED = re.compile(
    r"""(?P<key>["']?(?:account[_ ]?number|branch[_ ]?code|sort[_ ]?code|iban|"""
    r"""Account_Number__c|Sort_Code__c)["']?\s*[:=]\s*)(?P<q>["']?)(?P<val>[^"',}\s]+)(?P=q)""",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    if not text:
        return text
    text = _IBAN.sub(MASK, text)  # first: a spaced IBAN is longer than a keyed value
    text = _KEYED.sub(lambda m: f"{m.group('key')}{m.group('q')}{MASK}{m.group('q')}", text)
    return _PAIR.sub(lambda m: f"{MASK}{m.group('gap')}{MASK}", text)


def redact_value(value: Any) -> Any:
    """Recursively mask sensitive keys and any bank details inside strings."""
    if isinstance(value, Mapping):
        return {
            k: (MASK if str(k).lower() in SENSITIVE_KEYS and v not in (None, "")
                else redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value
