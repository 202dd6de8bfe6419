"""Masks bank details before anything is written: logs, error logs, stored payloads.

What counts: a sort code followed by an account number (in any common spelling), an IBAN,
digits that a field name or a phrase says are a sort code or account number, and the value
of any mapping key whose name says it holds bank details.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

MASK = "[REDACTED]"

# Field names, compared without case, "_", "-" or spaces ("Account_Number__c", "sortCode").
SENSITIVE_KEYS = frozenset(
    {"accountnumber", "accountnumberc", "branchcode", "sortcode", "sortcodec", "iban", "ibanc",
     "bankcode"}
)
_KEY_NOISE = re.compile(r"[_\- ]")

_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b")
# The shortest IBANs have 15 characters; gateway ids ("BA12ABCD...", 14) look alike otherwise.
_IBAN_MIN_LENGTH = 15
# "12-34-56 12345678", "123456/12345678", "sort code 12 34 56, account 12345678"
_PAIR = re.compile(
    r"\b\d{2}[- ]?\d{2}[- ]?\d{2}\b(?P<gap>[^\d\n]{0,40}?)\b\d{6,10}\b"
)
# A named field with a value: "account_number=1", '"sort_code": "1"', and the same inside a
# JSON string whose quotes are escaped (a JSON log line carrying a traceback or a body).
_QUOTE = r"""(?:\\?["'])"""
_KEYED = re.compile(
    rf"""(?P<key>{_QUOTE}?(?:account[_ ]?number|branch[_ ]?code|sort[_ ]?code|iban|"""
    rf"""Account_Number__c|Sort_Code__c){_QUOTE}?\s*[:=]\s*)(?P<q>{_QUOTE}?)"""
    r"""(?P<val>[^"',;&}\s\\]*\d[^"',;&}\s\\]*)(?P=q)""",
    re.IGNORECASE,
)
# Digits said to be a sort code or account number in prose: "account 12345678",
# "sort code is 12-34-56". Six digits at least, so "must be 6 to 10 digits" survives.
_NAMED = re.compile(
    r"""(?P<key>\b(?:sort[ _-]?code|branch[ _-]?code|account(?:[ _-]?(?:number|no\.?|num))?"""
    r"""|acct|a/c)\b)(?P<gap>[^\d\n]{0,20}?)\b(?P<val>\d(?:[ -]?\d){5,33})\b""",
    re.IGNORECASE,
)


# What the patterns above need, each checked on its own (one alternation of them all costs
# more than the four passes): a digit (every pattern); then, in ASCII text, a word starting
# with an IBAN's country and check digits and 11 more characters (a masked IBAN has 15 at
# least), a word of six digits (_PAIR's account number) or a keyword of _KEYED or _NAMED.
# Text without them has nothing to mask (most strings of a payload: ids, timestamps,
# actions, descriptions), so the four passes are skipped. Other text always gets them: a
# case-blind match of a keyword may begin with a non-ASCII letter ("\u017fort code", a long s).
# tests/unit/test_redaction.py holds redact() to the four passes.
_DIGIT = re.compile(r"\d")
_IBAN_LIKE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11}")
_SIX_DIGITS = re.compile(r"\b\d{6}")
_KEYWORD = re.compile(r"[sSbBaAiI](?i:ort|ranch|cc(?:oun)?t|ban|/c)")


def redact(text: str) -> str:
    if not text or _DIGIT.search(text) is None:
        return text
    if text.isascii() and _IBAN_LIKE.search(text) is None and (
            _SIX_DIGITS.search(text) is None and _KEYWORD.search(text) is None):
        return text
    return _mask(text)


def _mask(text: str) -> str:
    # First: a spaced IBAN is longer than a keyed value.
    text = _IBAN.sub(lambda m: MASK if len(m.group(0).replace(" ", "")) >= _IBAN_MIN_LENGTH
                     else m.group(0), text)
    text = _KEYED.sub(lambda m: f"{m.group('key')}{m.group('q')}{MASK}{m.group('q')}", text)
    text = _PAIR.sub(lambda m: f"{MASK}{m.group('gap')}{MASK}", text)
    return _NAMED.sub(lambda m: f"{m.group('key')}{m.group('gap')}{MASK}", text)


# The words of a field name: "Bank_Sort_Code" -> bank sort code, "accountNumber" -> account
# number, "IBAN__c" -> iban c.
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_SENSITIVE_WORDS = frozenset({"iban", "sortcode", "accountnumber", "accountno", "accountnum",
                              "acctno", "acctnumber", "branchcode", "bankcode"})
# The last digits the gateway shows ("account_number_ending") are no bank details.
_NOT_DETAILS = frozenset({"ending", "last", "masked"})


@lru_cache(maxsize=4096)  # payloads repeat the same few field names in every event
def sensitive_key(key: object) -> bool:
    """A field name that says bank details, however it is spelled or prefixed."""
    text = str(key)
    if _KEY_NOISE.sub("", text).lower() in SENSITIVE_KEYS:
        return True
    words = [w.lower() for w in _WORDS.findall(text)]
    if _NOT_DETAILS & set(words):
        return False
    pairs = (a + b for a, b in zip(words, words[1:], strict=False))
    return any(w in _SENSITIVE_WORDS for w in words) or any(p in _SENSITIVE_WORDS
                                                             for p in pairs)


def redact_value(value: Any) -> Any:
    """Recursively mask sensitive keys and any bank details inside strings."""
    kind = type(value)  # exact types first: a payload is plain JSON, ABC checks cost more
    if kind is str:
        return redact(value)
    if kind is dict or isinstance(value, Mapping):
        # Strings are redacted here rather than through a call each: most values are.
        return {k: (MASK if sensitive_key(k) and v not in (None, "")
                    else redact(v) if type(v) is str else redact_value(v))
                for k, v in value.items()}
    if kind is list or isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


# A sort code alone ("20-00-00", "200000") and an account number alone (7 to 10 digits):
# neither is masked in prose, but two fields of one record holding one each are bank details.
_SORT_CODE_ALONE = re.compile(r"^\s*\d{2}[- ]?\d{2}[- ]?\d{2}\s*$")
_ACCOUNT_ALONE = re.compile(r"^\s*\d{7,10}\s*$")


def bank_detail_fields(fields: Mapping[str, Any], allowed: frozenset[str] = frozenset()
                       ) -> list[str]:
    """Names of the fields that hold, or look like they hold, bank details: a name the
    redaction rules call sensitive, a value redaction would mask (an IBAN, a sort code with
    an account number, a keyed value), or a sort-code-like value in one field beside an
    account-number-like value in another. ``allowed`` fields are not looked at."""
    found: list[str] = []
    sort_like: list[str] = []
    account_like: list[str] = []
    for name, value in fields.items():
        if name in allowed or value in (None, ""):
            continue
        text = value if isinstance(value, str) else None
        if sensitive_key(name) or (text is not None and redact(text) != text):
            found.append(name)
        elif text is not None and _SORT_CODE_ALONE.match(text):
            sort_like.append(name)
        elif text is not None and _ACCOUNT_ALONE.match(text):
            account_like.append(name)
    if sort_like and account_like:
        found += sort_like + account_like
    return found
