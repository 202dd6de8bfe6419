"""The org's schema, derived from ``app.mapping``, and Salesforce-style record ids.

Every ``ObjectMap`` contributes its ``sobject`` with its ``crm_fields`` plus the standard
fields every record has. Names of types and fields are matched case-insensitively, as the
real API does, and always reported back in their canonical spelling.
"""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import dataclass

from app.mapping import OBJECTS, SOBJECT_TO_OBJECT

STANDARD_FIELDS: tuple[str, ...] = (
    "Id",
    "Name",
    "OwnerId",
    "IsDeleted",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
)
# Maintained by the platform; an API write to one is refused.
SYSTEM_FIELDS = frozenset({"Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp"})

# Standard objects keep their well-known key prefixes; custom objects get a0A, a0B, ...
STANDARD_KEY_PREFIXES = {"Account": "001", "Contact": "003", "Lead": "00Q", "Opportunity": "006"}
USER_KEY_PREFIX = "005"
ORG_KEY_PREFIX = "00D"

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


@dataclass(frozen=True)
class SObjectType:
    """One sObject: its canonical name, key prefix, fields and (optional) logical object."""

    name: str
    key_prefix: str
    fields: tuple[str, ...]
    logical: str | None
    read_only: frozenset[str]

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    def canonical_field(self, name: str) -> str | None:
        """The field's canonical spelling, or None when the type has no such field."""
        lowered = name.lower()
        for candidate in self.fields:
            if candidate.lower() == lowered:
                return candidate
        return None


class Schema:
    """All sObject types of the org, looked up by name (any case) or by id prefix."""

    def __init__(self, types: list[SObjectType]) -> None:
        self._by_lower = {t.name.lower(): t for t in types}
        self._by_prefix = {t.key_prefix: t for t in types}

    @classmethod
    def from_mapping(cls) -> Schema:
        types: list[SObjectType] = []
        custom_index = 0
        for obj in OBJECTS.values():
            if obj.sobject in STANDARD_KEY_PREFIXES:
                prefix = STANDARD_KEY_PREFIXES[obj.sobject]
            else:
                prefix = "a0" + _BASE62[10 + custom_index]  # a0A, a0B, ...
                custom_index += 1
            custom = sorted(obj.crm_fields - set(STANDARD_FIELDS))
            read_only = set(SYSTEM_FIELDS)
            if obj.sobject == "Contact":
                # Contact.Name is compound (FirstName + LastName) and cannot be written.
                custom = sorted(set(custom) | {"FirstName", "LastName"})
                read_only.add("Name")
            types.append(
                SObjectType(
                    name=obj.sobject,
                    key_prefix=prefix,
                    fields=STANDARD_FIELDS + tuple(custom),
                    logical=SOBJECT_TO_OBJECT.get(obj.sobject),
                    read_only=frozenset(read_only),
                )
            )
        return cls(types)

    def get(self, name: str) -> SObjectType | None:
        return self._by_lower.get(name.lower())

    def for_id(self, record_id: str) -> SObjectType | None:
        return self._by_prefix.get(record_id[:3])

    def types(self) -> list[SObjectType]:
        return list(self._by_lower.values())


def checksum_suffix(id15: str) -> str:
    """The three characters that make a 15-character id case-insensitively unique."""
    suffix = ""
    for start in (0, 5, 10):
        bits = 0
        for position, char in enumerate(id15[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _CHECKSUM_CHARS[bits]
    return suffix


def normalize_id(record_id: str) -> str | None:
    """An 18-character id for a 15- or 18-character one; None when it is not an id at all."""
    if not all(c in _BASE62 for c in record_id):
        return None
    if len(record_id) == 15:
        return record_id + checksum_suffix(record_id)
    if len(record_id) == 18 and checksum_suffix(record_id[:15]) == record_id[15:].upper():
        return record_id[:15] + checksum_suffix(record_id[:15])
    return None


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        digits.append(_BASE62[rem])
    return "".join(reversed(digits))


class IdFactory:
    """Hands out unique 18-character ids per key prefix.

    Each process starts its counters at a random point so ids from an earlier run of the
    emulator (still held in some other system's database) are not handed out again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, itertools.count[int]] = {}

    def new(self, key_prefix: str) -> str:
        with self._lock:
            counter = self._counters.get(key_prefix)
            if counter is None:
                counter = self._counters[key_prefix] = itertools.count(random.randrange(62**7))
            number = next(counter)
        # prefix (3) + pod (2) + reserved (1) + 9 base62 digits = 15, then the checksum.
        id15 = key_prefix + "8d" + "0" + _base62(number, 9)
        return id15 + checksum_suffix(id15)
