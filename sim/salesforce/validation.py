"""Field values checked against the org's declared metadata, failing as Salesforce fails.

Two stages, as on the platform. The JSON body is first deserialised into typed fields: a
value of the wrong JSON type (text for a number, an array, a date that is not a date)
fails the whole request with 400 JSON_PARSER_ERROR, before any record is touched. Then each
record's DML is checked: text lengths, e-mail addresses, restricted picklists, lookups, and
required fields; those fail one record (its result in sObject Collections, the call for the
single-record resource) with the status code and message Salesforce uses.

Sources (REST answers as the platform gives them; messages quoted from them):
- JSON_PARSER_ERROR "Cannot deserialize instance of <type> from <TOKEN> value ...":
  https://salesforce.stackexchange.com/questions/54882/rest-api-how-to-insert-values-for-picklist-and-lookup-field-types
- REQUIRED_FIELD_MISSING "Required fields are missing: [LastName]", fields named:
  https://salesforcedictionary.com/errors/required-field-missing
- STRING_TOO_LONG "<Label>: data value too large: <value> (max length=<n>)":
  https://salesforcedictionary.com/errors/string-too-long
- INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST "<Label>: bad value for restricted picklist field:
  <value>": https://salesforcedictionary.com/errors/invalid-or-null-for-restricted-picklist,
  https://acesalesforce.com/bad-value-for-restricted-picklist-field/
- INVALID_EMAIL_ADDRESS "Email: invalid email address: <value>": the Composite subrequest
  result example, https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_subrequest_result.htm
- Lookups: a value that is no id at all is MALFORMED_ID, an id of another object is
  FIELD_INTEGRITY_EXCEPTION, an id of a record that does not exist (or was deleted) is
  INVALID_CROSS_REFERENCE_KEY "invalid cross reference id":
  https://www.salto.io/blog-posts/invalid-cross-reference-id,
  https://salesforcedictionary.com/errors/invalid-cross-reference-key
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, Protocol

from sim.salesforce.errors import SfError
from sim.salesforce.metadata import PLATFORM_OBJECTS, FieldSpec
from sim.salesforce.schema import SObjectType, normalize_id

TEXT_TYPES = frozenset({"string", "textarea", "email", "phone", "picklist"})
NUMBER_TYPES = frozenset({"currency", "double"})
# A plain check, not RFC 5322: something@domain.tld, as the platform's own check asks.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Found(Protocol):
    sobject: SObjectType

    @property
    def deleted(self) -> bool: ...


FindRecord = Callable[[str], _Found | None]


# -- stage 1: JSON deserialisation (request-level) ----------------------------------------------


def _token(value: Any) -> str:
    """The JSON token name the platform's parser reports for a value."""
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, int):
        return "VALUE_NUMBER_INT"
    if isinstance(value, float):
        return "VALUE_NUMBER_FLOAT"
    if isinstance(value, str):
        return "VALUE_STRING"
    return "START_ARRAY" if isinstance(value, list) else "START_OBJECT"


def _parses(spec: FieldSpec, value: Any) -> bool:
    """Whether the value deserialises into the field's type (None always does)."""
    if value is None:
        return True
    if isinstance(value, list | dict):
        return False
    kind = spec.type
    if kind in TEXT_TYPES:
        return True  # numbers and booleans are taken as their text
    if kind in NUMBER_TYPES:
        if isinstance(value, bool):
            return False
        if isinstance(value, int | float):
            return True
        try:
            float(value)
        except ValueError:
            return False
        return True
    if kind == "boolean":
        return isinstance(value, bool) or str(value).lower() in ("true", "false")
    if kind in ("reference", "id"):
        return isinstance(value, str)
    if kind == "date":
        return isinstance(value, str) and _is_date(value)
    if kind == "datetime":
        return isinstance(value, str) and _is_datetime(value)
    return True


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def parse_error(sobject: SObjectType, body: Mapping[str, Any]) -> SfError | None:
    """JSON_PARSER_ERROR for the first field whose value is not of its type, else None.

    Unknown fields are left to the DML stage (INVALID_FIELD names them there)."""
    for key, value in body.items():
        spec = sobject.spec(key)
        if spec is None or _parses(spec, value):
            continue
        token = _token(value)
        shown = f" {value}" if token.startswith("VALUE_") else ""
        return SfError(
            400,
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {spec.type} from {token} value{shown} or "
            "request may be missing a required field",
        )
    return None


# -- stage 2: DML checks (record-level) ----------------------------------------------------------


def stored_value(spec: FieldSpec, value: Any) -> Any:
    """The value as the org keeps it: empty text is null, numbers are numbers, booleans
    are booleans and ids have their 18 characters."""
    if value is None:
        return None
    if spec.type in TEXT_TYPES:
        text = value if isinstance(value, str) else _text_of(value)
        return text or None
    if spec.type in NUMBER_TYPES and isinstance(value, str):
        number = float(value)
        return int(number) if number.is_integer() and "." not in value else number
    if spec.type == "boolean" and isinstance(value, str):
        return value.lower() == "true"
    if spec.type == "reference" and isinstance(value, str):
        return normalize_id(value) or value
    return value


def _text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_error(spec: FieldSpec, value: Any, find: FindRecord) -> SfError | None:
    """The DML error a stored value gets from Salesforce, or None when it is accepted."""
    if value is None:
        return None
    label = spec.display_label
    if spec.type in TEXT_TYPES and spec.length is not None and len(value) > spec.length:
        return SfError(400, "STRING_TOO_LONG",
                       f"{label}: data value too large: {value} (max length={spec.length})",
                       [spec.name])
    if spec.type == "email" and not _EMAIL.match(value):
        return SfError(400, "INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {value}",
                       [spec.name])
    if spec.type == "picklist" and spec.restricted and value not in spec.picklist:
        return SfError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                       f"{label}: bad value for restricted picklist field: {value}",
                       [spec.name])
    if spec.type == "reference":
        return _lookup_error(spec, value, find)
    return None


def _lookup_error(spec: FieldSpec, value: str, find: FindRecord) -> SfError | None:
    label = spec.display_label
    if normalize_id(value) is None:
        return SfError(400, "MALFORMED_ID", f"{label}: id value of incorrect type: {value}",
                       [spec.name])
    if spec.reference_to in PLATFORM_OBJECTS:
        return None  # users are not records of this org's store
    target = find(value)
    if target is not None and target.sobject.name != spec.reference_to:
        return SfError(400, "FIELD_INTEGRITY_EXCEPTION",
                       f"{label}: id value of incorrect type: {value}", [spec.name])
    if target is None or target.deleted:
        return SfError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id",
                       [spec.name])
    return None


def missing_required(sobject: SObjectType, values: Mapping[str, Any],
                     inserting: bool) -> SfError | None:
    """REQUIRED_FIELD_MISSING naming every required field an insert leaves empty, or an
    update empties; None when there is none."""
    missing = [
        s.name for s in sobject.specs
        if s.required and not s.read_only
        and (s.name in values or inserting) and values.get(s.name) is None
    ]
    if not missing:
        return None
    return SfError(400, "REQUIRED_FIELD_MISSING",
                   f"Required fields are missing: [{', '.join(missing)}]", missing)
